"""Numeric kernels behind the factors: arrays in, arrays out, time is axis 0.

Every kernel takes a ``(n_days, n_symbols)`` float64 matrix ``values`` and ``rows``,
an ascending, non-empty int64 array of row indices, and returns a
``(len(rows), n_symbols)`` float64 matrix: the statistic *as of the close of* each
row. A value at row ``t`` is computed from ``values[: t + 1]`` only (no look-ahead),
and the inputs are never written.

NaN convention: a rolling statistic over ``window`` observations is NaN unless all of
them are present (pandas ``rolling(window)`` with its default ``min_periods=window``);
a row with fewer than ``window`` observations of history is NaN too.

Rolling sums and maxima at decision rows cost one ``ufunc.reduceat`` pass over the
block ``[min(rows) - window, max(rows)]``: the block is cut at every window edge, each
segment reduced once, and window sums are differences of prefix sums over the (few)
segments. To keep those differences free of cancellation, prices are centred by each
column's first valid value of the block (a causal reference: any complete window at
``t`` contains that row or a later one ≤ ``t``, so nothing after ``t`` is used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

# pandas is imported by the two kernels that use it (recursive filters and the dense
# rolling maximum), not here: the strategies package is imported to validate requests
# in the API process, which must not pay for pandas (issue 18's lean API).
if TYPE_CHECKING:
    import pandas as pd

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def ratio_at(
    values: FloatMatrix, rows: IntArray, *, recent_lag: int, old_lag: int
) -> FloatMatrix:
    """``values[t - recent_lag] / values[t - old_lag] - 1`` for every ``t`` in ``rows``.

    NaN where ``t - old_lag < 0``, where either value is NaN, or where the older one is
    not positive. Used on ``adj_close`` (only its ratios are meaningful).
    """
    old = rows - old_lag
    enough = old >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = values[np.maximum(old, 0)]
        out = values[np.maximum(rows - recent_lag, 0)] / prev - 1.0
    out[~enough] = np.nan
    out[~(prev > 0)] = np.nan
    return out


def _block(
    values: FloatMatrix, rows: IntArray, history: int
) -> tuple[FloatMatrix, int]:
    """Rows ``max(min(rows) - history, 0) .. max(rows)`` of ``values``; its offset."""
    lo = max(int(rows[0]) - history, 0)
    return values[lo : int(rows[-1]) + 1], lo


def _first_valid(block: FloatMatrix) -> FloatMatrix:
    """Per column, the first non-NaN value of ``block`` (0 where there is none)."""
    first = np.argmax(~np.isnan(block), axis=0)
    ref = block[first, np.arange(block.shape[1])]
    return np.where(np.isnan(ref), 0.0, ref)


class _Windows:
    """The windows ``[t - window + 1, t]`` ending at ``rel_rows`` (ascending indices
    into a block whose last row is ``rel_rows[-1]``), cut into the segments between
    consecutive window edges, so that one ``reduceat`` pass over the block serves
    every window however much they overlap."""

    def __init__(self, rel_rows: IntArray, window: int) -> None:
        end = rel_rows + 1
        start = end - window
        self.enough = (start >= 0)[:, None]
        start = np.maximum(start, 0)
        self.bounds = np.unique(np.concatenate([start, end]))  # last == len(block)
        self.first = np.searchsorted(self.bounds, start)  # segment index of each start
        self.stop = np.searchsorted(self.bounds, end)

    def segments(self, ufunc: np.ufunc, x: FloatMatrix) -> FloatMatrix:
        """``ufunc`` reduced over each segment, shape ``(n_segments, n_symbols)``;
        NaN for a segment holding a NaN (both add and maximum propagate it)."""
        return np.asarray(ufunc.reduceat(x, self.bounds[:-1], axis=0))

    def sums(self, x: FloatMatrix) -> tuple[FloatMatrix, npt.NDArray[np.bool_]]:
        """Sum of ``x`` over each window and whether the window is complete."""
        seg = self.segments(np.add, x)
        bad = np.isnan(seg)
        prefix = np.zeros((seg.shape[0] + 1, seg.shape[1]))
        np.cumsum(np.where(bad, 0.0, seg), axis=0, out=prefix[1:])
        n_bad = np.zeros(prefix.shape, dtype=np.int64)
        np.cumsum(bad, axis=0, out=n_bad[1:])
        complete = ((n_bad[self.stop] - n_bad[self.first]) == 0) & self.enough
        return prefix[self.stop] - prefix[self.first], complete

    def n_covered(self) -> int:
        """Total number of segments the windows span (cost of :meth:`maxima`)."""
        return int(np.sum(self.stop - self.first))

    def maxima(self, x: FloatMatrix) -> FloatMatrix:
        """Maximum of ``x`` over each window (NaN if incomplete)."""
        seg = self.segments(np.maximum, x)
        seg = np.vstack([seg, np.full((1, seg.shape[1]), np.nan)])  # stop may == len
        pairs = np.column_stack([self.first, self.stop]).ravel()
        out = np.maximum.reduceat(seg, pairs, axis=0)[::2]
        return np.where(self.enough, out, np.nan)


def rolling_mean_at(values: FloatMatrix, rows: IntArray, window: int) -> FloatMatrix:
    """Mean of ``values[t - window + 1 : t + 1]`` for each ``t`` in ``rows``."""
    block, lo = _block(values, rows, window)
    ref = _first_valid(block)
    total, complete = _Windows(rows - lo, window).sums(block - ref)
    return np.where(complete, total / window + ref, np.nan)


def rolling_std_at(
    values: FloatMatrix,
    rows: IntArray,
    window: int,
    *,
    ddof: int = 1,
    center: bool = True,
) -> FloatMatrix:
    """Standard deviation (``ddof`` as in numpy) of ``values[t - window + 1 : t + 1]``.

    ``center=False`` skips the centring, for series already centred near zero (daily
    returns: their mean is ~1/20 of their standard deviation, so the one-pass formula
    ``(S2 - S1²/n) / (n - ddof)`` loses nothing noticeable).
    """
    block, lo = _block(values, rows, window)
    x = block - _first_valid(block) if center else block
    windows = _Windows(rows - lo, window)
    s1, complete = windows.sums(x)
    s2, _ = windows.sums(x * x)
    var = (s2 - s1 * s1 / window) / (window - ddof)
    return np.where(complete, np.sqrt(np.maximum(var, 0.0)), np.nan)


def simple_returns_at(
    values: FloatMatrix, rows: IntArray, window: int
) -> tuple[FloatMatrix, IntArray]:
    """Daily simple returns ``values[s] / values[s - 1] - 1`` over the block needed for
    ``window`` returns ending at each of ``rows``; returns ``(returns, rows_in_block)``.
    The first row of the block has no predecessor and is NaN."""
    block, lo = _block(values, rows, window)
    out = np.full(block.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = block[1:] / block[:-1] - 1.0
    return out, rows - lo


def _frame(values: FloatMatrix, rows: IntArray) -> pd.DataFrame:
    """``values[: max(rows) + 1]`` as a DataFrame (recursive filters start at row 0)."""
    import pandas as pd  # noqa: PLC0415 - see the imports

    return pd.DataFrame(values[: int(rows[-1]) + 1])


def ema_at(values: FloatMatrix, rows: IntArray, window: int) -> FloatMatrix:
    """Exponential moving average, ``alpha = 2 / (window + 1)``, seeded with the first
    observation (pandas ``ewm(span=window, adjust=False)``); NaN until ``window``
    observations have been seen. A missing observation leaves the average unchanged
    and the next one is weighted as pandas does (``ignore_na=False``)."""
    ema = _frame(values, rows).ewm(span=window, adjust=False, min_periods=window).mean()
    return np.asarray(ema.to_numpy(dtype=np.float64)[rows])


def _wilder_mean(frame: pd.DataFrame, window: int) -> FloatMatrix:
    smoothed = frame.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean()
    return np.asarray(smoothed.to_numpy(dtype=np.float64))


def rsi_at(values: FloatMatrix, rows: IntArray, window: int) -> FloatMatrix:
    """Wilder's relative strength index (0..100) of the daily changes of ``values``.

    Average gain and average loss are Wilder-smoothed (``ewm(alpha=1/window,
    adjust=False)``, seeded with the first change, NaN until ``window`` changes have
    been seen); ``RSI = 100 * gain / (gain + loss)`` (= ``100 - 100 / (1 + RS)``), 50
    when both are zero. Scale-invariant, so back-adjusted prices give the same value.
    """
    change = _frame(values, rows).diff()
    avg_gain = _wilder_mean(change.clip(lower=0.0), window)[rows]
    avg_loss = _wilder_mean((-change).clip(lower=0.0), window)[rows]
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100.0 * avg_gain / total, 50.0)
    return np.asarray(np.where(np.isnan(total), np.nan, rsi), dtype=np.float64)


def rolling_max_at(values: FloatMatrix, rows: IntArray, window: int) -> FloatMatrix:
    """Maximum of ``values[t - window + 1 : t + 1]`` (NaN unless all are present)."""
    block, lo = _block(values, rows, window)
    windows = _Windows(rows - lo, window)
    if windows.n_covered() <= 4 * block.shape[0]:  # sparse rows: segment maxima
        return windows.maxima(block)
    # dense rows (e.g. daily decisions): pandas' O(n) monotonic-deque rolling max
    import pandas as pd  # noqa: PLC0415 - see the imports

    rolled = pd.DataFrame(block).rolling(window, min_periods=window).max()
    return np.asarray(rolled.to_numpy(dtype=np.float64)[rows - lo])
