"""Sorting a sweep's rows (``GET /v1/sweeps/{id}/results?sort=``) on PostgreSQL and
SQLite, the two databases of the distributed and embedded modes: by the indexed
numeric metric columns of migration 0011, both directions, undefined metrics last
whichever the direction, ties by index; and that migration's backfill of rows
stored before it."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from alembic import command
from app.db.migrate import alembic_config, upgrade_to_head
from app.db.models import Job, User
from app.db.session import ensure_sqlite_parent_dir, is_sqlite
from app.sweeps import repository, rows
from app.sweeps.rows import Evaluated
from tests.integration.test_migrations import (  # noqa: F401 - fixtures
    fresh_postgres_url,
    fresh_sqlite_url,
    fresh_url,
)

pytestmark = pytest.mark.integration

N_ROWS = 41
PAGE = 6


@pytest.fixture
async def engine_at_head(fresh_url: str) -> AsyncIterator[AsyncEngine]:  # noqa: F811
    await asyncio.to_thread(upgrade_to_head, fresh_url)
    engine = create_async_engine(fresh_url)
    yield engine
    await engine.dispose()


async def _sweep(session: AsyncSession) -> uuid.UUID:
    user = User(username=f"u{uuid.uuid4().hex[:12]}", password_hash="x", tier="pro")
    session.add(user)
    await session.flush()
    job = Job(user_id=user.id, kind="sweep", status="completed", config={})
    session.add(job)
    await session.flush()
    return job.id


def _metrics(rng: random.Random) -> dict[str, Any]:
    """Values drawn from a few levels (so ties happen), or undefined (None)."""

    def draw(levels: list[float]) -> float | None:
        return None if rng.random() < 0.2 else rng.choice(levels)

    return {
        "sharpe_ratio": draw([-0.5, 0.0, 0.25, 0.8, 1.3]),
        "volatility": draw([0.1, 0.15, 0.2]),  # lower is better
        "max_drawdown": draw([-0.4, -0.2, -0.05]),
        "total_trades": rng.choice([0, 3, 12]),
        "profit_factor": rng.choice([1.2, None, math.inf, math.nan]),
    }


def _expected(metrics: list[dict[str, Any]], sort: str) -> list[int]:
    """The documented order, computed plainly: defined values by the direction,
    ties by index, then the undefined ones by index."""
    name, sign = sort.removeprefix("-"), -1 if sort.startswith("-") else 1

    def defined(v: Any) -> bool:
        return isinstance(v, int | float) and math.isfinite(v)

    have = [i for i, m in enumerate(metrics) if defined(m.get(name))]
    missing = [i for i, m in enumerate(metrics) if not defined(m.get(name))]
    return sorted(have, key=lambda i: (sign * metrics[i][name], i)) + missing


async def _store(session: AsyncSession, sweep_id: uuid.UUID) -> list[dict[str, Any]]:
    rng = random.Random(14)
    all_metrics = [_metrics(rng) for _ in range(N_ROWS)]
    values = []
    for index, metrics in enumerate(all_metrics):
        equity = [1.0, 1.01, 0.99, 1.02, 1.03, 1.0][: 3 + index % 3]
        row = rows.row_values(
            index,
            {"strategy_params.top_n": index},
            Evaluated(metrics=metrics, equity=np.array(equity)),
            "volatility",
        )
        # JSON cannot hold NaN/inf: what the engine stores for them is None
        row["metrics"] = {
            k: (v if v is None or math.isfinite(v) else None)
            for k, v in metrics.items()
        }
        values.append({"sweep_id": sweep_id, **row})
    await repository.insert_rows(session, values)
    await session.commit()
    return all_metrics


@pytest.mark.parametrize(
    "sort",
    ["-sharpe_ratio", "sharpe_ratio", "volatility", "-volatility", "max_drawdown",
     "-total_trades", "-profit_factor", "profit_factor", "-index", "index"],
)  # fmt: skip
async def test_pages_follow_the_documented_order(
    engine_at_head: AsyncEngine, sort: str
) -> None:
    sessions = async_sessionmaker(engine_at_head, expire_on_commit=False)
    async with sessions() as session:
        sweep_id = await _sweep(session)
        metrics = await _store(session, sweep_id)
        got: list[int] = []
        totals = set()
        for offset in range(0, N_ROWS + PAGE, PAGE):
            page, total = await repository.page(
                session, sweep_id, sort=sort, limit=PAGE, offset=offset
            )
            totals.add(total)
            got.extend(r.index for r in page)
        one_page, _ = await repository.page(
            session, sweep_id, sort=sort, limit=N_ROWS, offset=0
        )

    if sort.removeprefix("-") == "index":
        want = sorted(range(N_ROWS), reverse=sort.startswith("-"))
    else:
        want = _expected(metrics, sort)
        name = sort.removeprefix("-")
        assert any(m.get(name) is None for m in metrics) or name == "total_trades"
    assert got == want
    assert [r.index for r in one_page] == want
    assert totals == {N_ROWS}


async def test_best_by_a_lower_is_better_objective_uses_the_column(
    engine_at_head: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(engine_at_head, expire_on_commit=False)
    async with sessions() as session:
        sweep_id = await _sweep(session)
        metrics = await _store(session, sweep_id)  # objective: volatility
        best = await repository.best(session, sweep_id, higher_is_better=False)
        objectives = await repository.objectives(session, sweep_id)

    assert best is not None
    assert best.index == _expected(metrics, "volatility")[0]
    assert objectives == [m["volatility"] for m in metrics]


# --------------------------------------------------------------- migration 0011
def _upgrade_to(url: str, revision: str) -> None:
    if is_sqlite(url):
        ensure_sqlite_parent_dir(url)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


def _downgrade_to(url: str, revision: str) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.downgrade, alembic_config(url), revision).result()


async def test_migration_0011_fills_the_columns_from_stored_rows_and_unwinds(
    fresh_url: str,  # noqa: F811 - the imported fixture
) -> None:
    _upgrade_to(fresh_url, "0010")
    sqlite = is_sqlite(fresh_url)
    user_id, job_id = uuid.uuid4(), uuid.uuid4()
    ids = (user_id.hex, job_id.hex) if sqlite else (user_id, job_id)
    now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    stored = [
        {"sharpe_ratio": 1.5, "volatility": None, "total_trades": 7},
        {"sharpe_ratio": -0.25, "volatility": 0.12, "total_trades": 0},
        {"sharpe_ratio": None, "volatility": 0.3},
    ]
    engine = create_async_engine(fresh_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, tier, is_admin, "
                    "created_at) VALUES (:id, 'old', 'h', 'pro', :no, :at)"
                ),
                {"id": ids[0], "no": False, "at": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO jobs (id, user_id, kind, status, config, created_at) "
                    "VALUES (:id, :user, 'sweep', 'completed', :config, :at)"
                ),
                {"id": ids[1], "user": ids[0], "config": "{}", "at": now},
            )
            for index, metrics in enumerate(stored):
                await conn.execute(
                    text(
                        'INSERT INTO sweep_rows (sweep_id, "index", params, metrics, '
                        "returns) VALUES (:id, :index, '{}', :metrics, :returns)"
                    ),
                    {
                        "id": ids[1],
                        "index": index,
                        "metrics": orjson.dumps(metrics).decode(),
                        "returns": b"\0" * 8,
                    },
                )
        await engine.dispose()

        await asyncio.to_thread(upgrade_to_head, fresh_url)

        async with engine.connect() as conn:
            filled = (
                await conn.execute(
                    text(
                        'SELECT "index", m_sharpe_ratio, m_volatility, m_total_trades, '
                        'm_cagr FROM sweep_rows ORDER BY "index"'
                    )
                )
            ).all()
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session:
            by_sharpe, total = await repository.page(
                session, job_id, sort="-sharpe_ratio", limit=10, offset=0
            )
            by_vol, _ = await repository.page(
                session, job_id, sort="volatility", limit=10, offset=0
            )
        await engine.dispose()

        await asyncio.to_thread(_downgrade_to, fresh_url, "0010")
        async with engine.connect() as conn:
            kept = (
                await conn.execute(
                    text('SELECT "index", metrics FROM sweep_rows ORDER BY "index"')
                )
            ).all()
    finally:
        await engine.dispose()

    assert [tuple(r) for r in filled] == [
        (0, 1.5, None, 7.0, None),
        (1, -0.25, 0.12, 0.0, None),
        (2, None, 0.3, None, None),
    ]
    assert total == 3
    assert [r.index for r in by_sharpe] == [0, 1, 2]
    assert [r.index for r in by_vol] == [1, 2, 0]
    assert [r[0] for r in kept] == [0, 1, 2]
    loaded = [orjson.loads(m) if isinstance(m, str | bytes) else m for _, m in kept]
    assert loaded == stored
