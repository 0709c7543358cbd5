"""Backtest-overfitting diagnostics of a parameter sweep: PBO, PSR and DSR.

Input is a returns matrix ``R`` of shape ``(T, N)``: T daily simple returns (time is
axis 0) of each of N combinations (columns) that were tried. Conventions:

* **Sharpe** of a column or segment: ``SR = mean / std`` (sample std, ddof=1), per
  period, NOT annualised and with no risk-free rate; ``SR = 0`` when the std is 0. A
  std counts as 0 when the sample variance is at most ``(1e-12 * max|r|)**2`` of the
  column (float residue of a constant segment; ``ZERO_DISPERSION_RTOL`` of
  :mod:`app.engine.metrics`).
* **PBO** (probability of backtest overfitting) by combinatorially symmetric
  cross-validation (CSCV; Bailey, Borwein, López de Prado & Zhu, 2017): the first
  ``T mod S`` rows are dropped, the rest is cut into S contiguous blocks of
  ``m = T // S`` rows. For each of the ``C(S, S/2)`` choices of S/2 blocks as
  in-sample (IS; the other S/2 blocks, in time order, are out-of-sample, OOS):
  ``n*`` = column with the highest IS Sharpe (ties: the lowest column index);
  ``rank`` = its OOS Sharpe's rank among all N columns by average ranks (1 = worst,
  ties share the mean rank, as ``scipy.stats.rankdata``); ``w = rank / (N + 1)``;
  ``lambda = ln(w / (1 - w))``. ``PBO`` = share of splits with ``lambda <= 0``;
  ``lambda_median`` = median over splits; ``degradation`` = mean over splits of the
  OOS Sharpe of the IS-best column (per period, to set against its IS Sharpe).
* **PSR** (probabilistic Sharpe ratio) of a column against a threshold ``x``:
  ``PSR(x) = Phi((SR - x) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``
  over all T rows, with ``skew`` the bias-corrected sample skewness (pandas
  ``skew()``) and ``kurt`` the bias-corrected sample kurtosis, NOT excess (pandas
  ``kurt() + 3``). It is None when undefined: fewer than 4 returns (no bias-corrected
  kurtosis), a constant column (std 0: skewness and kurtosis are 0/0), or a
  denominator ``<= 0`` (possible with the bias-corrected moments of short samples).
* **DSR** (deflated Sharpe ratio) of the best column by a caller's objective:
  ``SR0 = sd(SR_1..SR_N, ddof=1) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``
  with ``g`` the Euler–Mascheroni constant, and ``DSR = PSR(SR0)`` of that column.
* **Verdict** (plain language): PBO > 0.5 "likely overfit" (the in-sample winner
  lands in the bottom half out of sample more often than not: selection adds
  nothing), 0.25 < PBO <= 0.5 "possibly overfit", else "no strong sign of
  overfitting"; "; best Sharpe not significant after N trials (DSR d)" is appended
  when DSR < 0.95. With N < 2 there is nothing to select among: all numbers are None
  and ``reason`` says why.

Cost: the CSCV runs over all ``C(S, S/2)`` splits (12,870 for S = 16; 601 million for
S = 32, which is allowed but takes hours), vectorised over splits in chunks from
block sums and sums of squares; identical columns (same bytes) are computed once.
Memory beyond the input is a few column chunks and split chunks (tens of MB). The
input is an array or a :class:`ColumnSource` (columns read on demand, chunk by chunk:
a sweep's 50,000 x 10-year matrix, 1 GB, then never has to be in memory at once).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError
from app.engine.metrics import ZERO_DISPERSION_RTOL

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Euler–Mascheroni constant (expected maximum of N Gaussians, DSR).
EULER_GAMMA = 0.5772156649015329
#: Default number of CSCV blocks; allowed: even numbers 4..32.
DEFAULT_BLOCKS = 16
#: Verdict thresholds on PBO: above LIKELY "likely overfit", above POSSIBLE
#: "possibly overfit", else "no strong sign of overfitting".
PBO_LIKELY = 0.5
PBO_POSSIBLE = 0.25
#: Elements per (splits x columns) working array: ~2 MB each, cache-friendly.
_CHUNK_ELEMENTS = 250_000

_RESULT_KEYS = ("pbo", "lambda_median", "degradation", "dsr", "sr0")


@runtime_checkable
class ColumnSource(Protocol):
    """A ``(T, N)`` returns matrix read a slice of columns at a time."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def read(self, columns: slice) -> FloatArray:
        """The ``(T, k)`` float64 columns of the slice (any memory order)."""
        ...


