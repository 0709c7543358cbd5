"""The client against the live embedded server: submit, follow, cancel, read."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from backtest_client import (
    AsyncClient,
    Backtest,
    BacktestFailed,
    Client,
    NotFound,
    RateLimited,
    RetryEvent,
    Unauthorized,
    UnknownStrategy,
    ValidationFailed,
    WaitTimeout,
)
from backtest_client.models import ProgressUpdate

from tests.client.conftest import MOMENTUM, SUBMIT_LIMIT
from tests.integration.stack import EmbeddedServer, LiveUser, free_port

SHORT: dict[str, Any] = {
    "strategy": "equal-weight",
    "symbols": ["AAPL", "MSFT"],
    "start": "2019-01-01",
    "end": "2019-12-31",
}


def _raw(server: EmbeddedServer, client: Client, path: str) -> httpx.Response:
    """The same request without the client, for cross-checks."""
    headers = {"Authorization": f"Bearer {client.token}"}
    return httpx.get(server.base_url + path, headers=headers, timeout=30)


def test_submit_wait_progress_over_websocket(
    client: Client, server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    updates: list[ProgressUpdate] = []
    bt = client.backtests.submit(**MOMENTUM)  # type: ignore[arg-type]
    assert bt.status == "pending"

    bt.wait(progress=True, on_update=updates.append)

    assert bt.progress_via == "websocket"
    assert [u.status for u in updates][-1] == "completed"
    assert sum(u.status == "running" for u in updates) >= 3
    progress = [u.progress for u in updates]
    assert progress == sorted(progress)
    assert "100%" in capsys.readouterr().err  # the tqdm bar reached the end
    raw = _raw(server, client, f"/v1/backtest/{bt.id}").json()
    assert raw["config"]["strategy_id"] == 2  # "momentum" resolved by name
    assert raw["config"]["strategy_params"] == {"top_n": 20}
    assert bt.metrics == raw["metrics"]


def test_wait_polls_when_the_socket_is_refused(
    client: Client, server: EmbeddedServer
) -> None:
    client.transport.ws_url = f"ws://127.0.0.1:{free_port()}"  # nothing listens
    updates: list[ProgressUpdate] = []
    bt = client.backtests.submit(**SHORT)  # type: ignore[arg-type]

    bt.wait(poll_interval=0.1, on_update=updates.append)

    assert bt.progress_via == "polling"
    assert updates[-1].status == "completed" and bt.status == "completed"
    assert bt.metrics["total_trades"] == len(bt.trades())


def test_cancel_running_backtest(client: Client) -> None:
    bt = client.backtests.submit(**MOMENTUM)  # type: ignore[arg-type]
    with pytest.raises(WaitTimeout):
        bt.wait(timeout=0.2)
    deadline = time.monotonic() + 30
    while bt.refresh().status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bt.status == "running"

    result = bt.cancel()

    assert result.status == "cancelled" and bt.status == "cancelled"
    with pytest.raises(BacktestFailed) as failed:
        bt.wait()
    assert failed.value.status == "cancelled"
    assert client.backtests.get(bt.id).status == "cancelled"  # still there


def test_equity_is_the_full_daily_curve(completed: tuple[Client, Backtest]) -> None:
    _, bt = completed
    equity = bt.equity()

    assert isinstance(equity.index, pd.DatetimeIndex)
    assert equity.index.is_monotonic_increasing and equity.index.is_unique
    # Five years of sessions: more than the chart's default of 1,000 points, so the
    # client asked for the full resolution rather than the down-sampled chart.
    assert len(equity) > 1000
    assert equity.iloc[0] == bt.state.config["initial_capital"]  # type: ignore[union-attr]
    assert equity.iloc[-1] == pytest.approx(bt.metrics["final_equity"], rel=1e-12)
    total = equity.iloc[-1] / equity.iloc[0] - 1
    assert total == pytest.approx(bt.metrics["total_return"], rel=1e-9)
    assert bt.equity("benchmark").notna().all()


def test_trades_fetches_every_page(
    completed: tuple[Client, Backtest], server: EmbeddedServer
) -> None:
    client, bt = completed
    pages: list[str] = []
    hook = {"request": [lambda r: pages.append(str(r.url))]}
    http = httpx.Client(base_url=server.base_url, event_hooks=hook)
    counting = Client(server.base_url, token=client.token, http_client=http)

    frame = counting.backtests.get(bt.id).trades(page_size=100)

    total = int(bt.metrics["total_trades"] or 0)
    assert len(frame) == total > 100
    assert sum("/trades" in url for url in pages) == math.ceil(total / 100)
    assert frame.equals(bt.trades())  # one 500-row page per request, same rows
    assert frame["pnl"].sum() == pytest.approx(
        bt.metrics["final_equity"] - bt.state.config["initial_capital"],  # type: ignore[operator, union-attr]
        rel=1e-9,
    )  # every trade is there: their P&L adds up to the equity change
    counting.close()


def test_trades_filters_match_the_api(
    completed: tuple[Client, Backtest], server: EmbeddedServer
) -> None:
    client, bt = completed
    raw = _raw(server, client, f"/v1/backtest/{bt.id}/trades?symbol=AAPL&limit=1")

    frame = bt.trades(symbol="AAPL", sort="-pnl")

    assert len(frame) == int(raw.headers["X-Total-Count"]) > 0
    assert set(frame["symbol"]) == {"AAPL"}
    assert list(frame["pnl"]) == sorted(frame["pnl"], reverse=True)


def test_submit_with_the_same_key_creates_one_job(client: Client) -> None:
    first = client.backtests.submit(**SHORT, idempotency_key="k-1")  # type: ignore[arg-type]
    again = client.backtests.submit(**SHORT, idempotency_key="k-1")  # type: ignore[arg-type]

    assert again.id == first.id
    assert [h.task_id for h in client.backtests.history(limit=None)] == [first.id]


def test_rate_limited_submit_is_retried_after_retry_after(
    server: EmbeddedServer, user: LiveUser
) -> None:
    events: list[RetryEvent] = []
    with Client(
        server.base_url, username=user.username, password=user.password,
        on_retry=events.append,
    ) as client:  # fmt: skip
        jobs = [client.backtests.submit(**SHORT) for _ in range(SUBMIT_LIMIT + 1)]  # type: ignore[arg-type]
        history = client.backtests.history(limit=None)

    assert [e.status_code for e in events] == [429]
    assert 1 <= events[0].wait_seconds <= 4  # the server's Retry-After
    assert len({j.id for j in jobs}) == SUBMIT_LIMIT + 1
    assert len(history) == SUBMIT_LIMIT + 1  # the retried submit made one job


def test_rate_limited_without_retries_raises_with_retry_after(
    server: EmbeddedServer, user: LiveUser
) -> None:
    with Client(
        server.base_url, username=user.username, password=user.password,
        max_retries=0,
    ) as client:  # fmt: skip
        for _ in range(SUBMIT_LIMIT):
            client.backtests.submit(**SHORT)  # type: ignore[arg-type]
        with pytest.raises(RateLimited) as limited:
            client.backtests.submit(**SHORT)  # type: ignore[arg-type]

    assert limited.value.status_code == 429 and limited.value.code == "RateLimited"
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1


def test_errors_have_their_own_types(client: Client, server: EmbeddedServer) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        client.backtests.submit("momentum", start="2019-12-31", end="2019-01-01")
    assert [e.field for e in invalid.value.field_errors] == ["body.end_date"]
    with pytest.raises(NotFound):
        client.backtests.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(UnknownStrategy, match="momentum"):
        client.backtests.submit(
            "no-such-strategy", start="2019-01-01", end="2019-06-30"
        )
    with pytest.raises(Unauthorized):
        Client(server.base_url, token="not-a-jwt").me()


def test_relogin_after_401(server: EmbeddedServer, user: LiveUser) -> None:
    with Client(
        server.base_url, token="expired-or-garbage",
        username=user.username, password=user.password,
    ) as client:  # fmt: skip
        assert client.me().username == user.username
        assert client.token != "expired-or-garbage"


def test_analysis_report_and_sweeps_through_the_client(
    completed: tuple[Client, Backtest], tmp_path: Path
) -> None:
    client, bt = completed

    analysis = bt.analysis()
    html = bt.report(tmp_path / "report.html")
    sweep = client.sweeps.submit(
        "momentum", {"top_n": [1, 2]}, start="2019-01-01", end="2019-12-31",
        symbols=["AAPL", "MSFT", "AMZN"], name="client sweep",
    )  # fmt: skip
    sweep.wait(timeout=180)
    rows = sweep.results()

    assert isinstance(analysis["psr"], float) and "drawdowns" in analysis
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == html
    assert "<html" in html.lower() and "http://" not in html and "https://" not in html
    assert sweep.status == "completed", sweep.state
    assert sorted(r["index"] for r in rows) == [0, 1]
    assert {r["params"]["strategy_params.top_n"] for r in rows} == {1, 2}


async def test_async_client_same_flow(server: EmbeddedServer, user: LiveUser) -> None:
    async with AsyncClient(
        server.base_url, username=user.username, password=user.password
    ) as client:
        bt = await client.backtests.submit(**SHORT)  # type: ignore[arg-type]
        await bt.wait()
        trades = await bt.trades()
        equity = await bt.equity()

    assert bt.progress_via == "websocket" and bt.status == "completed"
    assert len(trades) == bt.metrics["total_trades"]
    assert equity.iloc[-1] == pytest.approx(bt.metrics["final_equity"], rel=1e-12)
