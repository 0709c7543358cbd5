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

from sqlalchemy.ext.asyncio import AsyncSession

from app.backtests import repository, results, results_repository
from app.backtests.charts import series_payload
from app.backtests.coverage import data_coverage
from app.backtests.schemas import BacktestRequest
from app.core.config import Settings
from app.data.membership import coverage_for, membership_mask_for
from app.data.store import load_dataset
from app.engine import jit, path_stats
from app.engine.analysis import warm_imports as warm_analysis_imports
from app.engine.backtest import BacktestResult, run_backtest
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
        membership = (
            membership_mask_for(data) if config.universe == "sp500_pit" else None
        )
        _checkpoint(reporter)
        result = run_backtest(
            config,
            data,
            membership=membership,
            on_progress=reporter.progress,
            should_cancel=reporter.cancelled,
        )
        coverage = data_coverage(config, data)
        _checkpoint(reporter)
        stored = results.build(result, data, context.job_id)
        _checkpoint(reporter)
    except CancelledError:
        raise JobCancelled from None
    except (EngineError, ValueError) as exc:
        raise JobFailed(str(exc)) from exc

    async def save(session: AsyncSession, job_id: uuid.UUID) -> None:
        await repository.bulk_insert(session, job_id, result.trade_records())
        await repository.save_series(session, job_id, series_payload(result))
        await results_repository.save(session, job_id, stored)

    return Completion(
        metrics={**stored.metrics, "data_coverage": coverage},
        current_date=last_date(result),
        work_done=len(result.fills),
        save=save,
    )


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
