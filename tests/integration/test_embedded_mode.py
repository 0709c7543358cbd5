"""Embedded mode end to end: one uvicorn process with neither DATABASE_URL nor
REDIS_URL, so SQLite under VAR_DIR (migrated at start), the in-process Celery worker
on the memory transport and the in-memory progress bus. Same flow as distributed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from typing import Any

import pytest

from tests.integration.stack import EmbeddedServer, watch_progress

pytestmark = pytest.mark.integration

LONG: dict[str, Any] = {
    "name": "embedded momentum",
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}


async def test_embedded_flow_submit_watch_read_delete(
    embedded_server: EmbeddedServer,
) -> None:
    assert (embedded_server.var_dir / "backtest.db").is_file()  # SQLite, migrated
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        submitted_at = time.monotonic()
        created = await http.post("/v1/backtest", json=LONG)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]

        watched = await watch_progress(
            embedded_server.ws_url, task_id, token=user.token
        )
        print(
            f"\nembedded submit->completed {time.monotonic() - submitted_at:.2f} s; "
            f"WS first message {watched.first_message_seconds:.3f} s"
        )
        assert watched.statuses[-1] == "completed"
        assert watched.statuses.count("running") >= 3
        progress = [m["progress"] for m in watched.messages]
        assert progress == sorted(progress)
        assert watched.close_code == 1000

        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
        total_trades = detail["metrics"]["total_trades"]
        trades, seen = [], 0
        url: str | None = f"/v1/backtest/{task_id}/trades?limit=250"
        while url:
            page = await http.get(url)
            assert int(page.headers["X-Total-Count"]) == total_trades
            trades.extend(page.json())
            url = page.links.get("next", {}).get("url")
            seen += 1
        assert len(trades) == total_trades > 0 and seen == -(-total_trades // 250)
        assert _result_rows(embedded_server, task_id) == (total_trades, 1)

        chart = (await http.get(f"/v1/backtest/{task_id}/chart?max_points=100")).json()
        assert 2 < len(chart["equity_curve"]) <= 100
        assert chart["benchmark_symbol"] == "SPY"

        deleted = await http.delete(f"/v1/backtest/{task_id}")
        gone = await http.get(f"/v1/backtest/{task_id}")
    assert deleted.status_code == 200
    assert gone.status_code == 404
    assert _result_rows(embedded_server, task_id) == (0, 0)


async def test_embedded_cancel_running_job(embedded_server: EmbeddedServer) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        task_id = (await http.post("/v1/backtest", json=LONG)).json()["task_id"]
        watch = asyncio.create_task(
            watch_progress(embedded_server.ws_url, task_id, token=user.token)
        )
        await embedded_server.wait_status(http, task_id, {"running"})
        await _wait_progress(http, task_id, above=5.0)

        response = await http.delete(f"/v1/backtest/{task_id}")
        watched = await watch
        await asyncio.sleep(1.0)  # a worker that ignored the cancel would save now
        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
        trades = await http.get(f"/v1/backtest/{task_id}/trades")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert watched.statuses[-1] == "cancelled"
    assert watched.close_code == 1000
    assert detail["status"] == "cancelled"
    assert 0 < detail["progress"] < 100
    assert detail["metrics"] is None
    assert trades.status_code == 409
    assert _result_rows(embedded_server, task_id) == (0, 0)


def _result_rows(server: EmbeddedServer, task_id: str) -> tuple[int, int]:
    """(trades, series) rows of a job, read from the server's SQLite file."""
    key = uuid.UUID(task_id).hex  # SQLAlchemy's Uuid on SQLite: 32 hex characters
    with sqlite3.connect(server.var_dir / "backtest.db") as conn:
        trades, series = (
            conn.execute(
                f"SELECT count(*) FROM {table} WHERE backtest_id = ?", (key,)
            ).fetchone()[0]
            for table in ("trades", "backtest_series")
        )
    return int(trades), int(series)


async def _wait_progress(http: Any, task_id: str, *, above: float) -> None:
    """Until the stored progress of a running job passes ``above`` (deadline 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = (await http.get(f"/v1/backtest/{task_id}")).json()
        assert body["status"] == "running", body
        if body["progress"] > above:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{task_id} stayed at or below {above}%")
