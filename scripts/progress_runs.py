"""Shared by ``calibrate_progress.py`` and ``bench_eta.py``: a spread of backtests on
the bundled dataset, run through the job kind's own steps
(:func:`app.backtests.run.compute`, then :func:`app.backtests.run.save_results`
in a transaction that is rolled back), with a reporter that timestamps each phase.

Saving needs PostgreSQL: ``--admin-url`` (default ``postgresql://postgres@127.0.0.1
:5432/postgres``) creates a scratch database, migrates it and drops it at the end;
``--no-db`` skips saving (its phase is then 0 s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.backtests import cost
from app.backtests.run import compute, save_results
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.jobs.eta import Phase

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STRATEGY_IDS = (1, 2, 3, 4, 5, 6, 7)
SYMBOL_COUNTS = (5, 20, 60, 150, 300, 0)  # 0: every stock (universe sp500_pit)
YEARS = (1, 3, 6, 10, 15)
REBALANCING = ("daily", "weekly", "monthly")


def spread(data: MarketData, count: int, seed: int) -> list[BacktestConfig]:
    """``count`` configs drawn (``seed``) over strategies, symbol counts, spans,
    rebalancing, execution and dividends; the largest cases always included."""
    rng = random.Random(seed)
    last = data.dates[-1].astype("datetime64[D]").item()
    stocks = list(data.stocks)
    out = []
    for i in range(count):
        n = (
            SYMBOL_COUNTS[i % len(SYMBOL_COUNTS)]
            if i < 6
            else rng.choice(SYMBOL_COUNTS)
        )
        years = YEARS[-1] if i < 3 else rng.choice(YEARS)
        start = last - dt.timedelta(days=int(365.25 * years))
        strategy = rng.choice(STRATEGY_IDS)
        out.append(
            BacktestConfig(
                start_date=start,
                end_date=last,
                rebalancing=REBALANCING[i % 3] if i < 6 else rng.choice(REBALANCING),  # type: ignore[arg-type]
                execution=rng.choice(("close", "next_open")),  # type: ignore[arg-type]
                dividends=rng.random() < 0.7,
                strategy_id=strategy,
                symbols=tuple(sorted(rng.sample(stocks, n))) if n else None,
                universe="sp500_pit" if n == 0 else "all",
                benchmark="SPY" if "SPY" in data.column_of else None,
            )
        )
    return out


def describe(config: BacktestConfig) -> str:
    n = len(config.symbols) if config.symbols else "pit"
    years = round((config.end_date - config.start_date).days / 365.25)
    how = f"{config.rebalancing} {config.execution}"
    return f"s{config.strategy_id} {n} sym {years} y {how}"


@dataclass
class PhaseTimer:
    """A reporter (``app.jobs.registry.Reporter``) that records when each phase
    starts; ``listener`` (optional) sees every call, for the ETA benchmark."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    planned: list[Phase] = field(default_factory=list)
    listener: Any = None

    def plan(self, phases: Sequence[Phase]) -> None:
        if not self.planned:  # the first plan starts the clock; later ones refine
            self.marks.append((phases[0].name, time.perf_counter()))
        self.planned = list(phases)
        if self.listener is not None:
            self.listener.plan(phases)

    def phase(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))
        if self.listener is not None:
            self.listener.phase(name)

    def progress(
        self, fraction: float, current_date: Any, work_done: int, **_: Any
    ) -> None:
        if self.listener is not None:
            self.listener.progress(fraction)

    def cancelled(self) -> bool:
        return False

    def seconds(self, end: float) -> dict[str, float]:
        """Seconds per phase (a phase's time runs until the next one starts)."""
        out = dict.fromkeys(cost.PHASES, 0.0)
        stamps = [*self.marks, ("", end)]
        for (name, t0), (_, t1) in itertools.pairwise(stamps):
            out[name] = out.get(name, 0.0) + (t1 - t0)
        return out


class Saver:
    """Times ``save_results`` against a scratch PostgreSQL database (rolled back)."""

    def __init__(self, admin_url: str | None) -> None:
        self.admin_url = admin_url
        self.name: str | None = None
        self.loop = asyncio.new_event_loop()
        self.engine: Any = None
        self.job_id: uuid.UUID | None = None

    def __enter__(self) -> Saver:
        if self.admin_url is None:
            return self
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        from app.db.migrate import upgrade_to_head  # noqa: PLC0415

        self.name = f"bt_calib_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name))
            )
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        url = (
            f"postgresql+asyncpg://{info.get('user', 'postgres')}@"
            f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{self.name}"
        )
        upgrade_to_head(url)
        from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

        self.engine = create_async_engine(url, pool_size=1, max_overflow=0)
        self.job_id = self.loop.run_until_complete(self._job())
        return self

    async def _job(self) -> uuid.UUID:
        from sqlalchemy.ext.asyncio import AsyncSession  # noqa: PLC0415

        from app.accounts import repository as users  # noqa: PLC0415
        from app.jobs import repository as jobs  # noqa: PLC0415

        async with AsyncSession(self.engine, expire_on_commit=False) as s:
            user = await users.create(s, username="calibration", password_hash="x")
            job = await jobs.create(s, user_id=user.id, kind="backtest", config={})
            await s.commit()
            return job.id

    def save(self, result: Any, stored: Any) -> float:
        """Seconds to write the run's results (0 without a database)."""
        if self.engine is None or self.job_id is None:
            return 0.0

        async def go() -> float:
            from sqlalchemy.ext.asyncio import AsyncSession  # noqa: PLC0415

            async with AsyncSession(self.engine) as s:
                t0 = time.perf_counter()
                await save_results(s, self.job_id, result, stored)  # type: ignore[arg-type]
                await s.flush()
                elapsed = time.perf_counter() - t0
                await s.rollback()
                return elapsed

        return self.loop.run_until_complete(go())

    def __exit__(self, *exc: object) -> None:
        if self.engine is not None:
            self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()
        if self.name is not None and self.admin_url is not None:
            import psycopg  # noqa: PLC0415
            from psycopg import sql  # noqa: PLC0415

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.name)
                    )
                )


@contextmanager
def prepared(admin_url: str | None) -> Iterator[tuple[MarketData, Saver]]:
    """The warmed-up bundled dataset (as a worker has it) and a saver."""
    from app.backtests.run import warm_up  # noqa: PLC0415
    from app.core.config import Settings  # noqa: PLC0415
    from app.data.store import load_dataset  # noqa: PLC0415

    settings = Settings(environment="test")
    warm_up(settings)
    data = load_dataset(datasets_dir=settings.resolved_datasets_dir)
    with Saver(admin_url) as saver:
        yield data, saver


def run_one(
    config: BacktestConfig, data: MarketData, saver: Saver, listener: Any = None
) -> tuple[cost.Workload, cost.Outcome, dict[str, float]]:
    """One run as a job runs it; its workload, outcome and seconds per phase."""
    timer = PhaseTimer(listener=listener)
    result, _, stored = compute(config, data, uuid.uuid4(), timer)
    timer.phase("saving")
    end = time.perf_counter()
    seconds = timer.seconds(end)
    seconds["saving"] = saver.save(result, stored)
    seconds["positions"] = len(stored.positions)  # not a phase: the saving model's
    return cost.workload(config, data), cost.outcome(result), seconds
