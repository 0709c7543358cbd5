"""The screening language: validation messages and the screen as a strategy."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.errors import InvalidInputError
from app.engine.strategies import (
    FilterCriteria,
    build_screen,
    parse_filter_criteria,
    resolve_strategy,
    weights_are_valid,
)
from tests.unit.test_factors import make_market
from tests.unit.test_strategies import HAND, LAST

EXAMPLE: dict[str, Any] = {
    "universe": ["AAPL", "MSFT"],
    "filters": [
        {"factor": "return", "window": 126, "op": ">", "value": 0},
        {"factor": "close", "op": ">", "other": {"factor": "sma", "window": 200}},
    ],
    "rank_by": {"factor": "return", "window": 252},
    "ascending": False,
    "top_n": 20,
    "weighting": "equal",
}


def rejected(obj: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as exc:
        parse_filter_criteria(obj)
    return exc.value


def with_filter(**changes: Any) -> dict[str, Any]:
    f = {"factor": "return", "window": 5, "op": ">", "value": 0, **changes}
    return {"filters": [{k: v for k, v in f.items() if v is not None}]}


# ------------------------------------------------------------------ parsing
def test_example_parses_and_exposes_the_universe() -> None:
    criteria = parse_filter_criteria(EXAMPLE)
    assert criteria.universe == ["AAPL", "MSFT"]
    assert criteria.filters[1].other is not None
    assert criteria.filters[1].other.window == 200


def test_defaults() -> None:
    criteria = parse_filter_criteria({})
    assert criteria.filters == [] and criteria.weighting == "equal"
    assert criteria.universe is None and criteria.vol_window == 63


def test_json_schema_is_usable_in_openapi() -> None:
    schema = FilterCriteria.model_json_schema()
    text = json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert "drawdown_from_high" in text and '">="' in text


@pytest.mark.parametrize(
    ("obj", "field", "message"),
    [
        ({"foo": 1}, "filter_criteria.foo", "unknown field 'foo'; allowed: universe,"),
        (
            with_filter(extra=1),
            "filter_criteria.filters[0].extra",
            "allowed: factor, window, op, value, other",
        ),
        (
            {"rank_by": {"factor": "rsi", "window": 3, "x": 1}, "top_n": 1},
            "filter_criteria.rank_by.x",
            "unknown field 'x'; allowed: factor, window",
        ),
        (
            with_filter(factor="foo"),
            "filter_criteria.filters[0].factor",
            "unknown factor 'foo'; allowed: close, return, sma, ema, volatility, rsi, "
            "avg_dollar_volume, drawdown_from_high",
        ),
        (
            with_filter(op="=="),
            "filter_criteria.filters[0].op",
            "unknown op '=='; allowed: >, >=, <, <=",
        ),
        (
            with_filter(window=0),
            "filter_criteria.filters[0].window",
            "between 1 and 756, got 0",
        ),
        (
            with_filter(window=757),
            "filter_criteria.filters[0].window",
            "between 1 and 756, got 757",
        ),
        (
            with_filter(window="5"),
            "filter_criteria.filters[0].window",
            "an integer between 1 and 756",
        ),
        (
            with_filter(factor="volatility", window=1),
            "filter_criteria.filters[0].window",
            "volatility window must be between 2 and 756, got 1",
        ),
        (
            with_filter(factor="close"),
            "filter_criteria.filters[0].window",
            "close takes no window",
        ),
        (
            {"rank_by": {"factor": "sma"}, "top_n": 3},
            "filter_criteria.rank_by.window",
            "sma needs a window: an integer 1..756",
        ),
        (
            with_filter(other={"factor": "close"}),
            "filter_criteria.filters[0]",
            "give exactly one of 'value' (a number) or 'other' (a factor)",
        ),
        (
            with_filter(value=None),
            "filter_criteria.filters[0]",
            "give exactly one of 'value' (a number) or 'other' (a factor)",
        ),
        (
            with_filter(value=float("inf")),
            "filter_criteria.filters[0].value",
            "must be a finite number, got inf",
        ),
        (
            with_filter(value="1"),
            "filter_criteria.filters[0].value",
            "must be a finite number",
        ),
        (
            with_filter(other={"factor": "nope"}, value=None),
            "filter_criteria.filters[0].other.factor",
            "unknown factor 'nope'; allowed: close",
        ),
        (
            with_filter(op=None),
            "filter_criteria.filters[0].op",
            "required field missing; allowed fields: factor, window, op",
        ),
        (
            {"filters": with_filter()["filters"] * 21},
            "filter_criteria.filters",
            "at most 20 filters",
        ),
        (
            {"rank_by": {"factor": "close"}, "top_n": 0},
            "filter_criteria.top_n",
            "between 1 and 1000, got 0",
        ),
        (
            {"rank_by": {"factor": "close"}, "top_n": 1001},
            "filter_criteria.top_n",
            "between 1 and 1000, got 1001",
        ),
        (
            {"rank_by": {"factor": "close"}},
            "filter_criteria.top_n",
            "give rank_by and top_n together",
        ),
        (
            {"weighting": "cap"},
            "filter_criteria.weighting",
            "unknown weighting 'cap'; allowed: equal, inverse_volatility",
        ),
        (
            {"volatility_window": 20},
            "filter_criteria.volatility_window",
            "applies only to weighting 'inverse_volatility'",
        ),
        (
            {"weighting": "inverse_volatility", "volatility_window": 1},
            "filter_criteria.volatility_window",
            "between 2 and 756",
        ),
        ({"universe": []}, "filter_criteria.universe", "non-empty list of symbol"),
        ({"universe": ["A", "A"]}, "filter_criteria.universe", "distinct"),
        ({"ascending": "yes"}, "filter_criteria.ascending", "true or false"),
        ({"filters": {}}, "filter_criteria.filters", "a list of at most 20"),
        ({"rank_by": 3, "top_n": 1}, "filter_criteria.rank_by", "object with fields"),
        ([1, 2], "filter_criteria", "must be an object with fields: universe"),
    ],
)
def test_invalid_criteria_are_rejected_with_path_and_allowed(
    obj: Any, field: str, message: str
) -> None:
    error = rejected(obj)
    assert error.field == field
    assert message in error.message
    assert error.message.startswith(field) or field == "filter_criteria"


def test_every_problem_is_listed_and_field_is_the_first() -> None:
    obj = {
        "filters": [
            {"factor": "return", "window": 5, "op": ">", "value": 0},
            {"factor": "foo", "op": "!", "value": 1},
        ],
        "top_n": 0,
    }
    error = rejected(obj)
    assert error.field == "filter_criteria.filters[1].factor"
    problems = error.message.split("; filter_criteria")
    assert len(problems) == 3
    assert "filter_criteria.filters[1].op: unknown op '!'" in error.message
    assert "filter_criteria.top_n: must be an integer between 1 and 1000" in (
        error.message
    )


# ------------------------------------------------------------------ behaviour
def screen_weights(obj: dict[str, Any], rows: Any = LAST) -> Any:
    return resolve_strategy(None, None, obj).target_weights(HAND, rows)


def test_value_filter() -> None:
    got = screen_weights(with_filter(window=3, op=">=", value=0.1))
    # 3-row returns at row 5: A 15/12, B 12.5/11 (>= 0.1 both), C 0, D no close
    np.testing.assert_array_equal(got, [[0.5, 0.5, 0.0, 0.0]])


def test_factor_comparison_filter_matches_trend_strategy() -> None:
    obj = {
        "filters": [
            {"factor": "close", "op": ">", "other": {"factor": "sma", "window": 5}}
        ]
    }
    trend = resolve_strategy(3, {"window": 5}, None).target_weights(HAND, LAST)
    np.testing.assert_array_equal(screen_weights(obj), trend)


@pytest.mark.parametrize(
    ("ascending", "expected"),
    [(False, [[1.0, 0.0, 0.0, 0.0]]), (True, [[0.0, 0.0, 1.0, 0.0]])],
)
def test_rank_and_top_n(ascending: bool, expected: list[list[float]]) -> None:
    obj = {
        "rank_by": {"factor": "return", "window": 4},
        "ascending": ascending,
        "top_n": 1,
    }
    np.testing.assert_array_equal(screen_weights(obj), expected)


def test_filters_are_anded_before_ranking() -> None:
    obj = {
        **with_filter(factor="close", window=None, op="<", value=14),
        "rank_by": {"factor": "return", "window": 4},
        "top_n": 1,
    }
    np.testing.assert_array_equal(screen_weights(obj), [[0.0, 1.0, 0.0, 0.0]])


def test_nothing_passes_gives_cash() -> None:
    got = screen_weights(with_filter(op=">", value=100))
    np.testing.assert_array_equal(got, np.zeros((1, 4)))


def test_inverse_volatility_screen_matches_strategy_6() -> None:
    data = make_market(150, 6, seed=5)
    rows = np.arange(0, 150, 10, dtype=np.int64)
    obj = {"weighting": "inverse_volatility", "volatility_window": 20}
    got = resolve_strategy(None, None, obj).target_weights(data, rows)
    want = resolve_strategy(6, {"window": 20}, None).target_weights(data, rows)
    np.testing.assert_array_equal(got, want)


def test_screen_is_a_valid_rebalancing_strategy() -> None:
    data = make_market(400, 10, seed=2)
    obj = {**EXAMPLE, "weighting": "inverse_volatility", "volatility_window": 300}
    strategy = build_screen(parse_filter_criteria(obj))
    assert strategy.rebalances is True
    assert strategy.warmup_rows == 301
    got = strategy.target_weights(data, np.arange(0, 400, 7, dtype=np.int64))
    assert weights_are_valid(got)
    assert np.any(got > 0)


def test_warmup_rows_is_the_largest_window_plus_one() -> None:
    assert build_screen(parse_filter_criteria(EXAMPLE)).warmup_rows == 253
    only_close = with_filter(factor="close", window=None)
    assert build_screen(parse_filter_criteria(only_close)).warmup_rows == 1


ALL_FACTORS = {
    "filters": [
        {"factor": "rsi", "window": 5, "op": "<", "value": 90},
        {
            "factor": "ema",
            "window": 8,
            "op": ">",
            "other": {"factor": "sma", "window": 12},
        },
        {"factor": "drawdown_from_high", "window": 20, "op": ">", "value": -0.3},
        {"factor": "avg_dollar_volume", "window": 4, "op": ">", "value": 1.0},
    ],
    "rank_by": {"factor": "return", "window": 10},
    "top_n": 3,
    "weighting": "inverse_volatility",
    "volatility_window": 15,
}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 119), st.integers(0, 2**31))
def test_screen_has_no_look_ahead(t: int, seed: int) -> None:
    data = make_market(120, 6, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    later = np.arange(120)[:, None] > t
    changed = dataclasses.replace(
        data,
        close=np.where(later, rng.uniform(1, 99, (120, 6)), data.close),
        volume=np.where(later, rng.uniform(1, 99, (120, 6)), data.volume),
        adj_close=np.where(later, rng.uniform(1, 99, (120, 6)), data.adj_close),
    )
    strategy = resolve_strategy(None, None, ALL_FACTORS)
    rows = np.arange(0, 120, 2, dtype=np.int64)
    keep = rows <= t
    before = strategy.target_weights(data, rows)
    after = strategy.target_weights(changed, rows)
    assert weights_are_valid(before) and weights_are_valid(after)
    np.testing.assert_array_equal(before[keep], after[keep])