#: A returns matrix: an array, or columns read on demand.
Returns: TypeAlias = "npt.ArrayLike | ColumnSource | _Columns"


class _Columns:
    """The matrix as the functions below read it: column slices, each checked
    finite; an array is sliced (views), a :class:`ColumnSource` read."""

    shape: tuple[int, int]
    _read: Callable[[slice], FloatArray]

    def __init__(self, returns: Returns) -> None:
        if isinstance(returns, _Columns):
            self.shape, self._read = returns.shape, returns._read
        elif isinstance(returns, ColumnSource):
            t, n = (int(x) for x in returns.shape)
            if t < 1 or n < 1:
                msg = (
                    f"returns must be a 2-D (T days, N combinations) array, got {t, n}"
                )
                raise InvalidInputError(msg, field="returns")
            self.shape, self._read = (t, n), self._checked(returns)
        else:
            r = _matrix(returns)
            self.shape = (int(r.shape[0]), int(r.shape[1]))
            self._read = lambda c: r[:, c]

    @staticmethod
    def _checked(source: ColumnSource) -> Callable[[slice], FloatArray]:
        def read(c: slice) -> FloatArray:
            x = np.asarray(source.read(c), dtype=np.float64)
            if not np.isfinite(x).all():
                msg = "returns must be finite (no NaN/inf)"
                raise InvalidInputError(msg, field="returns")
            return x

        return read

    def read(self, c: slice) -> FloatArray:
        out: FloatArray = self._read(c)
        return out


# ------------------------------------------------------------------------ public API
def sharpe_per_column(returns: Returns) -> FloatArray:
    """Per-period Sharpe ``mean / std`` (ddof=1) of each column of ``(T, N)`` -> (N,).

    Not annualised; 0 for a column whose std is 0 (see module docstring).
    """
    r = _Columns(returns)
    mean, m2, _, _, absmax = _moments(r, 2)
    return _sharpe(mean, m2, absmax, r.shape[0])


def probabilistic_sharpe(
    returns: Returns, threshold: float = 0.0
) -> list[float | None]:
    """PSR against ``threshold`` (a per-period Sharpe) of each column of ``(T, N)``.

    ``Phi((SR - x) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``, skew and
    kurt (not excess) bias-corrected as pandas; None when undefined (T < 4, constant
    column, denominator <= 0). Values in [0, 1].
    """
    r = _Columns(returns)
    sr = sharpe_per_column(r)
    return _psr(r, sr, float(threshold))


def deflated_sharpe(
    returns: Returns, objective: npt.ArrayLike | None = None
) -> tuple[float | None, float, int]:
    """``(dsr, sr0, best)``: the deflated Sharpe ratio of the best column.

    ``best`` = argmax of ``objective`` (N,) (higher is better; NaN never best; ties:
    lowest index); by default the per-period Sharpe. ``sr0`` is the expected maximum
    Sharpe of N unskilled trials (module docstring); ``dsr = PSR(sr0)`` of the best
    column, None where PSR is undefined. Needs N >= 2.
    """
    r = _Columns(returns)
    n = r.shape[1]
    if n < 2:
        raise InvalidInputError("the deflated Sharpe ratio needs N >= 2 columns")
    sr = sharpe_per_column(r)
    best = _best_index(sr if objective is None else objective, n)
    z = NormalDist()
    expected_max = (1.0 - EULER_GAMMA) * z.inv_cdf(1.0 - 1.0 / n)
    expected_max += EULER_GAMMA * z.inv_cdf(1.0 - 1.0 / (n * math.e))
    sr0 = float(sr.std(ddof=1)) * expected_max
    column = _Columns(r.read(slice(best, best + 1)))
    return _psr(column, sr[best : best + 1], sr0)[0], sr0, best


def pbo_cscv(
    returns: Returns, blocks: int = DEFAULT_BLOCKS
) -> tuple[float, float, float]:
    """``(pbo, lambda_median, degradation)`` of ``(T, N)`` returns by CSCV.

    Definitions in the module docstring. Needs N >= 2 and T >= ``blocks``; raises
    InvalidInputError otherwise, or when ``blocks`` is not an even int in 4..32.
    """
    r = _Columns(returns)
    _check_blocks(blocks, r.shape[0])
    if r.shape[1] < 2:
        raise InvalidInputError("PBO needs at least 2 columns (combinations)")
    lambdas, oos_sr = _cscv(r, blocks)
    pbo = float(np.count_nonzero(lambdas <= 0.0)) / lambdas.size
    return pbo, float(np.median(lambdas)), float(oos_sr.mean())


