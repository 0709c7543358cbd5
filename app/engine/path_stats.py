"""Compiled (numba) pass over resampled return paths, for the analysis's bootstrap.

One bootstrap draws 1,000 index paths of a 10-year daily series: 2.5 million
resampled returns. Accumulating their log wealth, running peak and drawdown with
numpy allocates four (1,000, n) temporaries and scans them four times (~45 ms of
CPU at n = 2,515); this kernel reads each resampled log return once and keeps three
scalars per path (~5 ms). The arithmetic is the numpy version's, in the same order
(numba compiles without fast-math): ``log_wealth`` is a left-to-right running sum
like ``np.cumsum``, and max/min are exact, so the results are bit-identical to it.

``cache=True`` as in :mod:`app.engine.jit`: compiled once per environment, loaded in
milliseconds afterwards; :func:`warm_up` loads it before a worker forks.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def growth_and_drawdown(  # pragma: no cover - jitted
    log_returns: FloatArray, idx: IntArray, growth: FloatArray, drawdown: FloatArray
) -> None:
    """For each row ``k`` of ``idx`` (a path of indices into ``log_returns``):
    ``growth[k]`` = the path's total log growth, ``drawdown[k]`` = its deepest
    ``log E_t - log max(1, max_{s<=t} E_s)`` (<= 0; wealth starts at E_0 = 1)."""
    paths, n = idx.shape
    for k in range(paths):
        wealth = 0.0
        peak = 0.0
        deepest = 0.0
        for j in range(n):
            wealth += log_returns[idx[k, j]]
            peak = max(peak, wealth)
            deepest = min(deepest, wealth - peak)
        growth[k] = wealth
        drawdown[k] = deepest


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny input."""
    out = np.empty(1)
    growth_and_drawdown(np.zeros(2), np.zeros((1, 2), dtype=np.int64), out, out.copy())
