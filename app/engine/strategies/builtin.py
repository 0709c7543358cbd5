"""The predefined strategies, with stable integer ids and typed parameters.

Each is a :class:`~app.engine.strategies.base.Pipeline`: symbols with a close at the
decision row, narrowed by a factor rule, then weighted. A symbol whose factor is NaN
(not enough history, or not trading) is not eligible; if fewer than ``top_n`` are
eligible the eligible ones are held; if none is, the row is all cash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.engine.data import FloatMatrix, IntArray, MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies import kernels
from app.engine.strategies.base import (
    Pipeline,
    SelectTopN,
    SelectWhere,
    Strategy,
    WeighInverseVolatility,
    weigh_equal,
)
from app.engine.strategies.factors import MAX_WINDOW, Factor


@dataclass(frozen=True)
class ParamSpec:
    """One integer parameter of a predefined strategy (bounds inclusive)."""

    name: str
    default: int
    min: int
    max: int
    description: str
    type: str = "int"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "description": self.description,
        }


Params = Mapping[str, int]


@dataclass(frozen=True)
class StrategyDef:
    """A predefined strategy: stable id, name, parameters and a builder."""

    id: int
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    build: Callable[[Params], Strategy]


@dataclass(frozen=True)
class MomentumScore:
    """Trailing total return skipping the most recent ``skip`` sessions:
    ``adj_close[t - skip] / adj_close[t - lookback] - 1`` (fraction)."""

    lookback: int
    skip: int

    def __call__(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        return kernels.ratio_at(
            data.adj_close, rows, recent_lag=self.skip, old_lag=self.lookback
        )


def _top_n(default: int = 20) -> ParamSpec:
    return ParamSpec("top_n", default, 1, 500, "number of symbols held")


def _window(default: int, lo: int, hi: int = MAX_WINDOW, what: str = "") -> ParamSpec:
    return ParamSpec("window", default, lo, hi, f"{what} window, in sessions")


def build_equal_weight(params: Params) -> Strategy:
    return Pipeline("equal-weight", (), weigh_equal)


# Speed (measured by hand with the `benchmark`-marked test in
# tests/unit/test_strategies.py, 2 shared cores): momentum top-20 of 500 symbols ×
# 2520 rows takes ~0.4 ms for 108 monthly decision rows, ~2 ms weekly, ~18 ms daily
# (two row gathers for the ratio, then an O(n) partition per row).
def build_momentum(params: Params) -> Strategy:
    lookback, skip = params["lookback"], params["skip"]
    if skip >= lookback:
        raise InvalidInputError(
            f"skip ({skip}) must be smaller than lookback ({lookback})",
            field="strategy_params.skip",
        )
    score = MomentumScore(lookback, skip)
    select = (SelectTopN(score, params["top_n"], ascending=False),)
    return Pipeline("momentum", select, weigh_equal, warmup_rows=lookback + 1)


def build_trend(params: Params) -> Strategy:
    window = params["window"]
    select = (SelectWhere(Factor("close"), ">", Factor("sma", window)),)
    return Pipeline("trend", select, weigh_equal, warmup_rows=window + 1)


def build_low_volatility(params: Params) -> Strategy:
    window = params["window"]
    score = Factor("volatility", window)
    select = (SelectTopN(score, params["top_n"], ascending=True),)
    return Pipeline("low-volatility", select, weigh_equal, warmup_rows=window + 1)


def build_reversal(params: Params) -> Strategy:
    window = params["window"]
    score = Factor("return", window)
    select = (SelectTopN(score, params["top_n"], ascending=True),)
    return Pipeline("short-term-reversal", select, weigh_equal, warmup_rows=window + 1)


def build_inverse_volatility(params: Params) -> Strategy:
    window = params["window"]
    weigh = WeighInverseVolatility(window)
    return Pipeline("inverse-volatility", (), weigh, warmup_rows=window + 1)


def build_buy_and_hold(params: Params) -> Strategy:
    return Pipeline("buy-and-hold", (), weigh_equal, rebalances=False)


STRATEGIES: tuple[StrategyDef, ...] = (
    StrategyDef(
        1,
        "equal-weight",
        "Hold every symbol with a valid close, equally weighted.",
        (),
        build_equal_weight,
    ),
    StrategyDef(
        2,
        "momentum",
        "Hold the top_n symbols by trailing total return over `lookback` sessions, "
        "skipping the most recent `skip` (adj_close[t-skip] / adj_close[t-lookback] "
        "- 1); equal weight.",
        (
            _top_n(),
            ParamSpec("lookback", 252, 20, MAX_WINDOW, "return window, in sessions"),
            ParamSpec("skip", 21, 0, 63, "most recent sessions left out of the return"),
        ),
        build_momentum,
    ),
    StrategyDef(
        3,
        "trend",
        "Hold the symbols whose close is above their `window`-session simple moving "
        "average of close; equal weight.",
        (_window(200, 5, what="moving-average"),),
        build_trend,
    ),
    StrategyDef(
        4,
        "low-volatility",
        "Hold the top_n symbols with the lowest annualised volatility of daily "
        "returns over `window` sessions; equal weight.",
        (_top_n(), _window(63, 2, what="volatility")),
        build_low_volatility,
    ),
    StrategyDef(
        5,
        "short-term-reversal",
        "Hold the top_n symbols with the worst total return over the last `window` "
        "sessions; equal weight.",
        (_top_n(), _window(5, 1, 252, what="return")),
        build_reversal,
    ),
    StrategyDef(
        6,
        "inverse-volatility",
        "Hold every symbol with a defined volatility, weight proportional to "
        "1 / annualised volatility over `window` sessions, normalised to sum to 1.",
        (_window(63, 2, what="volatility"),),
        build_inverse_volatility,
    ),
    StrategyDef(
        7,
        "buy-and-hold",
        "Buy the symbols with a valid close equally weighted at the start and never "
        "rebalance.",
        (),
        build_buy_and_hold,
    ),
)
