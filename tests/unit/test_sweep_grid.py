"""The sweep grid: expansion, order, validity bits, and the request -> engine config
mapping (held equal to the backtest schema's own ``to_config``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.backtests.schemas import BacktestRequest
from app.sweeps import grid
from app.sweeps.run import diagnostics


def test_range_is_stop_inclusive_and_keeps_integers() -> None:
    assert grid.expand_values({"start": 5, "stop": 50, "step": 5}) == list(
        range(5, 55, 5)
    )
    assert grid.expand_values({"start": 0.1, "stop": 0.3, "step": 0.05}) == [
        0.1, 0.15, 0.2, 0.25, 0.3,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "spec",
    [[], [1, 1], {"start": 1, "stop": 0, "step": 1}, {"start": 1, "stop": 2},
     {"start": 0, "stop": 1, "step": 0}, "x", [[1]]],
)  # fmt: skip
def test_bad_values_are_refused(spec: Any) -> None:
    with pytest.raises(ValueError):
        grid.expand_values(spec)


def test_product_runs_the_last_key_fastest() -> None:
    combos = list(grid.product({"a": [1, 2], "b": ["x", "y", "z"]}))

    assert [(c["a"], c["b"]) for c in combos[:4]] == [
        (1, "x"), (1, "y"), (1, "z"), (2, "x"),
    ]  # fmt: skip
    assert len(combos) == grid.size({"a": [1, 2], "b": ["x", "y", "z"]})


def test_validity_bits_round_trip_and_select_in_order() -> None:
    expanded = {"a": [1, 2, 3], "b": [0, 1, 2, 3, 4]}
    mask = [i % 3 != 1 for i in range(15)]
    config = {"grid": grid.stored(expanded), "valid": grid.pack(mask)}

    assert grid.unpack(config["valid"], 15).tolist() == mask
    all_combos = list(grid.product(expanded))
    assert grid.valid_combinations(config) == [
        c for c, ok in zip(all_combos, mask, strict=True) if ok
    ]


def test_apply_sets_dotted_paths_without_touching_the_base() -> None:
    base = {"strategy_id": 2, "strategy_params": {"top_n": 5}, "commission": 0.001}
    body = grid.apply(base, {"strategy_params.lookback": 60, "commission": 0.0})

    assert body["strategy_params"] == {"top_n": 5, "lookback": 60}
    assert body["commission"] == 0.0
    assert base["strategy_params"] == {"top_n": 5}


@pytest.mark.parametrize(
    "body",
    [
        {"strategy_id": 2, "strategy_params": {"top_n": 3, "lookback": 60},
         "symbols": ["AAPL", "MSFT"], "start_date": "2019-01-01",
         "end_date": "2019-12-31", "commission": 0.002, "slippage": 0.0,
         "execution": "close", "rebalancing": "weekly", "benchmark": "SPY",
         "dividends": False, "risk_free_rate": 0.01, "name": "n"},
        {"filter_criteria": {"universe": ["AAPL"], "top_n": 1},
         "start_date": "2018-01-01", "end_date": "2019-12-31",
         "initial_capital": 5000},
        {"allocation": {"spy": 0.6, "AGG": 0.4}, "rebalancing": "never",
         "rebalance_band": 0.05, "reinvest_dividends": False,
         "cash_flows": {"amount": -500, "frequency": "quarterly",
                        "start_date": "2019-03-01"},
         "benchmarks": ["SPY", {"name": "60/40",
                                "allocation": {"SPY": 0.6, "AGG": 0.4}}],
         "start_date": "2018-01-01", "end_date": "2019-12-31"},
    ],
)  # fmt: skip
def test_engine_config_equals_the_backtest_schemas(body: dict[str, Any]) -> None:
    request = BacktestRequest.model_validate(body)

    assert grid.engine_config(request.model_dump(mode="json")) == request.to_config()


def test_key_errors_name_what_is_allowed() -> None:
    momentum = {"strategy_id": 2}

    assert grid.key_error("strategy_params.lookback", momentum, ["lookback"]) == ""
    assert "no parameter" in grid.key_error("strategy_params.x", momentum, ["top_n"])
    assert "filter_criteria" in grid.key_error("filter_criteria.top_n", momentum, [])
    assert "allowed paths" in grid.key_error("initial_capital", momentum, [])
    assert grid.key_error("commission", momentum, []) == ""


def test_overfitting_block_is_null_with_a_reason_below_two_combinations() -> None:
    rng = np.random.default_rng(7)
    one = diagnostics(
        rng.normal(0, 0.01, (64, 1)), objectives=[1.0], objective="sharpe_ratio",
        blocks=4,
    )  # fmt: skip
    short = diagnostics(
        rng.normal(0, 0.01, (3, 2)), objectives=[1.0, 2.0],
        objective="sharpe_ratio", blocks=4,
    )  # fmt: skip

    assert one["pbo"] is None and one["dsr"] is None and one["n_trials"] == 1
    assert "at least 2" in one["reason"]
    assert short["pbo"] is None and "rows" in short["reason"]


def test_best_of_a_lower_is_better_objective_is_the_smallest() -> None:
    returns = np.random.default_rng(3).normal(0.001, 0.01, (64, 3))
    block = diagnostics(
        returns, objectives=[0.3, 0.1, 0.2], objective="volatility", blocks=4
    )
    assert block["best_index"] == 1
