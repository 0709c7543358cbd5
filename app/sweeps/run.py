"""The sweep job kind: the worker side.

``run(context)`` evaluates the sweep's valid combinations in index order and writes
each finished row (params, metrics, PSR, daily returns) in batches as it goes, so a
cancelled sweep keeps what it finished and a re-claimed one (after a worker crash)
resumes where the rows stop. When every row is there it computes the overfitting
diagnostics over the ``(T, N)`` returns and completes with the best row's metrics
as the job's headline.

:func:`evaluate` is the one place that runs backtests: the engine's batch entry
point (:func:`app.engine.batch.run_sweep`: each factor matrix once per distinct
factor, no trade ledger), whose rows equal ``run_backtest``'s to 1e-9.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.data.store import load_dataset
from app.engine import jit
from app.engine.backtest import validate_config
from app.engine.batch import run_sweep
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.errors import CancelledError, EngineError, InvalidInputError
from app.engine.overfitting import overfitting_report, probabilistic_sharpe
from app.jobs.registry import (
    Completion,
    JobCancelled,
    JobFailed,
    JobKind,
    RunContext,
    register,
)
from app.jobs.runner import run_in_worker_db
from app.sweeps import grid, repository, walk_forward
from app.sweeps.schemas import LOWER_IS_BETTER

FloatArray = npt.NDArray[np.float64]
KIND_NAME = "sweep"
# Rows are written at least this often (and the cancel flag polled between rows).
FLUSH_SECONDS = 0.5
# Combinations per call of the engine's batch entry point.
EVALUATE_BATCH = 64
# The cancel flag is read from Redis at most this often inside one backtest.
CANCEL_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Evaluated:
    """One combination's outcome: the backtest metric set and the daily equity
    ``(n_days,)`` over the sweep's dates."""

    metrics: dict[str, Any]
    equity: FloatArray


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
            yield Evaluated(metrics=row.metrics, equity=row.equity)


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
    """``equity[t] / equity[t-1] - 1``: T = n_days - 1 simple returns."""
    out: FloatArray = equity[1:] / equity[:-1] - 1.0
    return out


def row_values(
    index: int,
    params: Mapping[str, Any],
    evaluated: Evaluated,
    objective: str,
) -> dict[str, Any]:
    returns = daily_returns(evaluated.equity)
    psr = probabilistic_sharpe(returns[:, None])[0] if returns.size else None
    value = evaluated.metrics.get(objective)
    return {
        "index": index,
        "params": dict(params),
        "metrics": evaluated.metrics,
        "objective": value if score(value, objective) is not None else None,
        "psr": psr,
        "returns": returns.astype("<f8").tobytes(),
    }


