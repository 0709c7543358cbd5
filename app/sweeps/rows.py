"""One sweep row: evaluating combinations and turning each into its stored row.

:func:`evaluate` is the one place that runs backtests: the engine's batch entry
point (:func:`app.engine.batch.run_sweep`: each factor matrix once per distinct
factor, no trade ledger), whose rows equal ``run_backtest``'s to 1e-9.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.db.models import SORTABLE_METRICS
from app.engine.batch import run_sweep
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.overfitting import probabilistic_sharpe
from app.sweeps.schemas import LOWER_IS_BETTER

FloatArray = npt.NDArray[np.float64]
# Combinations per call of the engine's batch entry point.
EVALUATE_BATCH = 64
# The cancel flag is read at most this often inside one backtest.
CANCEL_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Evaluated:
    """One combination's outcome: the backtest metric set, the daily equity
    ``(n_days,)`` over the sweep's dates and the daily returns ``(n_days - 1,)``.

    ``returns`` are the engine's (:attr:`app.engine.batch.SweepRow.returns`):
    simple returns of the equity, or with cash flows the time-weighted ones, which
    leave the flows out and are 0 once a withdrawal has emptied the portfolio
    (equity 0). None: the simple returns of ``equity`` (:func:`daily_returns`)."""

    metrics: dict[str, Any]
    equity: FloatArray
    returns: FloatArray | None = None

    def daily_returns(self) -> FloatArray:
        """The row's daily returns (see the class docstring)."""
        if self.returns is not None:
            return self.returns
        return daily_returns(self.equity)


def evaluate(
    configs: Sequence[BacktestConfig],
    data: MarketData,
    *,
    should_cancel: Callable[[], bool],
) -> Iterator[Evaluated]:
    """Metrics and equity of each config, in order (raises CancelledError).

    The engine's batch entry point runs ``EVALUATE_BATCH`` configs at a time (each
    factor matrix computed once per distinct factor within a batch, no trade
    ledger); batches keep memory bounded and let rows stream to the database."""
    for lo in range(0, len(configs), EVALUATE_BATCH):
        batch = configs[lo : lo + EVALUATE_BATCH]
        overrides = [_as_overrides(config) for config in batch]
        result = run_sweep(batch[0], overrides, data, should_cancel=should_cancel)
        for row in result.rows:
            yield Evaluated(metrics=row.metrics, equity=row.equity, returns=row.returns)


def _as_overrides(config: BacktestConfig) -> dict[str, Any]:
    """Every field of ``config`` as an override of the batch's first config (the
    combinations of one sweep share their strategy parameter names)."""
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name != "dataset"
    }


def score(value: Any, objective: str) -> float | None:
    """The objective as "higher is better" (None when the metric is undefined)."""
    if not isinstance(value, int | float) or not np.isfinite(value):
        return None
    return -float(value) if objective in LOWER_IS_BETTER else float(value)


def daily_returns(equity: FloatArray) -> FloatArray:
    """``equity[t] / equity[t-1] - 1``: T = n_days - 1 simple returns (undefined
    where the equity is 0: a row with cash flows uses the engine's time-weighted
    returns instead, :attr:`Evaluated.returns`)."""
    out: FloatArray = equity[1:] / equity[:-1] - 1.0
    return out


def row_values(
    index: int,
    params: Mapping[str, Any],
    evaluated: Evaluated,
    objective: str,
) -> dict[str, Any]:
    returns = evaluated.daily_returns()
    psr = probabilistic_sharpe(returns[:, None])[0] if returns.size else None
    value = evaluated.metrics.get(objective)
    return {
        "index": index,
        "params": dict(params),
        "metrics": evaluated.metrics,
        "objective": value if score(value, objective) is not None else None,
        "psr": psr,
        **{f"m_{m}": finite(evaluated.metrics.get(m)) for m in SORTABLE_METRICS},
        "returns": returns.astype("<f8").tobytes(),
    }


def finite(value: Any) -> float | None:
    """A metric as a sortable number: None when undefined (None, NaN, inf, not a
    number), so it sorts last in both directions."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if np.isfinite(number) else None


class CancelCheck:
    """The reporter's cancel check, at most every CANCEL_POLL_SECONDS."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.check, self.last, self.seen = check, -1e9, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.seen and now - self.last >= CANCEL_POLL_SECONDS:
            self.last, self.seen = now, self.check()
        return self.seen
