"""The strategy contract and its building blocks (bt-style: select → weigh).

A strategy turns market data into target weights at decision rows. Built-in strategies
and screens are :class:`Pipeline` s: the tradable symbols of each row go through a
sequence of *select* steps (each narrowing a boolean mask), then one *weigh* step turns
the final mask into weights. Every step sees ``(data, rows)`` and uses only
``data[: row + 1]`` for a row, so pipelines never look ahead.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.engine.data import FloatMatrix, IntArray, MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies.factors import Factor

BoolMatrix = npt.NDArray[np.bool_]
Score = Callable[[MarketData, IntArray], FloatMatrix]

COMPARISONS: dict[str, Callable[[FloatMatrix, FloatMatrix | float], BoolMatrix]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@runtime_checkable
class Strategy(Protocol):
    """What the simulator calls.

    ``rebalances`` is False only for buy-and-hold (weights applied once).
    ``warmup_rows`` is how many rows of history the strategy wants before its first
    decision (a conservative count: the longest window + 1; 0 if it needs none).
    """

    @property
    def rebalances(self) -> bool: ...

    @property
    def warmup_rows(self) -> int: ...

    def target_weights(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        """Target weights decided at the close of each of ``rows``.

        ``rows``: ascending int64 row indices. Returns ``(len(rows), n_symbols)``
        float64, every entry ≥ 0, each row summing to ≤ 1 up to float rounding (the
        rest is cash), no NaN, exactly 0 where the close is NaN. Uses
        ``data[: row + 1]`` only; never mutates ``data``.
        """
        ...


class SelectStep(Protocol):
    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> BoolMatrix: ...


class WeighStep(Protocol):
    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> FloatMatrix: ...


def check_rows(rows: IntArray | Sequence[int], n_days: int) -> IntArray:
    """``rows`` as a 1-D int64 array, checked to be ascending and inside the data."""
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InvalidInputError("rows must be a 1-D array of integers", field="rows")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr[0] < 0 or arr[-1] >= n_days or np.any(np.diff(arr) < 0)):
        raise InvalidInputError(
            f"rows must be ascending and within 0..{n_days - 1}", field="rows"
        )
    return arr


@dataclass(frozen=True)
class Pipeline:
    """A :class:`Strategy` made of select steps and one weigh step."""

    name: str
    select: tuple[SelectStep, ...]
    weigh: WeighStep
    warmup_rows: int = 0
    rebalances: bool = True

    def target_weights(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        """See :meth:`Strategy.target_weights`."""
        rows = check_rows(rows, data.n_days)
        if rows.size == 0:
            return np.zeros((0, data.n_symbols))
        # consecutive rows (daily decisions) as a view: same values, no 10 MB gather
        span = slice(int(rows[0]), int(rows[-1]) + 1)
        consecutive = span.stop - span.start == rows.size
        selected = ~np.isnan(data.close[span] if consecutive else data.close[rows])
        for step in self.select:
            selected &= step(data, rows, selected)
        weights = self.weigh(data, rows, selected)
        return np.where(selected & np.isfinite(weights), weights, 0.0)


# ------------------------------------------------------------------ select steps
@dataclass(frozen=True)
class SelectWhere:
    """Keep symbols where ``lhs op rhs`` (rhs a factor or a number); NaN → dropped."""

    lhs: Factor
    op: str
    rhs: Factor | float

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> BoolMatrix:
        left = self.lhs(data, rows)
        right = self.rhs(data, rows) if isinstance(self.rhs, Factor) else self.rhs
        with np.errstate(invalid="ignore"):
            return np.asarray(COMPARISONS[self.op](left, right), dtype=np.bool_)


@dataclass(frozen=True)
class SelectTopN:
    """Keep the ``n`` selected symbols with the largest score (smallest if
    ``ascending``); symbols with a NaN score are never kept. Ties go to the earlier
    column (stable sort), so the result is deterministic."""

    score: Score
    n: int
    ascending: bool = False

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> BoolMatrix:
        values = self.score(data, rows)
        eligible = selected & ~np.isnan(values)
        key = np.where(eligible, values if self.ascending else -values, np.inf)
        n = min(self.n, key.shape[1])
        if n == 0:
            return np.zeros_like(eligible)
        # O(n) partition instead of a full sort: everything strictly better than the
        # n-th key is kept, then ties at the n-th key are filled in column order.
        kth = np.partition(key, n - 1, axis=1)[:, n - 1 : n]
        better = key < kth
        tied = key == kth
        room = n - better.sum(axis=1, keepdims=True)
        keep = better | (tied & (np.cumsum(tied, axis=1) <= room))
        return np.asarray(keep & eligible, dtype=np.bool_)


# ------------------------------------------------------------------- weigh steps
def weigh_equal(data: MarketData, rows: IntArray, selected: BoolMatrix) -> FloatMatrix:
    """``1 / k`` on each of the ``k`` selected symbols of a row (all-zero if none)."""
    count = selected.sum(axis=1, keepdims=True)
    return np.where(selected, 1.0 / np.maximum(count, 1), 0.0)


@dataclass(frozen=True)
class WeighInverseVolatility:
    """Weight ∝ 1 / annualised volatility over ``window`` sessions, normalised to sum
    to 1 over the selected symbols whose volatility is finite and positive (a symbol
    without one gets 0; a row without any is all cash)."""

    window: int = 63

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> FloatMatrix:
        vol = Factor("volatility", self.window)(data, rows)
        usable = selected & (vol > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(usable, 1.0 / vol, 0.0)
        total = raw.sum(axis=1, keepdims=True)
        return np.where(total > 0, raw / np.where(total > 0, total, 1.0), 0.0)


def weights_are_valid(weights: FloatMatrix) -> bool:
    """True when ``weights`` satisfies the contract (≥ 0, no NaN, row sums ≤ 1)."""
    return bool(
        np.all(np.isfinite(weights))
        and np.all(weights >= 0)
        and np.all(weights.sum(axis=1) <= 1 + 1e-12)
    )


__all__ = [
    "COMPARISONS",
    "BoolMatrix",
    "Pipeline",
    "Score",
    "SelectStep",
    "SelectTopN",
    "SelectWhere",
    "Strategy",
    "WeighInverseVolatility",
    "WeighStep",
    "check_rows",
    "weigh_equal",
    "weights_are_valid",
]