class _CancelCheck:
    """The reporter's cancel check, at most every CANCEL_POLL_SECONDS."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.check, self.last, self.seen = check, -1e9, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.seen and now - self.last >= CANCEL_POLL_SECONDS:
            self.last, self.seen = now, self.check()
        return self.seen


def run(context: RunContext) -> Completion:
    config = context.config
    combos = grid.valid_combinations(config)
    base = grid.engine_config(config["base"])
    try:
        data = load_dataset(
            base.dataset, datasets_dir=context.settings.resolved_datasets_dir
        )
        start_row, end_row = validate_config(base, data)
    except (EngineError, ValueError) as exc:
        raise JobFailed(str(exc)) from exc
    dates = data.dates[start_row : end_row + 1].astype("datetime64[D]")
    day_bytes = dates.astype(np.int64).astype("<i4").tobytes()
    job_id = context.job_id
    run_in_worker_db(lambda s: _commit(repository.save_dates(s, job_id, day_bytes), s))
    done = run_in_worker_db(lambda s: repository.done_indexes(s, job_id))
    _run_rows(context, combos, data, done)
    walk = _walk_forward(context, combos, data)
    return _complete(context, last_day=dates[-1].item(), walk=walk)


def _run_rows(
    context: RunContext,
    combos: Sequence[Mapping[str, Any]],
    data: MarketData,
    done: set[int],
) -> None:
    """Evaluate the combinations not yet stored, writing rows every FLUSH_SECONDS."""
    config, reporter = context.config, context.reporter
    objective = config["objective"]
    todo = [i for i in range(len(combos)) if i not in done]
    configs = [grid.engine_config(grid.apply(config["base"], combos[i])) for i in todo]
    cancel = _CancelCheck(reporter.cancelled)
    pending: list[dict[str, Any]] = []
    finished, last_flush = len(done), time.monotonic()

    def flush() -> None:
        rows = list(pending)
        pending.clear()
        run_in_worker_db(lambda s: _commit(repository.insert_rows(s, rows), s))

    try:
        results = evaluate(configs, data, should_cancel=cancel)
        for index, evaluated in zip(todo, results, strict=False):
            row = row_values(index, combos[index], evaluated, objective)
            pending.append({"sweep_id": context.job_id, **row})
            finished += 1
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
                last_flush = time.monotonic()
            reporter.progress(
                finished / _work_units(config, len(combos)),
                None,
                finished,
                extra={"combinations_done": finished, "combinations": len(combos)},
            )
            if cancel():
                raise CancelledError("sweep cancelled")
    except CancelledError:
        flush()  # finished rows are kept
        raise JobCancelled from None
    except InvalidInputError as exc:
        raise JobFailed(str(exc)) from exc
    flush()


def _work_units(config: Mapping[str, Any], n: int) -> int:
    """Combinations run in all: the full span, then per walk-forward window every
    combination on the train span and the chosen one on the test span."""
    spans = config.get("walk_forward_windows") or []
    return max(n + len(spans) * (n + 1), 1)


def _walk_forward(
    context: RunContext, combos: Sequence[Mapping[str, Any]], data: MarketData
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    config, reporter = context.config, context.reporter
    stored = config.get("walk_forward_windows")
    if not stored:
        return None
    spans = [tuple(dt.date.fromisoformat(d) for d in w) for w in stored]
    configs = [grid.engine_config(grid.apply(config["base"], c)) for c in combos]
    cancel = _CancelCheck(reporter.cancelled)
    units, n = _work_units(config, len(combos)), len(combos)

    def on_window(k: int) -> None:
        done = n + k * (n + 1)
        reporter.progress(done / units, None, n, extra={"walk_forward_windows": k})
        if cancel():
            raise CancelledError("sweep cancelled")

    try:
        return walk_forward.run(
            configs,
            [dict(c) for c in combos],
            data,
            spans=spans,  # type: ignore[arg-type]
            objective=config["objective"],
            score=score,
            evaluate=lambda cs: [
                e.metrics for e in evaluate(cs, data, should_cancel=cancel)
            ],
            should_cancel=cancel,
            on_window=on_window,
        )
    except CancelledError:
        raise JobCancelled from None
    except InvalidInputError as exc:
        raise JobFailed(f"walk-forward: {exc.message}") from exc


def _complete(
    context: RunContext,
    *,
    last_day: dt.date,
    walk: tuple[dict[str, Any], dict[str, Any]] | None,
) -> Completion:
    config, job_id = context.config, context.job_id
    objective = config["objective"]
    indexed = run_in_worker_db(lambda s: repository.all_returns(s, job_id))
    returns = np.column_stack([np.frombuffer(b, dtype="<f8") for _, b in indexed])
    best = run_in_worker_db(
        lambda s: repository.best(
            s, job_id, higher_is_better=objective not in LOWER_IS_BETTER
        )
    )
    metrics_of_best = None if best is None else dict(best.metrics)
    overfitting = diagnostics(
        returns,
        objectives=run_in_worker_db(lambda s: _objectives(s, job_id, len(indexed))),
        objective=objective,
        blocks=config["overfitting_blocks"],
    )

    async def save(session: AsyncSession, saved_id: uuid.UUID) -> None:
        await repository.save_results(
            session,
            saved_id,
            overfitting=overfitting,
            walk_forward=None if walk is None else walk[0],
            chart=None if walk is None else walk[1],
        )

    return Completion(
        metrics=metrics_of_best,
        current_date=last_day,
        work_done=len(indexed),
        save=save,
    )


async def _objectives(s: AsyncSession, job_id: uuid.UUID, n: int) -> list[Any]:
    rows, _ = await repository.page(s, job_id, sort="index", limit=max(n, 1), offset=0)
    return [r.objective for r in rows]


def diagnostics(
    returns: FloatArray,
    *,
    objectives: Sequence[Any],
    objective: str,
    blocks: int,
) -> dict[str, Any]:
    """The overfitting block: PBO, λ median, degradation, DSR, SR0 of the
    ``(T, N)`` returns, with the best column chosen by ``objective``; every number
    null with a ``reason`` when it cannot be computed (N < 2, T < blocks, ...)."""
    scores = [score(v, objective) for v in objectives]
    keys = ("pbo", "lambda_median", "degradation", "dsr", "sr0", "best_index")
    empty: dict[str, Any] = dict.fromkeys(keys)
    empty.update(n_trials=returns.shape[1], blocks=blocks, verdict=None)
    if returns.shape[1] < 2:
        n = returns.shape[1]
        return {**empty, "reason": f"needs at least 2 combinations, got {n}"}
    try:
        report = overfitting_report(
            returns,
            blocks=blocks,
            objective=np.array([np.nan if s is None else s for s in scores]),
        )
    except InvalidInputError as exc:
        return {**empty, "reason": exc.message}
    report.pop("psr", None)  # per row in the results
    return report


async def _commit(awaitable: Any, session: AsyncSession) -> Any:
    result = await awaitable
    await session.commit()
    return result


def warm_up(settings: Settings) -> None:
    """Load the bundled dataset and compile the engine's kernels before a worker
    forks (the children share both)."""
    load_dataset(datasets_dir=settings.resolved_datasets_dir).precompute()
    jit.warm_up()


SWEEP = register(JobKind(name=KIND_NAME, label="Sweep", run=run, warm_up=warm_up))
