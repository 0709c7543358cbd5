"""``backtest-client`` against the live server."""

from __future__ import annotations

import csv
import importlib
import io
import tomllib

import pytest
from backtest_client import Backtest, Client
from backtest_client._format import metric
from backtest_client.cli import main

from tests.client.conftest import CLIENT_SRC
from tests.integration.stack import EmbeddedServer, LiveUser


def test_run_watch_prints_progress_then_metrics(
    server: EmbeddedServer,
    user: LiveUser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKTEST_PASSWORD", user.password)
    args = [
        "run", "--url", server.base_url, "--username", user.username,
        "--strategy", "momentum", "--top-n", "20", "--start", "2015-01-01",
        "--end", "2019-12-31", "--benchmark", "SPY", "--watch",
    ]  # fmt: skip

    code = main(args)

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "100%" in err  # the progress bar
    task_id = out.split()[1].rstrip(":")
    with Client(server.base_url, username=user.username, password=user.password) as c:
        metrics = c.backtests.get(task_id).metrics
    lines = dict(line.split(None, 1) for line in out.splitlines()[3:] if line.strip())
    # Returns in percent, as the web app shows them; the numbers are the API's.
    assert lines["total_return"].strip() == f"{metrics['total_return']:+.2%}"
    assert lines["sharpe_ratio"].strip() == f"{metrics['sharpe_ratio']:,.2f}"
    assert lines["max_drawdown"].strip() == metric(
        "max_drawdown", metrics["max_drawdown"]
    )


def test_console_script_points_at_main() -> None:
    """``backtest-client`` (pyproject's console script) is this ``main``."""
    pyproject = tomllib.loads((CLIENT_SRC.parent / "pyproject.toml").read_text())
    target = pyproject["project"]["scripts"]["backtest-client"]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute) is main


def test_history_and_trades_csv_with_a_token_from_the_environment(
    completed: tuple[Client, Backtest],
    server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, bt = completed
    monkeypatch.setenv("BACKTEST_TOKEN", client.token or "")
    monkeypatch.setenv("BACKTEST_URL", server.base_url)
    history, trades = io.StringIO(), io.StringIO()

    assert main(["history"], out=history) == 0
    assert main(["trades", bt.id, "--csv"], out=trades) == 0

    assert bt.id in history.getvalue()
    rows = list(csv.DictReader(io.StringIO(trades.getvalue())))
    assert len(rows) == bt.metrics["total_trades"]
    expected = bt.trades()
    assert [r["symbol"] for r in rows] == list(expected["symbol"])
    assert float(rows[0]["pnl"]) == pytest.approx(expected["pnl"].iloc[0], rel=1e-12)


def test_bad_token_exits_1_with_the_reason(
    server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["history", "--url", server.base_url, "--token", "nope"])
    assert code == 1
    assert "401 Unauthorized" in capsys.readouterr().err
