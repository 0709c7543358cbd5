"""``python -m app.cli sweep``: the same validation as the API, rows equal to plain
engine runs, diagnostics and a one-line error for a grid with nothing valid."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from app.backtests.schemas import BacktestRequest
from app.cli.main import app
from app.data.store import load_dataset
from app.engine.backtest import run_backtest
from app.engine.portfolio import twr_returns
from app.sweeps import rows

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


# A withdrawal of 4,000 a month from 20,000 empties every combination's portfolio
# within the year: equity 0 from then on.
DEPLETING: dict[str, Any] = {
    **BASE,
    "initial_capital": 20_000,
    "cash_flows": {"amount": -4_000.0, "frequency": "monthly"},
}
DEPLETING_GRID = {"strategy_params.lookback": [20, 60], "strategy_params.skip": [0, 5]}


def test_cli_sweep_with_a_withdrawal_that_empties_the_portfolio(
    tmp_path: Path,
) -> None:
    """Rows whose equity reaches 0 get the engine's time-weighted returns (0 once
    empty), so their PSR and the sweep's diagnostics are computed; the simple
    returns of the equity (0/0) made the sweep fail."""
    body = {"base": DEPLETING, "grid": DEPLETING_GRID, "overfitting_blocks": 4}
    result = runner.invoke(app, ["sweep", str(_write(tmp_path, body)), "--json"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["combinations"] == 4
    assert out["overfitting"]["n_trials"] == 4
    assert all(r["metrics"]["portfolio_depleted"] for r in out["rows"])


def test_sweep_rows_of_an_emptied_portfolio_store_time_weighted_returns() -> None:
    data = load_dataset(None)
    request = BacktestRequest.model_validate(DEPLETING)
    configs = [
        dataclasses.replace(
            request.to_config(),
            strategy_params={"top_n": 2, "lookback": lookback, "skip": 0},
        )
        for lookback in (20, 60)
    ]
    evaluated = list(rows.evaluate(configs, data, should_cancel=lambda: False))
    for i, (config, e) in enumerate(zip(configs, evaluated, strict=True)):
        single = run_backtest(config, data)
        assert single.metrics["portfolio_depleted"]
        assert single.equity[-1] == 0.0
        want = twr_returns(single.equity, single.flows)
        np.testing.assert_allclose(e.daily_returns(), want, rtol=1e-9, atol=1e-12)
        row = rows.row_values(i, {"lookback": i}, e, "sharpe_ratio")
        stored = np.frombuffer(row["returns"], dtype="<f8")
        assert np.isfinite(stored).all()
        np.testing.assert_array_equal(stored, e.daily_returns())
        assert stored[-1] == 0.0  # nothing left to earn a return on
        assert row["psr"] is None or 0.0 <= row["psr"] <= 1.0
