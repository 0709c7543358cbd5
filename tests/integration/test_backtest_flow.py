"""End to end on a live stack: uvicorn + a prefork Celery worker + PostgreSQL + Redis,
driven over real HTTP and WebSockets (see ``tests/integration/stack.py``).

The stack's engine sleeps ``TEST_ENGINE_CHUNK_DELAY_SECONDS=0.06`` between its ~50
progress chunks, so LONG (five years, 60 monthly chunks) runs for ~3-4 s and SHORT
(one year, 12 chunks) for about one second.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aredis

from tests.integration.stack import LiveStack, free_port, watch_progress

pytestmark = pytest.mark.integration

LONG: dict[str, Any] = {
    "name": "momentum 5y",
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}
SHORT: dict[str, Any] = {
    "name": "five stocks 1y",
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}
# The bound for a cancelled job to stop, from the DELETE response. The worker
# checks the flag between chunks (0.06 s apart), so it typically stops in ~0.1 s;
# the rest is margin for a loaded 2-core machine.
CANCEL_STOP_BOUND_SECONDS = 2.0


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/backtest", json=body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def _all_trades(
    http: httpx.AsyncClient, task_id: str, **params: Any
) -> tuple[list[dict[str, Any]], int, int]:
    """Follow ``Link: rel=next`` from the first page; (trades, total, pages)."""
    trades: list[dict[str, Any]] = []
    url: str | None = f"/v1/backtest/{task_id}/trades"
    totals, pages = set(), 0
    query: dict[str, Any] | None = params
    while url:
        response = await http.get(url, params=query)
        assert response.status_code == 200, response.text
        totals.add(int(response.headers["X-Total-Count"]))
        trades.extend(response.json())
        pages += 1
        url = response.links.get("next", {}).get("url")
        query = None  # the link carries the query
    assert len(totals) == 1
    return trades, totals.pop(), pages


def _key(trade: dict[str, Any]) -> tuple[Any, ...]:
    return (
        trade["symbol"],
        trade["entry_date"],
        trade["exit_date"],
        trade["quantity"],
        trade["entry_price"],
    )


# --- the whole flow -------------------------------------------------------------


async def test_flow_submit_watch_read_delete(live_stack: LiveStack) -> None:
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        submitted_at = time.monotonic()
        task_id = await _submit(http, LONG)
        watched = await watch_progress(live_stack.ws_url, task_id, token=user.token)
        completed_after = time.monotonic() - submitted_at

        # WebSocket: state at once, monotone progress, completed, then 1000.
        print(
            f"\nsubmit->completed {completed_after:.2f} s; WS first message "
            f"{watched.first_message_seconds:.3f} s; {len(watched.messages)} messages"
        )
        assert watched.statuses[0] in {"pending", "running"}
        assert watched.statuses[-1] == "completed"
        assert set(watched.statuses[:-1]) <= {"pending", "running"}
        assert watched.statuses.count("running") >= 3
        progress = [m["progress"] for m in watched.messages]
        assert progress == sorted(progress), progress
        assert progress[-1] == 100.0
        assert watched.close_code == 1000

        # Status and metrics.
        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
        assert detail["status"] == "completed" and detail["progress"] == 100
        metrics = detail["metrics"]
        for key in ("total_return", "sharpe_ratio", "max_drawdown", "total_trades"):
            assert metrics[key] is not None, key
        assert detail["started_at"] <= detail["completed_at"]
        assert watched.messages[-1]["trades_executed"] == detail["trades_executed"] > 0

        await _check_trades(http, task_id, metrics["total_trades"])
        await _check_chart(http, task_id)

        # History shows it with its headline numbers.
        history = (await http.get("/v1/backtest/history")).json()
        [item] = [h for h in history if h["task_id"] == task_id]
        assert item["status"] == "completed"
        assert item["total_return"] == pytest.approx(metrics["total_return"])
        assert item["sharpe_ratio"] == pytest.approx(metrics["sharpe_ratio"])

        # Delete: gone from the API and from the database.
        deleted = await http.delete(f"/v1/backtest/{task_id}")
        assert deleted.status_code == 200
        assert (await http.get(f"/v1/backtest/{task_id}")).status_code == 404
        assert (await http.get(f"/v1/backtest/{task_id}/trades")).status_code == 404
    assert live_stack.count("trades", task_id) == 0
    assert live_stack.count("backtest_series", task_id) == 0


async def _check_trades(
    http: httpx.AsyncClient, task_id: str, total_trades: int
) -> None:
    trades, total, pages = await _all_trades(http, task_id, limit=200)
    assert total == len(trades) == total_trades
    assert pages == -(-total // 200)
    assert len(set(map(_key, trades))) == len(trades)  # each exactly once

    # The same set in any order: sorted by -pnl over pages of 333.
    by_pnl, _, _ = await _all_trades(http, task_id, limit=333, sort="-pnl")
    assert Counter(map(_key, by_pnl)) == Counter(map(_key, trades))
    pnls = [t["pnl"] for t in by_pnl]
    assert pnls == sorted(pnls, reverse=True)

    # Filters: one symbol within an entry-date window.
    symbol = Counter(t["symbol"] for t in trades).most_common(1)[0][0]
    window = {"start_date": "2017-01-01", "end_date": "2018-06-30"}
    filtered, count, _ = await _all_trades(
        http, task_id, symbol=symbol.lower(), limit=500, **window
    )
    expected = [
        t
        for t in trades
        if t["symbol"] == symbol
        and window["start_date"] <= t["entry_date"] <= window["end_date"]
    ]
    assert count == len(filtered) == len(expected)


async def _check_chart(http: httpx.AsyncClient, task_id: str) -> None:
    full = (await http.get(f"/v1/backtest/{task_id}/chart?max_points=10000")).json()
    small = (await http.get(f"/v1/backtest/{task_id}/chart?max_points=50")).json()
    dates = [p["date"] for p in full["equity_curve"]]
    assert len(dates) > 1000  # five years of sessions, not down-sampled
    assert "2015-01-02" <= dates[0] <= "2015-01-05"
    assert "2019-12-27" <= dates[-1] <= "2019-12-31"
    assert len(small["equity_curve"]) == len(small["drawdown_series"]) <= 50
    assert small["equity_curve"][0]["date"] == dates[0]
    assert small["equity_curve"][-1]["date"] == dates[-1]
    assert min(p["drawdown"] for p in small["drawdown_series"]) == min(
        p["drawdown"] for p in full["drawdown_series"]
    )
    assert small["benchmark_symbol"] == "SPY"
    assert small["monthly_returns"] == full["monthly_returns"]


# --- many at once ---------------------------------------------------------------


async def test_twenty_backtests_at_once_all_complete_once(
    live_stack: LiveStack,
) -> None:
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        bodies = [{**SHORT, "name": f"batch {i}"} for i in range(20)]
        task_ids = await asyncio.gather(*(_submit(http, b) for b in bodies))
        assert len(set(task_ids)) == 20

        finals = [await live_stack.wait_status(http, t, timeout=180) for t in task_ids]

        assert [f["status"] for f in finals] == ["completed"] * 20
        for task_id, final in zip(task_ids, finals, strict=True):
            total_trades = final["metrics"]["total_trades"]
            assert live_stack.count("trades", task_id) == total_trades > 0
            assert live_stack.count("backtest_series", task_id) == 1
            assert live_stack.job_row(task_id)["attempts"] == 1
        history = await http.get("/v1/backtest/history", params={"limit": 100})
        assert history.headers["X-Total-Count"] == "20"


# --- cancel ---------------------------------------------------------------------


async def test_cancel_running_job_stops_it_within_two_seconds(
    live_stack: LiveStack,
) -> None:
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        task_id = await _submit(http, LONG)
        await _wait_progress(live_stack, http, task_id, above=5.0)
        channel = await _subscribe(live_stack, task_id)
        try:
            response = await http.delete(f"/v1/backtest/{task_id}")
            deleted_at = time.monotonic()
            messages = await _collect(channel, seconds=CANCEL_STOP_BOUND_SECONDS + 2)
        finally:
            await channel.aclose()

        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        # The worker's own terminal message (eta 0; the API's has none) marks the
        # moment it stopped; nothing "running" may follow it.
        stops = [
            (t, m) for t, m in messages
            if m["status"] == "cancelled" and m["eta_seconds"] == 0.0
        ]  # fmt: skip
        assert stops, f"the worker never reported stopping: {messages}"
        stopped_at, _ = stops[0]
        print(f"\nworker stopped {stopped_at - deleted_at:.3f} s after DELETE")
        assert stopped_at - deleted_at < CANCEL_STOP_BOUND_SECONDS
        assert all(m["status"] != "running" for t, m in messages if t > stopped_at)

        row_then = live_stack.job_row(task_id)
        await asyncio.sleep(1.0)
        row_now = live_stack.job_row(task_id)
        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
    assert row_now["status"] == detail["status"] == "cancelled"
    assert (row_now["progress"], row_now["heartbeat_at"]) == (
        row_then["progress"],
        row_then["heartbeat_at"],
    )
    assert 0 < row_now["progress"] < 100
    assert detail["metrics"] is None
    assert live_stack.count("trades", task_id) == 0
    assert live_stack.count("backtest_series", task_id) == 0
    assert "job.cancelled" in _worker_lines(live_stack, task_id)


async def test_cancel_pending_job_never_starts(live_stack: LiveStack) -> None:
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        # Fill both worker slots, then queue a third job behind them.
        blockers = [await _submit(http, LONG) for _ in range(2)]
        for blocker in blockers:
            await live_stack.wait_status(http, blocker, {"running"})
        queued = await _submit(http, SHORT)

        response = await http.delete(f"/v1/backtest/{queued}")
        for blocker in blockers:  # free the slots: the queued message gets delivered
            await http.delete(f"/v1/backtest/{blocker}")
        await _wait_worker_line(live_stack, queued, "job.skipped")

        detail = (await http.get(f"/v1/backtest/{queued}")).json()
    assert response.status_code == 200
    assert response.json() == {
        "task_id": queued,
        "status": "cancelled",
        "message": "Backtest cancelled before it started.",
    }
    assert detail["status"] == "cancelled"
    assert detail["started_at"] is None and detail["progress"] == 0
    row = live_stack.job_row(queued)
    assert (row["attempts"], row["claim_token"]) == (0, None)
    assert "job.started" not in _worker_lines(live_stack, queued)


async def _wait_progress(
    stack: LiveStack, http: httpx.AsyncClient, task_id: str, *, above: float
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await http.get(f"/v1/backtest/{task_id}")).json()
        assert body["status"] in {"pending", "running"}, body
        if body["progress"] > above:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{task_id} made no progress\n{stack.diagnostics()}")


async def _subscribe(stack: LiveStack, task_id: str) -> Any:
    client = aredis.Redis.from_url(stack.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"job:{task_id}:progress")
    pubsub.owner = client
    return pubsub


async def _collect(
    pubsub: Any, *, seconds: float
) -> list[tuple[float, dict[str, Any]]]:
    """(arrival time, message) of everything published in the next ``seconds``."""
    out: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        raw = await pubsub.get_message(timeout=min(left, 0.2))
        if raw is not None:
            out.append((time.monotonic(), orjson.loads(raw["data"])))
    return out


def _worker_lines(stack: LiveStack, task_id: str) -> str:
    return "\n".join(
        line
        for worker in stack.workers
        for line in worker.log_text().splitlines()
        if f"task_id={task_id}" in line
    )


async def _wait_worker_line(stack: LiveStack, task_id: str, event: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if event in _worker_lines(stack, task_id):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"worker never logged {event} for {task_id}\n{stack.diagnostics()}")


# --- broker down ----------------------------------------------------------------


async def test_submit_with_broker_down_is_503_and_leaves_no_job(
    live_stack: LiveStack,
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    api = live_stack.start_api("api-no-broker", REDIS_URL=closed)
    try:
        user = live_stack.make_user()
        async with httpx.AsyncClient(
            base_url=api.base_url, headers=user.headers, timeout=60
        ) as broken:
            started = time.monotonic()
            response = await broken.post("/v1/backtest", json=SHORT)
            print(f"\n503 after {time.monotonic() - started:.2f} s")
            history = await broken.get("/v1/backtest/history")
    finally:
        api.stop()

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": "ServiceUnavailable",
        "message": "The job queue is unavailable; try again shortly.",
    }
    # A failed request costs nothing: no row in the history (nor in the quota).
    assert history.json() == []
    log = api.log_text()
    assert "Traceback" not in log
    # Fail fast: the submit path must not go through Celery's Redis *result* backend,
    # whose reconnect loop (20 retries, "Connection to Redis lost: Retry (n/20)")
    # held the request ~20 s (send_task ignores task_ignore_result).
    assert "Connection to Redis lost" not in log
