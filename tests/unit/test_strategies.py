"""Predefined strategies, the Strategy contract and resolve/list."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.data import MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies import (
    Strategy,
    get_strategy_def,
    list_strategies,
    resolve_strategy,
    weights_are_valid,
)
from tests.unit.test_factors import make_market


def market(
    close: list[list[float]], adj: list[list[float]] | None = None
) -> MarketData:
    c = np.array(close, dtype=float)
    a = c if adj is None else np.array(adj, dtype=float)
    return MarketData(
        name="hand",
        dates=np.datetime64("2021-01-04") + np.arange(len(c)),
        symbols=tuple("ABCDEF"[: c.shape[1]]),
        open=c,
        high=c,
        low=c,
        close=c,
        volume=np.full_like(c, 1000.0),
        adj_close=a,
    )


# Four symbols over six days: A rises fastest, B rises, C is flat, D falls and
# stops trading on the last day.
HAND = market(
    [
        [10, 10, 10, 10],
        [11, 10.5, 10, 9],
        [12, 11, 10, 8],
        [13, 11.5, 10, 7],
        [14, 12, 10, 6],
        [15, 12.5, 10, math.nan],
    ]
)
LAST = np.array([5], dtype=np.int64)


def weights(sid: int, params: dict[str, Any] | None = None, rows: Any = LAST) -> Any:
    return resolve_strategy(sid, params, None).target_weights(HAND, rows)


def momentum(top_n: int, lookback: int, skip: int) -> Strategy:
    """Momentum with a lookback shorter than the API allows, for hand-sized data."""
    params = {"top_n": top_n, "lookback": lookback, "skip": skip}
    return get_strategy_def(2).build(params)


def test_equal_weight_holds_every_symbol_with_a_close() -> None:
    np.testing.assert_array_equal(weights(1), [[1 / 3, 1 / 3, 1 / 3, 0.0]])


def test_equal_weight_is_the_default() -> None:
    got = resolve_strategy(None, None, None).target_weights(HAND, LAST)
    np.testing.assert_array_equal(got, weights(1))


def test_momentum_picks_the_best_trailing_returns_skipping_recent_rows() -> None:
    # rows 4 vs 1 (skip 1, lookback 4): A 14/11, B 12/10.5, C 1, D no close at 5.
    got = momentum(2, 4, 1).target_weights(HAND, LAST)
    np.testing.assert_array_equal(got, [[0.5, 0.5, 0.0, 0.0]])


def test_momentum_holds_cash_before_enough_history() -> None:
    got = weights(2, {"top_n": 2, "lookback": 20, "skip": 0})
    np.testing.assert_array_equal(got, np.zeros((1, 4)))


def test_trend_holds_names_above_their_moving_average() -> None:
    np.testing.assert_array_equal(weights(3, {"window": 5}), [[0.5, 0.5, 0.0, 0.0]])


def test_low_volatility_picks_the_calmest_names() -> None:
    np.testing.assert_array_equal(
        weights(4, {"top_n": 1, "window": 3}), [[0.0, 0.0, 1.0, 0.0]]
    )


def test_reversal_picks_the_worst_recent_returns() -> None:
    # 2-row returns at row 4: A 14/12, B 12/11, C 1, D 6/8 -> D then C
    got = weights(5, {"top_n": 2, "window": 2}, rows=np.array([4]))
    np.testing.assert_array_equal(got, [[0.0, 0.0, 0.5, 0.5]])


def test_inverse_volatility_weights_are_proportional_to_one_over_vol() -> None:
    data = make_market(120, 4, seed=1)
    rows = np.array([100, 110], dtype=np.int64)
    got = resolve_strategy(6, {"window": 20}, None).target_weights(data, rows)
    r = data.adj_close[1:] / data.adj_close[:-1] - 1
    for i, t in enumerate(rows):
        inv = 1 / np.std(r[t - 20 : t], axis=0, ddof=1)
        inv = np.where(np.isnan(data.close[t]), 0.0, np.nan_to_num(inv))
        np.testing.assert_allclose(got[i], inv / inv.sum(), rtol=1e-12)


def test_inverse_volatility_holds_cash_for_a_flat_only_universe() -> None:
    flat = market([[5.0, 7.0]] * 10)
    got = resolve_strategy(6, {"window": 3}, None).target_weights(flat, np.array([9]))
    np.testing.assert_array_equal(got, [[0.0, 0.0]])


def test_buy_and_hold_does_not_rebalance() -> None:
    strategy = resolve_strategy(7, None, None)
    assert strategy.rebalances is False
    assert strategy.warmup_rows == 0
    np.testing.assert_array_equal(
        strategy.target_weights(HAND, np.array([0])), [[0.25] * 4]
    )


def test_ties_go_to_the_earlier_column() -> None:
    flat = market([[5.0, 5.0, 5.0, 5.0]] * 4)
    got = resolve_strategy(5, {"top_n": 2, "window": 2}, None).target_weights(
        flat, np.array([3])
    )
    np.testing.assert_array_equal(got, [[0.5, 0.5, 0.0, 0.0]])


def test_fewer_eligible_than_top_n_holds_the_eligible() -> None:
    got = momentum(10, 4, 0).target_weights(HAND, LAST)
    np.testing.assert_array_equal(got, [[1 / 3, 1 / 3, 1 / 3, 0.0]])


def test_warmup_rows_cover_the_longest_window() -> None:
    assert resolve_strategy(2, None, None).warmup_rows == 253
    assert resolve_strategy(3, {"window": 50}, None).warmup_rows == 51
    assert resolve_strategy(1, None, None).warmup_rows == 0


def test_empty_rows_give_an_empty_matrix() -> None:
    got = weights(2, None, rows=np.array([], dtype=np.int64))
    assert got.shape == (0, 4)


@pytest.mark.parametrize("rows", [[3, 2], [-1], [6], [[1]], [1.5]])
def test_bad_rows_are_rejected(rows: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match="rows"):
        weights(1, None, rows=np.array(rows))


@pytest.mark.parametrize("sid", range(1, 8))
def test_every_strategy_honours_the_contract(sid: int) -> None:
    data = make_market(400, 12, seed=sid)
    strategy = resolve_strategy(sid, None, None)
    assert isinstance(strategy, Strategy)
    rows = np.arange(0, 400, 5, dtype=np.int64)
    before = data.close.copy()
    got = strategy.target_weights(data, rows)
    assert got.shape == (len(rows), 12) and got.dtype == np.float64
    assert weights_are_valid(got)
    assert np.all(got[np.isnan(data.close[rows])] == 0.0)
    np.testing.assert_array_equal(data.close, before)


SMALL_PARAMS = {
    1: {},
    2: {"top_n": 3, "lookback": 30, "skip": 5},
    3: {"window": 10},
    4: {"top_n": 3, "window": 10},
    5: {"top_n": 3, "window": 3},
    6: {"window": 10},
    7: {},
}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 7), st.integers(0, 119), st.integers(0, 2**31))
def test_no_look_ahead(sid: int, t: int, seed: int) -> None:
    data = make_market(120, 5, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    noise: dict[str, Any] = {
        k: np.where(
            np.arange(120)[:, None] > t, rng.uniform(1, 99, (120, 5)), getattr(data, k)
        )
        for k in ("open", "high", "low", "close", "volume", "adj_close")
    }
    changed = dataclasses.replace(data, **noise)
    strategy = resolve_strategy(sid, SMALL_PARAMS[sid], None)
    rows = np.arange(0, 120, 3, dtype=np.int64)
    keep = rows <= t
    np.testing.assert_array_equal(
        strategy.target_weights(data, rows)[keep],
        strategy.target_weights(changed, rows)[keep],
    )


# ------------------------------------------------------------------ resolution
def test_giving_both_strategy_id_and_filter_criteria_is_an_error() -> None:
    with pytest.raises(InvalidInputError) as exc:
        resolve_strategy(2, None, {"filters": []})
    assert exc.value.field == "strategy_id"
    assert "either strategy_id or filter_criteria" in exc.value.message


@pytest.mark.parametrize("sid", [0, 8, -1, True, "2"])
def test_unknown_strategy_id_lists_the_valid_ones(sid: Any) -> None:
    with pytest.raises(InvalidInputError) as exc:
        resolve_strategy(sid, None, None)
    assert exc.value.field == "strategy_id"
    assert "1 (equal-weight)" in exc.value.message
    assert "7 (buy-and-hold)" in exc.value.message


@pytest.mark.parametrize(
    ("sid", "params", "field", "message"),
    [
        (2, {"top_n": 0}, "strategy_params.top_n", "between 1 and 500, got 0"),
        (2, {"top_n": 501}, "strategy_params.top_n", "between 1 and 500"),
        (2, {"top_n": "5"}, "strategy_params.top_n", "an integer between 1 and 500"),
        (2, {"top_n": 2.5}, "strategy_params.top_n", "an integer"),
        (2, {"top_n": True}, "strategy_params.top_n", "an integer"),
        (2, {"lookback": 19}, "strategy_params.lookback", "between 20 and 756"),
        (2, {"skip": 64}, "strategy_params.skip", "between 0 and 63"),
        (2, {"lookback": 30, "skip": 30}, "strategy_params.skip", "smaller than"),
        (2, {"window": 5}, "strategy_params.window", "accepted: top_n, lookback"),
        (1, {"top_n": 5}, "strategy_params.top_n", "accepted: none"),
        (3, {"window": 4}, "strategy_params.window", "between 5 and 756"),
        (4, {"window": 1}, "strategy_params.window", "between 2 and 756"),
    ],
)
def test_bad_params_are_rejected(
    sid: int, params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message) as exc:
        resolve_strategy(sid, params, None)
    assert exc.value.field == field


def test_integral_float_params_are_accepted() -> None:
    got = resolve_strategy(2, {"top_n": 2.0, "lookback": 30.0}, None)
    assert got.warmup_rows == 31


def test_params_with_filter_criteria_are_rejected() -> None:
    with pytest.raises(InvalidInputError) as exc:
        resolve_strategy(None, {"top_n": 3}, {"filters": []})
    assert exc.value.field == "strategy_params"


def test_list_strategies_shape() -> None:
    listed = list_strategies()
    json.dumps(listed)
    assert [s["id"] for s in listed] == [1, 2, 3, 4, 5, 6, 7]
    assert set(listed[0]) == {"id", "name", "description", "parameters"}
    momentum = listed[1]
    assert momentum["name"] == "momentum"
    top_n = momentum["parameters"][0]
    assert top_n == {
        "name": "top_n",
        "type": "int",
        "default": 20,
        "min": 1,
        "max": 500,
        "description": "number of symbols held",
    }
    for strategy in listed:
        for p in strategy["parameters"]:
            assert p["min"] <= p["default"] <= p["max"]
            resolve_strategy(strategy["id"], {p["name"]: p["default"]}, None)


@pytest.mark.benchmark
def test_benchmark_momentum_500_symbols_10_years() -> None:
    """Run by hand: pytest -m benchmark -s tests/unit/test_strategies.py"""
    data = make_market(2520, 500, seed=7)
    rows = np.arange(260, 2520, 21, dtype=np.int64)  # monthly
    strategy = resolve_strategy(2, None, None)
    best = math.inf
    for _ in range(20):
        start = time.perf_counter()
        strategy.target_weights(data, rows)
        best = min(best, time.perf_counter() - start)
    print(f"momentum top-20, 500 x 2520, {len(rows)} rows: {best * 1e3:.2f} ms")
