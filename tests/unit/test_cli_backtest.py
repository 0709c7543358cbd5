"""``python -m app.cli backtest``: JSON output and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from typer.testing import CliRunner

from app.cli.main import app

runner = CliRunner()


def test_cli_backtest_json_has_metrics_trades_and_config() -> None:
    result = runner.invoke(
        app,
        ["backtest", "--strategy-id", "2", "--start", "2015-01-01", "--end",
         "2019-12-31", "--benchmark", "SPY", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["final_equity"] == body["metrics"]["final_equity"] > 0
    assert body["trades_count"] == body["metrics"]["total_trades"]
    assert body["config"]["strategy_id"] == 2
    assert body["config"]["benchmark"] == "SPY"


def test_cli_backtest_table_lists_metrics() -> None:
    result = runner.invoke(
        app,
        ["backtest", "--symbols", "AAPL,MSFT", "--start", "2018-01-01", "--end",
         "2018-12-31", "--execution", "close", "--no-dividends"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sharpe ratio" in result.stdout
    assert re.search(r"Total return\s*│\s*[+-]?[\d.,]+%", result.stdout)
    assert "trades" in result.stdout


def test_cli_backtest_bad_arguments_exit_nonzero_with_one_line() -> None:
    result = runner.invoke(
        app, ["backtest", "--symbols", "AAPL,NOPE", "--start", "2018-01-01"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: unknown symbol(s) in dataset 'sp500': NOPE (--symbols)"]


def test_cli_backtest_bad_param_syntax() -> None:
    result = runner.invoke(app, ["backtest", "--strategy-id", "2", "--param", "top_n"])
    assert result.exit_code == 2
    assert "NAME=NUMBER" in result.stderr


def test_cli_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "backtest", "--strategy-id", "7",
         "--symbols", "SPY", "--start", "2020-01-01", "--end", "2020-12-31", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # one lot bought on the first day, plus one per SPY dividend reinvested in 2020
    # (four quarterly ex-dates; reinvest_dividends is the default)
    assert json.loads(proc.stdout)["trades_count"] == 5
