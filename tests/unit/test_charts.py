"""Chart down-sampling keeps the points a reader must not lose."""

from __future__ import annotations

import numpy as np
import pytest

from app.backtests.charts import chart_response, keep_indices


def walk(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    equity = 100_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    drawdown = equity / np.maximum.accumulate(equity) - 1
    return equity, drawdown


@pytest.mark.parametrize(("n", "max_points"), [(5000, 1000), (2520, 10), (1000, 999)])
def test_keep_indices_bounded_and_keeps_extremes(n: int, max_points: int) -> None:
    equity, drawdown = walk(n, seed=n)
    idx = keep_indices(equity, drawdown, max_points)
    assert len(idx) <= max_points
    assert np.all(np.diff(idx) > 0)
    for must in (0, n - 1, int(np.argmin(drawdown)), int(np.argmax(equity))):
        assert must in idx


def test_keep_indices_short_series_untouched() -> None:
    equity, drawdown = walk(50)
    np.testing.assert_array_equal(keep_indices(equity, drawdown, 1000), np.arange(50))


def test_chart_response_shapes_and_benchmark() -> None:
    equity, drawdown = walk(3000, seed=3)
    payload = {
        "dates": [f"d{i}" for i in range(3000)],
        "equity": equity.tolist(),
        "benchmark": (equity * 0.9).tolist(),
        "drawdown": drawdown.tolist(),
        "monthly_returns": {"2020-01": 0.01},
        "benchmark_symbol": "SPY",
    }
    out = chart_response(payload, 200)
    assert len(out["equity_curve"]) == len(out["drawdown_series"]) <= 200
    first = out["equity_curve"][0]
    assert first == {"date": "d0", "equity": equity[0], "benchmark": equity[0] * 0.9}
    assert min(p["drawdown"] for p in out["drawdown_series"]) == drawdown.min()
    assert out["benchmark_symbol"] == "SPY"
