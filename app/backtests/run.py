"""The backtest job kind's run (registered in :mod:`app.backtests.kind`): the engine
adapter the job runner calls on a worker.

Loads the dataset (process-cached), runs the engine with the runner's progress and
cancel callbacks, derives positions, the analysis and the book
(:mod:`app.backtests.results`), and hands back the metrics plus a ``save`` that
writes the lots, the chart series, the positions and the stored results in the
transaction that completes the job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.backtests import cost, repository, results, results_repository
from app.backtests.charts import series_payload
from app.backtests.coverage import data_coverage
from app.backtests.schemas import BacktestRequest
from app.core.config import Settings
from app.data.membership import coverage_for, membership_mask_for
from app.data.store import load_dataset
from app.engine import jit, path_stats
from app.engine.analysis import warm_imports as warm_analysis_imports
from app.engine.backtest import BacktestResult, run_backtest
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.errors import CancelledError, EngineError
from app.jobs.registry import (
    Completion,
    JobCancelled,
    JobFailed,
    Reporter,
    RunContext,
)


def run(context: RunContext) -> Completion:
    """Cancel checks between every phase (loading, membership, the engine's own
    setup steps and simulation, coverage and results), so a cancel or the time
    limit takes effect within about a second whatever the run is doing."""
    reporter = context.reporter
    try:
        config = BacktestRequest.model_validate(context.config).to_config()
        _checkpoint(reporter)
        data = load_dataset(
            config.dataset, datasets_dir=context.settings.resolved_datasets_dir
        )
        _checkpoint(reporter)
        result, coverage, stored = compute(config, data, context.job_id, reporter)
    except CancelledError:
        raise JobCancelled from None
    except (EngineError, ValueError) as exc:
        raise JobFailed(str(exc)) from exc

    async def save(session: AsyncSession, job_id: uuid.UUID) -> None:
        await save_results(session, job_id, result, stored)

    return Completion(
        metrics={**stored.metrics, "data_coverage": coverage},
        current_date=last_date(result),
        work_done=len(result.fills),
        save=save,
    )


def compute(
    config: BacktestConfig, data: MarketData, job_id: uuid.UUID, reporter: Reporter
) -> tuple[BacktestResult, dict[str, Any], results.Stored]:
    """Everything after loading: the plan (:mod:`app.backtests.cost`), membership,
    the engine with its phases, coverage and the stored results. Shared with the
    progress calibration and benchmark scripts, so they time what a job runs."""
    reporter.plan(cost.plan(cost.workload(config, data)))
    reporter.phase("window")
    membership = membership_mask_for(data) if config.universe == "sp500_pit" else None
    _checkpoint(reporter)
    result = run_backtest(
        config,
        data,
        membership=membership,
        on_progress=reporter.progress,
        should_cancel=reporter.cancelled,
        on_phase=reporter.phase,
    )
    # Its fills and lots known, the analysis and saving are predicted again.
    reporter.plan(cost.refined_plan(cost.outcome(result)))
    reporter.phase("analysis")
    coverage = data_coverage(config, data)
    _checkpoint(reporter)
    stored = results.build(result, data, job_id)
    made = cost.outcome(result)
    reporter.plan(cost.saving_plan(made.lots, len(stored.positions), made.sessions))
    _checkpoint(reporter)
    return result, coverage, stored


async def save_results(
    session: AsyncSession,
    job_id: uuid.UUID,
    result: BacktestResult,
    stored: results.Stored,
) -> None:
    """The lots, chart series, positions and stored results of a completing run
    (the runner's "saving" phase; the calibration times it too)."""
    await repository.bulk_insert(session, job_id, result.trade_records())
    await repository.save_series(session, job_id, series_payload(result))
    await results_repository.save(session, job_id, stored)


def _checkpoint(reporter: Reporter) -> None:
    if reporter.cancelled():
        raise JobCancelled


def last_date(result: BacktestResult) -> dt.date:
    day: dt.date = result.dates[-1].astype("datetime64[D]").item()
    return day


def warm_up(settings: Settings) -> None:
    """Compile the engine's kernels (or load them from numba's on-disk cache), import
    what the analysis imports lazily (arch, scipy), and load
    the bundled dataset (its derived arrays and membership mask) before a worker
    forks, so no job pays for either."""
    jit.warm_up()
    path_stats.warm_up()  # the analysis's compiled bootstrap pass
    warm_analysis_imports()
    data = load_dataset(datasets_dir=settings.resolved_datasets_dir)
    data.precompute()
    membership_mask_for(data)
    coverage_for(data)  # builds the running totals every result's coverage reads
