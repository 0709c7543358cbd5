"""``python -m app.cli sweep``: the same validation as the API, rows equal to plain
engine runs, diagnostics and a one-line error for a grid with nothing valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from app.backtests.schemas import BacktestRequest
from app.cli.main import app
from app.data.store import load_dataset
from app.engine.backtest import run_backtest

runner = CliRunner()
BASE: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 2},
    "symbols": ["AAPL", "MSFT", "AMZN", "JPM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}


def _write(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(body))
    return path


def test_cli_sweep_json_rows_equal_engine_runs(tmp_path: Path) -> None:
    body = {
        "base": BASE,
        "grid": {"strategy_params.lookback": [20, 60], "strategy_params.skip": [0, 30]},
        "objective": "max_drawdown",
        "overfitting_blocks": 4,
    }
    result = runner.invoke(app, ["sweep", str(_write(tmp_path, body)), "--json"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["combinations"], out["skipped_combinations"]) == (3, 1)
    assert out["overfitting"]["n_trials"] == 3
    drawdowns = [r["metrics"]["max_drawdown"] for r in out["rows"]]
    assert drawdowns == sorted(drawdowns, reverse=True)  # smallest loss first
    data = load_dataset(None)
    for row in out["rows"]:
        params = {
            **BASE["strategy_params"],
            "lookback": row["params"]["strategy_params.lookback"],
            "skip": row["params"]["strategy_params.skip"],
        }
        config = BacktestRequest.model_validate(
            {**BASE, "strategy_params": params}
        ).to_config()
        want = run_backtest(config, data).metrics
        for key, value in want.items():
            got = row["metrics"][key]
            assert got == value or abs(got - value) <= 1e-9 * abs(value), key


def test_cli_sweep_with_no_valid_combination_fails_in_one_line(
    tmp_path: Path,
) -> None:
    body = {"base": BASE, "grid": {"strategy_params.skip": [40, 50],
                                   "strategy_params.lookback": [20]}}  # fmt: skip
    result = runner.invoke(app, ["sweep", str(_write(tmp_path, body))])

    assert result.exit_code == 2
    assert "must be smaller than lookback" in result.output