def overfitting_report(
    returns: Returns,
    *,
    blocks: int = DEFAULT_BLOCKS,
    objective: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """All diagnostics of a sweep's ``(T, N)`` returns in one JSON-safe dict.

    Keys: ``pbo``, ``lambda_median``, ``degradation`` (:func:`pbo_cscv`), ``dsr``,
    ``sr0`` (:func:`deflated_sharpe` of the best column by ``objective``, default
    Sharpe), ``best_index``, ``n_trials`` (= N), ``blocks`` (S), ``psr`` (list, PSR vs
    0 of every column), ``verdict`` (plain language, thresholds ``PBO_LIKELY`` and
    ``PBO_POSSIBLE``; DSR < 0.95 adds that the best Sharpe is not significant after N
    trials) and ``reason`` (None, or why the numbers are null: N < 2).
    """
    r = _Columns(returns)
    _check_blocks(blocks, r.shape[0])
    n = r.shape[1]
    out: dict[str, Any] = {
        **dict.fromkeys(_RESULT_KEYS),
        "best_index": None,
        "n_trials": n,
        "blocks": blocks,
        "psr": probabilistic_sharpe(r),
        "verdict": None,
        "reason": None,
    }
    if n < 2:
        out["reason"] = f"needs at least 2 combinations to compare, got {n}"
        return out
    pbo, lambda_median, degradation = pbo_cscv(r, blocks)
    dsr, sr0, best = deflated_sharpe(r, objective)
    out.update(pbo=pbo, lambda_median=lambda_median, degradation=degradation)
    out.update(dsr=dsr, sr0=sr0, best_index=best, verdict=_verdict(pbo, dsr, n))
    return out


# ------------------------------------------------------------------------------ CSCV
def _cscv(r: _Columns, blocks: int) -> tuple[FloatArray, FloatArray]:
    """Lambda and OOS Sharpe of the IS-best column for every split (any order).

    Each split and its complement are handled together: enumerating only the IS sets
    that contain block 0 covers every split once as (A, not A) and once as (not A, A).
    Identical columns are collapsed first (their multiplicity weights the ranks), which
    also makes duplicates tie exactly.
    """
    t_used = r.shape[0] - r.shape[0] % blocks
    drop = r.shape[0] - t_used
    first, counts = _unique_columns(r, drop)
    weights = counts.astype(np.float64)
    n_total = float(r.shape[1])
    # Centre each column: sums of squares then lose no digits to a large mean.
    # Column chunks keep the temporaries small next to an (T, 50,000) input; each
    # chunk of the input gives the unique columns that start in it.
    u = np.empty((2 * blocks + 2, first.size))
    for part in _column_chunks(r.shape[1], r.shape[0]):
        lo, hi = np.searchsorted(first, (part.start, part.stop))
        if lo == hi:
            continue
        c = slice(int(lo), int(hi))
        xs = r.read(part)[drop:, first[c] - part.start]
        centre = xs.mean(axis=0)
        xc = (xs - centre).reshape(blocks, t_used // blocks, -1)
        u[:blocks, c] = xc.sum(axis=1)
        u[blocks:-2, c] = np.square(xc, out=xc).sum(axis=1)
        u[-2, c] = centre
        u[-1, c] = np.abs(xs).max(axis=0)
    sums, squares, centre_u, scale_u = u[:blocks], u[blocks:-2], u[-2], u[-1]
    half_rows = t_used // 2
    tot_s, tot_q = sums.sum(axis=0), squares.sum(axis=0)
    floor = np.square(ZERO_DISPERSION_RTOL * scale_u) * (half_rows - 1)
    # Without duplicates, counting beats a bool-to-float matrix product.
    weights_or_none = None if first.size == r.shape[1] else weights
    combos = itertools.combinations(range(1, blocks), blocks // 2 - 1)
    chunk = max(1, _CHUNK_ELEMENTS // u.shape[1])
    lambdas: list[FloatArray] = []
    oos: list[FloatArray] = []
    while batch := list(itertools.islice(combos, chunk)):
        mask = np.zeros((len(batch), blocks))
        mask[:, 0] = 1.0
        np.put_along_axis(mask, np.array(batch, dtype=np.intp), 1.0, axis=1)
        # einsum, not BLAS: a threaded GEMM of this shape stalls on a busy machine
        s_a = np.einsum("ks,sn->kn", mask, sums)
        q_a = np.einsum("ks,sn->kn", mask, squares)
        s_b, q_b = np.subtract(tot_s, s_a), np.subtract(tot_q, q_a)
        sr_a = _segment_sharpe(s_a, q_a, half_rows, centre_u, floor)
        sr_b = _segment_sharpe(s_b, q_b, half_rows, centre_u, floor)
        for is_sr, oos_sr in ((sr_a, sr_b), (sr_b, sr_a)):
            lam, best_oos = _split_lambdas(is_sr, oos_sr, weights_or_none, n_total)
            lambdas.append(lam)
            oos.append(best_oos)
    return np.concatenate(lambdas), np.concatenate(oos)


def _unique_columns(r: _Columns, drop: int) -> tuple[npt.NDArray[np.intp], IntArray]:
    """Index of the first of each group of identical columns (in order) and counts,
    over the rows from ``drop`` on.

    Columns are compared by a 128-bit BLAKE2 digest of their bytes.
    """
    seen: dict[bytes, int] = {}
    first: list[int] = []
    counts: list[int] = []
    for c in _column_chunks(r.shape[1], r.shape[0]):
        block = np.ascontiguousarray(r.read(c)[drop:].T)
        for j, column in enumerate(block, start=c.start):
            key = hashlib.blake2b(column.tobytes(), digest_size=16).digest()
            k = seen.setdefault(key, len(first))
            if k == len(first):
                first.append(j)
                counts.append(0)
            counts[k] += 1
    return np.array(first, dtype=np.intp), np.array(counts, dtype=np.int64)


def _segment_sharpe(
    s: FloatArray, q: FloatArray, rows: int, centre: FloatArray, floor: FloatArray
) -> FloatArray:
    """Sharpe of segments of ``rows`` rows from centred sums ``s`` and sums of squares
    ``q`` (k, N); 0 where ``(rows - 1) * variance <= floor`` (N,). Overwrites ``q``.

    In-place arithmetic: the arrays are large and freshly allocated temporaries cost
    more than the flops here.
    """
    ss_dev = np.multiply(s, s, out=np.empty_like(s))
    ss_dev *= 1.0 / rows
    np.subtract(q, ss_dev, out=ss_dev)  # (rows - 1) * sample variance
    flat = ss_dev <= floor
    np.maximum(ss_dev, floor, out=ss_dev)
    np.sqrt(ss_dev, out=ss_dev)
    sr = np.multiply(s, 1.0 / rows, out=q)
    sr += centre
    sr *= math.sqrt(rows - 1)
    sr /= ss_dev
    sr[flat] = 0.0
    return sr


def _split_lambdas(
    is_sr: FloatArray, oos_sr: FloatArray, weights: FloatArray | None, n_total: float
) -> tuple[FloatArray, FloatArray]:
    """Per split: logit of the IS-best column's relative OOS rank, and its OOS SR.

    ``weights`` (U,) are the multiplicities of the unique columns (None: all 1).
    """
    best = np.argmax(is_sr, axis=1)  # first maximum: lowest column index
    v = np.take_along_axis(oos_sr, best[:, None], axis=1)
    if weights is None:
        below = np.count_nonzero(oos_sr < v, axis=1).astype(np.float64)
        equal = np.count_nonzero(oos_sr == v, axis=1).astype(np.float64)
    else:
        below = np.einsum("kn,n->k", (oos_sr < v).astype(np.float64), weights)
        # equal includes the best column itself
        equal = np.einsum("kn,n->k", (oos_sr == v).astype(np.float64), weights)
    rank = below + (equal + 1.0) / 2.0
    w = rank / (n_total + 1.0)
    return np.log(w / (1.0 - w)), v[:, 0]


# ------------------------------------------------------------------------- helpers
def _column_chunks(n: int, rows: int) -> list[slice]:
    """Column slices of at most ``_CHUNK_ELEMENTS * 4`` elements of ``rows`` rows."""
    width = max(1, 4 * _CHUNK_ELEMENTS // max(rows, 1))
    return [slice(a, min(a + width, n)) for a in range(0, n, width)]


def _moments(r: _Columns, highest: int) -> tuple[FloatArray, ...]:
    """``(mean, m2, m3, m4, max|r|)`` per column of ``r`` (T, N), in column chunks.

    ``m_p`` = mean of ``(r - mean) ** p`` (population central moments); moments above
    ``highest`` are left 0.
    """
    out = np.zeros((5, r.shape[1]))
    for c in _column_chunks(r.shape[1], r.shape[0]):
        xs = r.read(c)
        out[0, c] = xs.mean(axis=0)
        d = xs - out[0, c]
        out[4, c] = np.abs(xs).max(axis=0)
        power = np.square(d)
        out[1, c] = power.mean(axis=0)
        for p in range(3, highest + 1):
            power *= d
            out[p - 1, c] = power.mean(axis=0)
    return tuple(out)


def _sharpe(mean: FloatArray, m2: FloatArray, absmax: FloatArray, t: int) -> FloatArray:
    """Column Sharpe from the mean and population variance ``m2`` of T rows."""
    if t < 2:
        return np.zeros(mean.shape)
    var = m2 * (t / (t - 1))
    flat = var <= np.square(ZERO_DISPERSION_RTOL * absmax)
    return np.where(flat, 0.0, mean / np.sqrt(np.where(flat, 1.0, var)))


def _psr(r: _Columns, sr: FloatArray, threshold: float) -> list[float | None]:
    """PSR of each column of ``r`` (T, k) whose Sharpe ``sr`` (k,) is given."""
    t = r.shape[0]
    if t < 4:
        return [None] * r.shape[1]
    _, m2, m3, m4, absmax = _moments(r, 4)
    flat = m2 <= np.square(ZERO_DISPERSION_RTOL * absmax)
    m2 = np.where(flat, 1.0, m2)
    # Bias-corrected G1 and G2 (pandas skew / kurt), G2 + 3 = non-excess kurtosis.
    skew = math.sqrt(t * (t - 1)) / (t - 2) * m3 / m2**1.5
    excess = (t - 1) / ((t - 2) * (t - 3)) * ((t + 1) * m4 / m2**2 - 3 * (t - 1))
    kurt = excess + 3.0
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    out: list[float | None] = []
    for i in range(r.shape[1]):
        if flat[i] or not denom[i] > 0.0:
            out.append(None)
            continue
        z = (sr[i] - threshold) * math.sqrt(t - 1) / math.sqrt(denom[i])
        out.append(0.5 * math.erfc(-float(z) / math.sqrt(2.0)))
    return out


def _best_index(objective: npt.ArrayLike, n: int) -> int:
    """Argmax of ``objective`` (n,); NaN never wins; ties: the lowest index."""
    o = np.asarray(objective, dtype=np.float64)
    if o.shape != (n,):
        msg = f"objective must have one value per column ({n}), got shape {o.shape}"
        raise InvalidInputError(msg, field="objective")
    if np.isnan(o).all():
        raise InvalidInputError("objective is NaN for every column", field="objective")
    return int(np.argmax(np.where(np.isnan(o), -np.inf, o)))


def _verdict(pbo: float, dsr: float | None, n: int) -> str:
    """Plain-language reading of PBO (and of DSR when it is below 0.95)."""
    if pbo > PBO_LIKELY:
        text = f"likely overfit: PBO {pbo:.2f}"
    elif pbo > PBO_POSSIBLE:
        text = f"possibly overfit: PBO {pbo:.2f}"
    else:
        text = f"no strong sign of overfitting: PBO {pbo:.2f}"
    if dsr is not None and dsr < 0.95:
        text += f"; best Sharpe not significant after {n} trials (DSR {dsr:.2f})"
    return text


def _matrix(returns: npt.ArrayLike) -> FloatArray:
    """``returns`` as a finite 2-D float64 (T, N) array with T >= 1, N >= 1."""
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"returns must be numeric ({exc})"
        raise InvalidInputError(msg, field="returns") from exc
    if r.ndim != 2 or r.shape[0] < 1 or r.shape[1] < 1:
        msg = f"returns must be a 2-D (T days, N combinations) array, got {r.shape}"
        raise InvalidInputError(msg, field="returns")
    if not np.isfinite(r).all():
        raise InvalidInputError("returns must be finite (no NaN/inf)", field="returns")
    return r


def _check_blocks(blocks: int, t: int) -> None:
    """S must be an even int in 4..32 and T >= S (at least one row per block)."""
    ok = isinstance(blocks, int | np.integer) and not isinstance(blocks, bool)
    if not ok or not 4 <= blocks <= 32 or blocks % 2:
        msg = f"blocks must be an even integer from 4 to 32, got {blocks!r}"
        raise InvalidInputError(msg, field="blocks")
    if t < blocks:
        msg = f"returns have {t} rows; {blocks} CSCV blocks need at least {blocks}"
        raise InvalidInputError(msg, field="returns")
