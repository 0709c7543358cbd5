"""The /v1/backtest API on real PostgreSQL through the ASGI app (no worker).

``POST /v1/backtest`` enqueues to Celery: the ``client`` app has no REDIS_URL, so the
Celery app of this process uses kombu's in-memory transport and, since the ASGI
transport runs no lifespan, no worker consumes it (``embedded_worker_concurrency=0``
makes that explicit): submitted jobs simply stay ``pending``. Finished jobs are
arranged with the repositories and a real engine result.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.backtests import repository as trades_repo
from app.backtests.charts import series_payload
from app.backtests.schemas import BacktestRequest
from app.core.config import Settings
from app.core.queue import get_celery
from app.data.store import load_dataset
from app.db.models import Job, User
from app.engine.backtest import BacktestResult, run_backtest
from app.jobs import repository as backtests_repo
from app.main import create_app
from tests.integration.conftest import UserFactory
from tests.integration.session_override import use_test_session

pytestmark = pytest.mark.integration

Headers = Callable[[User], dict[str, str]]
BODY: dict[str, Any] = {
    "name": "momentum",
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}
# Small and deterministic: 5 symbols, 2 years monthly, 115 round trips with
# dividends as cash, more with them reinvested (the default).
SMALL: dict[str, Any] = {
    "name": "five stocks",
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}


@pytest.fixture
def app(test_settings: Settings, session: AsyncSession) -> FastAPI:
    """The conftest app, with the embedded worker explicitly off."""
    assert str(get_celery().conf.broker_url).startswith("memory"), (
        "these tests must not enqueue to a real broker; unset REDIS_URL"
    )
    settings = test_settings.model_copy(update={"embedded_worker_concurrency": 0})
    application = create_app(settings)

    return use_test_session(application, session)


@functools.cache
def _engine_result() -> BacktestResult:
    config = BacktestRequest.model_validate(SMALL).to_config()
    return run_backtest(config, load_dataset(None))


async def _completed_job(session: AsyncSession, user: User, **fields: Any) -> Job:
    """A job as the worker leaves it: completed, metrics, trades and chart series."""
    result = _engine_result()
    row = await backtests_repo.create(
        session,
        kind="backtest",
        user_id=user.id,
        config=SMALL,
        name=fields.pop("name", "done"),
    )
    assert await backtests_repo.mark_running(session, row.id, claim_token="t")
    assert await backtests_repo.mark_completed(
        session,
        row.id,
        claim_token="t",
        metrics=result.metrics,
        total_return=fields.pop("total_return", result.metrics["total_return"]),
        sharpe_ratio=fields.pop("sharpe_ratio", result.metrics["sharpe_ratio"]),
    )
    await trades_repo.bulk_insert(session, row.id, result.trade_records())
    await trades_repo.save_series(session, row.id, series_payload(result))
    await session.refresh(row)
    for key, value in fields.items():
        setattr(row, key, value)
    await session.flush()
    return row


@dataclass
class Caller:
    """A signed-in user and the headers of their requests."""

    user: User
    headers: dict[str, str]


@dataclass
class Completed(Caller):
    """A caller and a completed backtest of theirs (``_completed_job``)."""

    job: Job


@pytest.fixture
async def caller(user_factory: UserFactory, auth_headers: Headers) -> Caller:
    user = await user_factory()
    return Caller(user, auth_headers(user))


@pytest.fixture
async def completed(session: AsyncSession, caller: Caller) -> Completed:
    job = await _completed_job(session, caller.user)
    return Completed(caller.user, caller.headers, job)


async def _job(session: AsyncSession, user: User, **fields: Any) -> Job:
    """A bare job row in any state (for history filters and sorts)."""
    row = await backtests_repo.create(
        session,
        kind="backtest",
        user_id=user.id,
        config=SMALL,
        name=fields.pop("name", None),
    )
    for key, value in fields.items():
        setattr(row, key, value)
    await session.flush()
    return row


async def _submit(
    client: httpx.AsyncClient, headers: dict[str, str], **changes: Any
) -> httpx.Response:
    return await client.post("/v1/backtest", json={**BODY, **changes}, headers=headers)


# --- submit ---------------------------------------------------------------------


async def test_create_backtest_returns_pending_task(
    client: httpx.AsyncClient,
    caller: Caller,
) -> None:

    response = await _submit(client, caller.headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task_id", "status", "created_at"}
    assert uuid.UUID(body["task_id"]).version == 4
    assert body["status"] == "pending"
    created = dt.datetime.fromisoformat(body["created_at"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=5)


async def test_create_backtest_stores_normalised_config(
    client: httpx.AsyncClient,
    caller: Caller,
) -> None:
    response = await _submit(
        client, caller.headers, symbols=[" aapl", "msft"], benchmark="spy"
    )

    detail = await client.get(
        f"/v1/backtest/{response.json()['task_id']}", headers=caller.headers
    )

    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["status"] == "pending" and body["progress"] == 0
    assert body["started_at"] is None and body["metrics"] is None
    assert body["config"]["symbols"] == ["AAPL", "MSFT"]
    assert body["config"]["benchmark"] == "SPY"
    assert body["name"] == "momentum"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"start_date": "2020-01-01", "end_date": "2019-01-01"}, "body.end_date"),
        ({"end_date": "2999-01-01"}, "body.end_date"),
        ({"start_date": "2001-01-01", "end_date": "2019-12-31"}, "body.end_date"),
        ({"start_date": "not-a-date"}, "body.start_date"),
    ],
)
async def test_create_backtest_invalid_dates_is_400(
    client: httpx.AsyncClient,
    changes: dict[str, Any],
    field: str,
    caller: Caller,
) -> None:

    response = await _submit(client, caller.headers, **changes)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "ValidationError"
    assert [d["field"] for d in body["details"]] == [field]


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"symbols": ["AAPL", "NOPE1"]}, "body.symbols", "NOPE1"),
        ({"benchmark": "AAPL"}, "body.benchmark", "benchmark must be one of"),
        (
            {"start_date": "1995-01-01", "end_date": "2000-01-01"},
            "body.start_date",
            "covers 2005-01-03 to 2024-08-26",
        ),
        (
            {"start_date": "2024-09-02", "end_date": "2024-10-01"},
            "body.start_date",
            "covers",
        ),
        ({"strategy_id": 99}, "body.strategy_id", "unknown strategy_id 99"),
        (
            {"strategy_params": {"top_n": 0}},
            "body.strategy_params.top_n",
            "between 1 and 500",
        ),
        (
            {"strategy_params": {"bogus": 1}},
            "body.strategy_params.bogus",
            "unknown parameter",
        ),
        ({"dataset": "no-such-dataset"}, "body.dataset", "no-such-dataset"),
    ],
)
async def test_create_backtest_checked_against_dataset_is_400(
    client: httpx.AsyncClient,
    changes: dict[str, Any],
    field: str,
    fragment: str,
    caller: Caller,
) -> None:

    response = await _submit(client, caller.headers, **changes)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "ValidationError"
    assert body["details"] == [{"field": field, "message": body["message"]}]
    assert fragment in body["message"]


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        (
            {"filters": [{"factor": "nope", "op": ">", "value": 1}]},
            "body.filter_criteria.filters[0].factor",
        ),
        ({"rank_by": "momentum"}, "body.filter_criteria.rank_by"),
        ({"top_n": -1}, "body.filter_criteria.top_n"),
        ({"bogus": 1}, "body.filter_criteria.bogus"),
    ],
)
async def test_create_backtest_bad_filter_criteria_names_the_path(
    client: httpx.AsyncClient,
    criteria: dict[str, Any],
    field: str,
    caller: Caller,
) -> None:
    body = {k: v for k, v in BODY.items() if not k.startswith("strategy")}

    response = await client.post(
        "/v1/backtest",
        json={**body, "filter_criteria": criteria},
        headers=caller.headers,
    )

    assert response.status_code == 400, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]


async def test_create_backtest_rejected_request_stores_nothing(
    client: httpx.AsyncClient,
    caller: Caller,
) -> None:
    await _submit(client, caller.headers, symbols=["NOPE1"])

    history = await client.get("/v1/backtest/history", headers=caller.headers)

    assert history.json() == []
    assert history.headers["X-Total-Count"] == "0"


# --- read, ownership ------------------------------------------------------------


async def test_get_unknown_backtest_is_404(
    client: httpx.AsyncClient,
    caller: Caller,
) -> None:
    task_id = str(uuid.uuid4())

    response = await client.get(f"/v1/backtest/{task_id}", headers=caller.headers)

    assert response.status_code == 404
    assert response.json() == {
        "error": "NotFound",
        "message": "Backtest not found",
        "task_id": task_id,
    }


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/trades"), ("GET", "/chart"), ("DELETE", "")],
)
async def test_other_users_job_is_the_same_404_as_unknown_and_malformed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
    method: str,
    suffix: str,
) -> None:
    owner, stranger = await user_factory(), await user_factory()
    job = await _completed_job(session, owner)
    headers = auth_headers(stranger)

    answers = {}
    for task_id in (str(job.id), str(uuid.uuid4()), "not-a-uuid", "1234"):
        response = await client.request(
            method, f"/v1/backtest/{task_id}{suffix}", headers=headers
        )
        body = response.json()
        assert body.pop("task_id") == task_id
        answers[task_id] = (response.status_code, body)

    expected = (404, {"error": "NotFound", "message": "Backtest not found"})
    assert list(answers.values()) == [expected] * 4
    owner_view = await client.get(f"/v1/backtest/{job.id}", headers=auth_headers(owner))
    assert owner_view.status_code == 200  # the stranger's DELETE did nothing


async def test_admin_can_read_any_users_job(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    owner, admin = await user_factory(), await user_factory(is_admin=True)
    job = await _completed_job(session, owner)
    headers = auth_headers(admin)

    detail = await client.get(f"/v1/backtest/{job.id}", headers=headers)
    trades = await client.get(f"/v1/backtest/{job.id}/trades", headers=headers)
    chart = await client.get(f"/v1/backtest/{job.id}/chart", headers=headers)

    assert detail.status_code == trades.status_code == chart.status_code == 200
    assert detail.json()["task_id"] == str(job.id)


async def test_history_is_scoped_to_the_caller_even_for_admins(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    owner, admin = await user_factory(), await user_factory(is_admin=True)
    await _job(session, owner)

    mine = await client.get("/v1/backtest/history", headers=auth_headers(owner))
    theirs = await client.get("/v1/backtest/history", headers=auth_headers(admin))

    assert mine.headers["X-Total-Count"] == "1"
    assert theirs.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("suffix", ["/trades", "/chart"])
async def test_results_before_completion_are_409(
    client: httpx.AsyncClient,
    suffix: str,
    caller: Caller,
) -> None:
    task_id = (await _submit(client, caller.headers)).json()["task_id"]

    response = await client.get(
        f"/v1/backtest/{task_id}{suffix}", headers=caller.headers
    )

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "Conflict"
    assert body["task_id"] == task_id
    assert "pending" in body["message"]


async def test_get_completed_backtest_has_metrics(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job

    body = (
        await client.get(f"/v1/backtest/{job.id}", headers=completed.headers)
    ).json()

    assert body["status"] == "completed" and body["progress"] == 100
    metrics = body["metrics"]
    for key in ("total_return", "sharpe_ratio", "max_drawdown", "total_trades"):
        assert key in metrics
    assert metrics["total_trades"] == len(_engine_result().trades)


# --- trades ---------------------------------------------------------------------


async def test_trades_default_page_has_total_and_next_link(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job
    total = len(_engine_result().trades)

    response = await client.get(
        f"/v1/backtest/{job.id}/trades", headers=completed.headers
    )

    assert response.status_code == 200
    assert int(response.headers["X-Total-Count"]) == total > 50
    assert len(response.json()) == 50
    assert response.headers["Link"] == (
        f'<http://test/v1/backtest/{job.id}/trades?limit=50&offset=50>; rel="next"'
    )


async def test_trades_pages_cover_every_trade_exactly_once(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job
    expected = Counter(_trade_key(t) for t in _engine_result().trade_records())

    seen: Counter[tuple[Any, ...]] = Counter()
    url: str | None = f"/v1/backtest/{job.id}/trades?limit=40&sort=-pnl"
    pages = 0
    while url:
        response = await client.get(url, headers=completed.headers)
        seen.update(_trade_key(t) for t in response.json())
        url = _link(response, "next")
        pages += 1

    # 115 lots with dividends as cash; the reinvested ones (the default) add more
    assert pages == -(-sum(expected.values()) // 40) >= 3
    assert seen == expected


def _trade_key(trade: dict[str, Any]) -> tuple[Any, ...]:
    return (
        trade["symbol"],
        str(trade["entry_date"]),
        round(trade["quantity"], 6),
        round(trade["entry_price"], 6),
        None if trade["exit_date"] is None else str(trade["exit_date"]),
    )


def _link(response: httpx.Response, rel: str) -> str | None:
    for part in response.headers.get("Link", "").split(","):
        if part.strip().endswith(f'rel="{rel}"'):
            url = str(part.strip().split(";")[0].strip("<> "))
            return url.removeprefix("http://test")
    return None


async def test_trades_middle_page_links_both_ways_and_keeps_filters(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job

    response = await client.get(
        f"/v1/backtest/{job.id}/trades",
        params={"limit": 10, "offset": 20, "sort": "symbol"},
        headers=completed.headers,
    )

    assert len(response.json()) == 10
    assert _link(response, "next") == (
        f"/v1/backtest/{job.id}/trades?limit=10&offset=30&sort=symbol"
    )
    assert _link(response, "prev") == (
        f"/v1/backtest/{job.id}/trades?limit=10&offset=10&sort=symbol"
    )


async def test_trades_last_page_has_only_prev_link(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job
    total = len(_engine_result().trades)

    response = await client.get(
        f"/v1/backtest/{job.id}/trades",
        params={"limit": 500, "offset": total - 5},
        headers=completed.headers,
    )

    assert len(response.json()) == 5
    assert _link(response, "next") is None
    assert _link(response, "prev") is not None


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"limit": "ten"},
        {"sort": "price"},
        {"start_date": "2019-02-30"},
        {"symbol": "X" * 17},
    ],
)
async def test_trades_bad_query_is_400(
    client: httpx.AsyncClient,
    params: dict[str, Any],
    completed: Completed,
) -> None:
    job = completed.job

    response = await client.get(
        f"/v1/backtest/{job.id}/trades", params=params, headers=completed.headers
    )

    assert response.status_code == 400
    [detail] = response.json()["details"]
    assert detail["field"] == f"query.{next(iter(params))}"


async def test_trades_filter_by_symbol_and_entry_dates(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job
    records = _engine_result().trade_records()
    lo, hi = dt.date(2018, 6, 1), dt.date(2019, 3, 31)
    expected = [
        r for r in records if r["symbol"] == "AAPL" and lo <= r["entry_date"] <= hi
    ]

    response = await client.get(
        f"/v1/backtest/{job.id}/trades",
        params={"symbol": "aapl", "start_date": str(lo), "end_date": str(hi)},
        headers=completed.headers,
    )

    trades = response.json()
    assert int(response.headers["X-Total-Count"]) == len(trades) == len(expected) > 0
    assert {t["symbol"] for t in trades} == {"AAPL"}
    assert all(str(lo) <= t["entry_date"] <= str(hi) for t in trades)


@pytest.mark.parametrize(
    "field", ["entry_date", "exit_date", "symbol", "pnl", "pnl_percent"]
)
@pytest.mark.parametrize("descending", [False, True])
async def test_trades_every_sort_orders_with_nulls_last(
    client: httpx.AsyncClient,
    field: str,
    descending: bool,
    completed: Completed,
) -> None:
    job = completed.job

    response = await client.get(
        f"/v1/backtest/{job.id}/trades",
        params={"sort": f"-{field}" if descending else field, "limit": 500},
        headers=completed.headers,
    )

    values = [t[field] for t in response.json()]
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present))
    assert present == sorted(present, reverse=descending)


# --- chart ----------------------------------------------------------------------


async def test_chart_respects_max_points_and_keeps_ends_and_worst_drawdown(
    client: httpx.AsyncClient,
    completed: Completed,
) -> None:
    job = completed.job
    payload = series_payload(_engine_result())

    response = await client.get(
        f"/v1/backtest/{job.id}/chart",
        params={"max_points": 20},
        headers=completed.headers,
    )

    assert response.status_code == 200
    chart = response.json()
    equity, drawdown = chart["equity_curve"], chart["drawdown_series"]
    assert 2 < len(equity) == len(drawdown) <= 20
    assert equity[0]["date"] == payload["dates"][0]
    assert equity[-1]["date"] == payload["dates"][-1]
    assert min(p["drawdown"] for p in drawdown) == min(payload["drawdown"])
    assert equity[0]["benchmark"] == pytest.approx(equity[0]["equity"])
    assert chart["benchmark_symbol"] == "SPY"
    assert chart["monthly_returns"] == payload["monthly_returns"]


@pytest.mark.parametrize("max_points", [9, 10_001, "many"])
async def test_chart_bad_max_points_is_400(
    client: httpx.AsyncClient,
    session: AsyncSession,
    max_points: Any,
    completed: Completed,
) -> None:
    job = completed.job

    response = await client.get(
        f"/v1/backtest/{job.id}/chart",
        params={"max_points": max_points},
        headers=completed.headers,
    )

    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "query.max_points"


# --- history --------------------------------------------------------------------

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


async def _history_fixture(session: AsyncSession, user: User) -> list[Job]:
    """Four jobs a month apart: a / b completed, c failed, d pending (no metrics)."""
    return [
        await _job(
            session, user, name="b", status="completed", total_return=0.10,
            sharpe_ratio=1.5, created_at=T0,
        ),
        await _job(
            session, user, name="a", status="completed", total_return=-0.05,
            sharpe_ratio=2.0, created_at=T0 + dt.timedelta(days=31),
        ),
        await _job(
            session, user, name="d", status="failed",
            created_at=T0 + dt.timedelta(days=60),
        ),
        await _job(
            session, user, name="c", status="pending",
            created_at=T0 + dt.timedelta(days=91),
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at", "badc"),
        ("-created_at", "cdab"),
        ("name", "abcd"),
        ("-name", "dcba"),
        # Jobs without metrics (c, d) come last in both directions.
        ("total_return", "ab??"),
        ("-total_return", "ba??"),
        ("sharpe_ratio", "ba??"),
        ("-sharpe_ratio", "ab??"),
    ],
)
async def test_history_every_sort(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sort: str,
    expected: str,
    caller: Caller,
) -> None:
    user = caller.user
    await _history_fixture(session, user)

    response = await client.get(
        "/v1/backtest/history", params={"sort": sort}, headers=caller.headers
    )

    assert response.status_code == 200
    names = "".join(item["name"] for item in response.json())
    if expected.endswith("??"):
        assert names[:2] == expected[:2]
        assert set(names[2:]) == {"c", "d"}
    else:
        assert names == expected


async def test_history_filters_by_status(
    client: httpx.AsyncClient,
    session: AsyncSession,
    caller: Caller,
) -> None:
    user = caller.user
    await _history_fixture(session, user)

    response = await client.get(
        "/v1/backtest/history",
        params={"status": "completed"},
        headers=caller.headers,
    )

    items = response.json()
    assert response.headers["X-Total-Count"] == "2"
    assert {i["name"] for i in items} == {"a", "b"}
    assert all(i["total_return"] is not None for i in items)
    assert {i["sharpe_ratio"] for i in items} == {1.5, 2.0}


async def test_history_filters_by_creation_window(
    client: httpx.AsyncClient,
    session: AsyncSession,
    caller: Caller,
) -> None:
    user = caller.user
    jobs = await _history_fixture(session, user)

    response = await client.get(
        "/v1/backtest",
        params={
            "created_after": (T0 + dt.timedelta(days=31)).isoformat(),  # inclusive
            "created_before": (T0 + dt.timedelta(days=91)).isoformat(),  # exclusive
            "sort": "created_at",
        },
        headers=caller.headers,
    )

    assert [i["task_id"] for i in response.json()] == [str(jobs[1].id), str(jobs[2].id)]


async def test_history_paginates_with_links(
    client: httpx.AsyncClient,
    session: AsyncSession,
    caller: Caller,
) -> None:
    user = caller.user
    await _history_fixture(session, user)

    response = await client.get(
        "/v1/backtest/history",
        params={"limit": 2, "offset": 1, "sort": "name"},
        headers=caller.headers,
    )

    assert [i["name"] for i in response.json()] == ["b", "c"]
    assert response.headers["X-Total-Count"] == "4"
    assert _link(response, "next") == "/v1/backtest/history?limit=2&offset=3&sort=name"
    assert _link(response, "prev") == "/v1/backtest/history?limit=2&offset=0&sort=name"


@pytest.mark.parametrize(
    "params",
    [
        {"status": "done"},
        {"sort": "pnl"},
        {"limit": 0},
        {"limit": 101},
        {"created_after": "last week"},
    ],
)
async def test_history_bad_query_is_400(
    client: httpx.AsyncClient,
    params: dict[str, Any],
    caller: Caller,
) -> None:

    response = await client.get(
        "/v1/backtest/history", params=params, headers=caller.headers
    )

    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == f"query.{next(iter(params))}"


# --- cancel / delete ------------------------------------------------------------


async def test_delete_pending_cancels_then_second_delete_removes(
    client: httpx.AsyncClient,
    caller: Caller,
) -> None:
    headers = caller.headers
    task_id = (await _submit(client, headers)).json()["task_id"]

    cancelled = await client.delete(f"/v1/backtest/{task_id}", headers=headers)
    shown = await client.get(f"/v1/backtest/{task_id}", headers=headers)
    deleted = await client.delete(f"/v1/backtest/{task_id}", headers=headers)
    gone = await client.get(f"/v1/backtest/{task_id}", headers=headers)

    assert cancelled.status_code == 200
    assert cancelled.json() == {
        "task_id": task_id,
        "status": "cancelled",
        "message": "Backtest cancelled before it started.",
    }
    assert shown.json()["status"] == "cancelled"
    assert shown.json()["started_at"] is None
    assert deleted.status_code == 200
    assert "deleted" in deleted.json()["message"]
    assert gone.status_code == 404


async def test_delete_completed_removes_job_and_results(
    client: httpx.AsyncClient,
    session: AsyncSession,
    completed: Completed,
) -> None:
    job = completed.job
    headers = completed.headers

    response = await client.delete(f"/v1/backtest/{job.id}", headers=headers)

    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert "deleted" in response.json()["message"]
    for suffix in ("", "/trades", "/chart"):
        gone = await client.get(f"/v1/backtest/{job.id}{suffix}", headers=headers)
        assert gone.status_code == 404
    rows, total = await trades_repo.page(session, job.id)
    assert (rows, total) == ([], 0)


# --- authentication -------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/backtest"),
    ("GET", "/v1/backtest"),
    ("GET", "/v1/backtest/history"),
    ("GET", "/v1/backtest/{id}"),
    ("GET", "/v1/backtest/{id}/trades"),
    ("GET", "/v1/backtest/{id}/chart"),
    ("DELETE", "/v1/backtest/{id}"),
    ("GET", "/v1/strategies"),
    ("GET", "/v1/strategies/screening"),
    ("GET", "/v1/symbols"),
    ("GET", "/v1/datasets"),
]


def _bad_tokens(settings: Settings, user_id: uuid.UUID) -> dict[str, dict[str, str]]:
    now = dt.datetime.now(dt.UTC)

    def signed(secret: str, **claims: Any) -> str:
        base = {"sub": str(user_id), "iat": now, "exp": now + dt.timedelta(minutes=5)}
        return jwt.encode({**base, **claims}, secret, algorithm="HS256")

    return {
        "missing": {},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "not-bearer": {"Authorization": f"Basic {signed(settings.jwt_secret)}"},
        "wrong-secret": {"Authorization": f"Bearer {signed('y' * 48)}"},
        "unknown-user": {"Authorization": f"Bearer {signed(settings.jwt_secret)}"},
        "expired": {
            "Authorization": "Bearer "
            + signed(settings.jwt_secret, exp=now - dt.timedelta(seconds=5))
        },
    }


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_requires_a_valid_token(
    client: httpx.AsyncClient,
    test_settings: Settings,
    method: str,
    path: str,
) -> None:
    url = path.replace("{id}", str(uuid.uuid4()))

    for case, headers in _bad_tokens(test_settings, uuid.uuid4()).items():
        response = await client.request(
            method,
            url,
            headers=headers,
            json=BODY if method == "POST" else None,
        )
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"] == "Unauthorized", case
        assert response.headers["WWW-Authenticate"] == "Bearer", case
