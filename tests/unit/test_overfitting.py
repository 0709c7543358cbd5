"""PBO (CSCV), PSR and DSR against a straightforward reference written here.

The reference loops over ``itertools.combinations``, slices rows, ranks with
``scipy.stats.rankdata`` and takes moments from pandas and Phi from ``scipy.stats``:
none of the engine's block-aggregate, deduplication or chunking shortcuts.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, rankdata

from app.engine.errors import InvalidInputError
from app.engine.overfitting import (
    EULER_GAMMA,
    deflated_sharpe,
    overfitting_report,
    pbo_cscv,
    probabilistic_sharpe,
    sharpe_per_column,
)


# ------------------------------------------------------------------------ reference
def ref_sharpe(x: np.ndarray) -> np.ndarray:
    # std "is 0" when it is float residue: below 1e-12 of the largest |return|
    std = x.std(axis=0, ddof=1)
    flat = std <= 1e-12 * np.abs(x).max(axis=0)
    return np.where(flat, 0.0, x.mean(axis=0) / np.where(flat, 1, std))


def ref_cscv(r: np.ndarray, s: int) -> tuple[float, float, float]:
    t = r.shape[0] - r.shape[0] % s
    x = r[r.shape[0] - t :]
    parts = np.split(x, s)
    n = r.shape[1]
    lambdas, oos_best = [], []
    for ins in itertools.combinations(range(s), s // 2):
        outs = [b for b in range(s) if b not in ins]
        is_sr = ref_sharpe(np.vstack([parts[b] for b in ins]))
        oos_sr = ref_sharpe(np.vstack([parts[b] for b in outs]))
        best = int(np.argmax(is_sr))
        w = rankdata(oos_sr)[best] / (n + 1)
        lambdas.append(math.log(w / (1 - w)))
        oos_best.append(oos_sr[best])
    lam = np.array(lambdas)
    return float(np.mean(lam <= 0)), float(np.median(lam)), float(np.mean(oos_best))


def ref_psr(col: np.ndarray, threshold: float) -> float:
    s = pd.Series(col)
    sr = s.mean() / s.std(ddof=1)
    skew, kurt = s.skew(), s.kurt() + 3.0
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    return float(norm.cdf((sr - threshold) * math.sqrt(len(s) - 1) / math.sqrt(denom)))


def ref_sr0(srs: np.ndarray) -> float:
    n = srs.size
    e_max = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n)
    e_max += EULER_GAMMA * norm.ppf(1 - 1 / (n * math.e))
    return float(np.std(srs, ddof=1) * e_max)


@pytest.fixture
def returns() -> np.ndarray:
    """(203, 12): T not a multiple of 8, fat tails, drifts, one duplicated column."""
    rng = np.random.default_rng(20261206)
    r = rng.standard_t(4, size=(203, 12)) * 0.01 + rng.normal(0.0004, 0.0004, 12)
    r[:, 7] = r[:, 2]
    return r


# ----------------------------------------------------------------------------- PBO
@pytest.mark.parametrize("blocks", [4, 8, 10])
def test_pbo_cscv_matches_reference(returns: np.ndarray, blocks: int) -> None:
    got = pbo_cscv(returns, blocks)
    want = ref_cscv(returns, blocks)
    assert got == pytest.approx(want, abs=1e-12, rel=1e-12)


def test_pbo_cscv_default_sixteen_blocks_matches_reference() -> None:
    rng = np.random.default_rng(7)
    r = rng.normal(0.0003, 0.01, size=(250, 6))
    assert pbo_cscv(r) == pytest.approx(ref_cscv(r, 16), abs=1e-12, rel=1e-12)


def test_pbo_cscv_drops_first_t_mod_s_rows(returns: np.ndarray) -> None:
    # 203 = 25 * 8 + 3: the first 3 rows are not used, so changing them changes nothing
    changed = returns.copy()
    changed[:3] = np.random.default_rng(1).normal(0.0, 0.5, size=(3, 12))
    assert pbo_cscv(changed, 8) == pbo_cscv(returns, 8)
    changed[3] += 0.05
    assert pbo_cscv(changed, 8) != pbo_cscv(returns, 8)


def test_pbo_cscv_noise_strategies_give_pbo_near_half() -> None:
    # With no skill the IS winner is just the luckiest column, and its OOS rank is
    # uniform on 1..N: P(lambda <= 0) = P(rank <= (N + 1) / 2) = 0.5 in expectation.
    # The 252 splits reuse the same 10 blocks, so they are strongly dependent and one
    # matrix's PBO scatters about 0.5 far more than 1/sqrt(252) would suggest; the
    # seed is fixed, so the band 0.3..0.7 is a deterministic check, not a flaky one.
    r = np.random.default_rng(11).normal(0.0, 0.01, size=(1000, 50))
    pbo, _, _ = pbo_cscv(r, 10)
    assert 0.3 <= pbo <= 0.7


def test_pbo_cscv_genuine_edge_gives_pbo_near_zero() -> None:
    rng = np.random.default_rng(12)
    r = rng.normal(0.0, 0.01, size=(1000, 50))
    r[:, 17] += 0.004  # Sharpe 0.4 per day: best IS and OOS in almost every split
    pbo, lambda_median, degradation = pbo_cscv(r, 10)
    assert pbo < 0.05
    assert lambda_median > 3.0
    assert degradation > 0.2


def test_pbo_cscv_tie_takes_lowest_index_and_average_rank() -> None:
    # Columns 0 and 1 identical and best in every block; OOS they share rank 2.5 of 3
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 0.01, size=(40, 1))
    r = np.hstack([base + 0.02, base + 0.02, base])
    pbo, lambda_median, _ = pbo_cscv(r, 4)
    w = 2.5 / 4
    assert pbo == 0.0
    assert lambda_median == pytest.approx(math.log(w / (1 - w)), abs=1e-12)
    assert (pbo, lambda_median) == pytest.approx(ref_cscv(r, 4)[:2], abs=1e-12)


def test_pbo_cscv_constant_columns_have_zero_sharpe() -> None:
    rng = np.random.default_rng(4)
    r = np.hstack([np.full((48, 2), 0.001), rng.normal(0, 0.01, (48, 3))])
    assert pbo_cscv(r, 6) == pytest.approx(ref_cscv(r, 6), abs=1e-12)


def test_pbo_cscv_ignores_column_order_and_counts_duplicates(
    returns: np.ndarray,
) -> None:
    # Column 7 duplicates column 2: a permutation moves both, a triple changes ranks
    perm = np.random.default_rng(2).permutation(returns.shape[1])
    assert pbo_cscv(returns[:, perm], 8) == pytest.approx(
        pbo_cscv(returns, 8), abs=1e-12
    )
    tripled = np.hstack([returns, returns[:, [2]]])
    assert pbo_cscv(tripled, 8) == pytest.approx(ref_cscv(tripled, 8), abs=1e-12)


@pytest.mark.parametrize("blocks", [2, 3, 5, 34, 0, -4, 4.0, True])
def test_pbo_cscv_rejects_invalid_block_count(returns: np.ndarray, blocks: int) -> None:
    with pytest.raises(InvalidInputError, match="even integer from 4 to 32"):
        pbo_cscv(returns, blocks)


def test_pbo_cscv_rejects_fewer_rows_than_blocks() -> None:
    with pytest.raises(InvalidInputError, match="at least 16"):
        pbo_cscv(np.zeros((15, 3)))


def test_pbo_cscv_rejects_nan_and_wrong_shape() -> None:
    with pytest.raises(InvalidInputError, match="finite"):
        pbo_cscv(np.full((40, 3), np.nan), 4)
    with pytest.raises(InvalidInputError, match="2-D"):
        pbo_cscv(np.zeros(40), 4)


# ----------------------------------------------------------------------- PSR / DSR
def test_sharpe_per_column_matches_reference(returns: np.ndarray) -> None:
    np.testing.assert_allclose(
        sharpe_per_column(returns), ref_sharpe(returns), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("threshold", [0.0, 0.05, -0.03])
def test_probabilistic_sharpe_matches_pandas_and_scipy(
    returns: np.ndarray, threshold: float
) -> None:
    got = probabilistic_sharpe(returns, threshold)
    want = [ref_psr(returns[:, i], threshold) for i in range(returns.shape[1])]
    assert got == pytest.approx(want, abs=1e-12)


def test_probabilistic_sharpe_is_none_when_undefined() -> None:
    r = np.column_stack([np.full(30, 0.001), np.linspace(-0.01, 0.02, 30)])
    got = probabilistic_sharpe(r)
    assert got[0] is None  # constant: skewness and kurtosis are 0/0
    assert got[1] is not None
    assert probabilistic_sharpe(r[:3]) == [None, None]  # T < 4


def test_deflated_sharpe_matches_reference(returns: np.ndarray) -> None:
    dsr, sr0, best = deflated_sharpe(returns)
    srs = ref_sharpe(returns)
    assert best == int(np.argmax(srs))
    assert sr0 == pytest.approx(ref_sr0(srs), abs=1e-12)
    assert dsr == pytest.approx(ref_psr(returns[:, best], ref_sr0(srs)), abs=1e-12)


def test_deflated_sharpe_uses_the_given_objective(returns: np.ndarray) -> None:
    objective = np.full(returns.shape[1], np.nan)
    objective[[4, 9]] = 1.0  # tie between 4 and 9: the lower index wins
    dsr, sr0, best = deflated_sharpe(returns, objective)
    assert best == 4
    assert dsr == pytest.approx(ref_psr(returns[:, 4], sr0), abs=1e-12)


# -------------------------------------------------------------------------- report
def test_overfitting_report_combines_everything(returns: np.ndarray) -> None:
    rep = overfitting_report(returns, blocks=8)
    pbo, lam, deg = ref_cscv(returns, 8)
    assert (rep["pbo"], rep["lambda_median"], rep["degradation"]) == pytest.approx(
        (pbo, lam, deg), abs=1e-12
    )
    assert rep["n_trials"] == 12
    assert rep["blocks"] == 8
    assert len(rep["psr"]) == 12
    assert rep["dsr"] == pytest.approx(deflated_sharpe(returns)[0], abs=1e-15)
    assert f"PBO {pbo:.2f}" in rep["verdict"]
    assert rep["reason"] is None


def test_overfitting_report_verdicts_follow_thresholds() -> None:
    rng = np.random.default_rng(12)
    r = rng.normal(0.0, 0.01, size=(1000, 50))
    r[:, 17] += 0.004
    assert overfitting_report(r, blocks=10)["verdict"].startswith(
        "no strong sign of overfitting: PBO 0.0"
    )
    noise = np.random.default_rng(5).normal(0.0, 0.01, size=(600, 30))
    rep = overfitting_report(noise, blocks=8)
    pbo = rep["pbo"]
    expected = (
        "likely overfit"
        if pbo > 0.5
        else "possibly overfit"
        if pbo > 0.25
        else "no strong sign of overfitting"
    )
    assert rep["verdict"].startswith(f"{expected}: PBO {pbo:.2f}")
    assert "not significant after 30 trials" in rep["verdict"]


def test_overfitting_report_single_combination_is_null_with_reason() -> None:
    rep = overfitting_report(np.random.default_rng(0).normal(0, 0.01, (100, 1)))
    assert rep["pbo"] is None
    assert rep["dsr"] is None
    assert rep["verdict"] is None
    assert rep["n_trials"] == 1
    assert "at least 2" in rep["reason"]
    assert len(rep["psr"]) == 1


class _Reader:
    """A ColumnSource over an array that records which column slices were read."""

    def __init__(self, r: np.ndarray) -> None:
        self.r = r
        self.reads: list[slice] = []

    @property
    def shape(self) -> tuple[int, int]:
        return self.r.shape

    def read(self, columns: slice) -> np.ndarray:
        self.reads.append(columns)
        return np.asfortranarray(self.r[:, columns])


def test_a_column_source_gives_the_array_report_reading_slices() -> None:
    """Columns read on demand (a sweep's returns file) give the same report as the
    array in memory, read in slices narrower than the matrix; duplicate columns
    included (they take the deduplicating path)."""
    rng = np.random.default_rng(7)
    r = np.asfortranarray(rng.normal(0.0005, 0.01, (2_515, 900)))
    r[:, 5] = r[:, 3]
    objective = np.arange(900.0)
    reader = _Reader(r)

    got = overfitting_report(reader, blocks=8, objective=objective)
    want = overfitting_report(r, blocks=8, objective=objective)

    assert got == want
    widths = {s.stop - s.start for s in reader.reads}
    assert max(widths) < 900 and reader.reads[-1] == slice(899, 900)  # DSR's column
    r[100, 400] = np.nan
    with pytest.raises(InvalidInputError, match="finite"):
        overfitting_report(_Reader(r), blocks=8)
