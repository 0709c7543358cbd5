"""Running one backtest job on a worker (the Celery task is a thin adapter around this).

Idempotent by construction, so ``acks_late`` redelivery and retries are safe:

1. **Claim** with a guarded update: ``pending → running`` under the delivery's claim
   token (the Celery task id), or re-claim a ``running`` row that already carries this
   token (the broker re-delivered the message because that execution died). Any other
   state means someone else owns the job, or it is finished or cancelled: do nothing.
   Each claim counts an attempt; past ``MAX_ATTEMPTS`` the job fails with a clear error.
2. **Run** the engine with a progress callback (throttled pub/sub messages, a DB
   heartbeat) and a cancel check (the bus flag, or the guarded heartbeat write failing
   because the row was cancelled or taken over). Both are best effort against
   outages: progress is lossy by design and a cancel is also seen through the guarded
   heartbeat, so Redis down does not stop a job, and a heartbeat that cannot reach the
   database is skipped (the guarded save decides in the end; if it cannot reach the
   database either, the task is retried and the job re-claimed).
3. **Save** status, metrics, trades and chart series in **one transaction**, guarded on
   ``running`` + claim token: a cancelled or re-claimed job never gets results, and a
   completed job always has all of them.

Database access uses the async repositories through a per-thread event loop
(``asyncio.Runner``), so the same code serves Celery's prefork children and the
in-process worker threads of embedded mode.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.errors import unavailable_dependency
from app.core.progress import Message, ProgressBus, get_bus
from app.db.models import Backtest, BacktestStatus
from app.db.repositories import backtests as backtests_repo
from app.db.repositories import trades as trades_repo
from app.db.session import create_engine, create_sessionmaker
from app.engine.backtest import BacktestResult, run_backtest
from app.engine.errors import CancelledError, EngineError
from app.engine.store import load_dataset
from app.schemas.backtest import BacktestRequest
from app.services.charts import series_payload

log = structlog.get_logger(__name__)
T = TypeVar("T")
# After a failed bus call the worker leaves Redis alone this long: each call during an
# outage would otherwise wait for redis-py's connection retries.
BUS_RETRY_SECONDS = 2.0

_override: Settings | None = None
_local = threading.local()


def configure(settings: Settings) -> None:
    """Use ``settings`` for jobs run in this process (embedded mode: the API's)."""
    global _override  # noqa: PLW0603 - process-wide worker configuration
    _override = settings


def worker_settings() -> Settings:
    return _override or get_settings()


class _Db:
    """An event loop and a session factory owned by one worker thread."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self.runner = asyncio.Runner()
        self.engine = create_engine(settings)
        self.sessionmaker = create_sessionmaker(self.engine)

    def run(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self.sessionmaker() as session:
                return await fn(session)

        return self.runner.run(go())


def _db(settings: Settings) -> _Db:
    db: _Db | None = getattr(_local, "db", None)
    if db is None or db.url != settings.resolved_database_url:
        db = _local.db = _Db(settings)
    return db


class _BestEffortBus:
    """The progress bus as a running job uses it: a Redis outage costs progress
    messages (the WebSocket relay re-reads the job row) and the fast cancel path (the
    guarded heartbeat still notices a cancel), never the job itself."""

    def __init__(self, bus: ProgressBus) -> None:
        self.bus = bus
        self.skip_until = 0.0

    def _down(self, exc: Exception) -> None:
        if time.monotonic() >= self.skip_until:
            log.warning("backtest.bus_unavailable", error_type=type(exc).__name__)
        self.skip_until = time.monotonic() + BUS_RETRY_SECONDS

    def publish(self, task_id: str, message: Message) -> None:
        if time.monotonic() < self.skip_until:
            return
        try:
            self.bus.publish(task_id, message)
        except (RedisError, OSError) as exc:
            self._down(exc)

    def cancel_requested(self, task_id: str) -> bool:
        if time.monotonic() < self.skip_until:
            return False
        try:
            return self.bus.cancel_requested(task_id)
        except (RedisError, OSError) as exc:
            self._down(exc)
            return False


def _bus(settings: Settings) -> _BestEffortBus:
    bus: _BestEffortBus | None = getattr(_local, "bus", None)
    if bus is None or bus.bus is not get_bus(settings.redis_url):
        bus = _local.bus = _BestEffortBus(get_bus(settings.redis_url))
    return bus


def run_in_worker_db(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``fn(session)`` on this thread's worker database loop (for other tasks)."""
    return _db(worker_settings()).run(fn)


def execute(backtest_id: str, *, claim_token: str) -> str:
    """Run job ``backtest_id`` under ``claim_token``; returns the outcome."""
    settings = worker_settings()
    db, bus = _db(settings), _bus(settings)
    job_id = uuid.UUID(backtest_id)
    bound = log.bind(task_id=backtest_id, claim=claim_token)
    row = db.run(lambda s: _claim(s, job_id, claim_token, settings.max_attempts))
    if row is None:
        bound.info("backtest.skipped")
        return "skipped"
    if row.status == BacktestStatus.FAILED.value:
        bus.publish(backtest_id, _terminal("failed", row, message=row.error))
        bound.warning("backtest.attempts_exhausted", attempts=row.attempts)
        return "failed"
    bound = bound.bind(user_id=str(row.user_id), attempt=row.attempts)
    bound.info("backtest.started")
    reporter = _Reporter(db, bus, settings, job_id, claim_token)
    reporter.publish(0.0, None, 0, force=True)
    try:
        config = BacktestRequest.model_validate(row.config).to_config()
        data = load_dataset(config.dataset, datasets_dir=settings.resolved_datasets_dir)
        result = run_backtest(
            config,
            data,
            on_progress=reporter.progress,
            should_cancel=reporter.cancelled,
        )
    except CancelledError:
        return _stopped(db, bus, row, claim_token, bound=bound)
    except (EngineError, ValueError) as exc:
        return _fail(db, bus, row, claim_token, str(exc), bound=bound)
    saved = db.run(lambda s: _save(s, job_id, claim_token, result))
    if not saved:  # cancelled (or taken over) while saving: nothing was written
        bound.info("backtest.discarded")
        return "discarded"
    bus.publish(backtest_id, _completed(result))
    bound.info("backtest.completed", trades=len(result.trades))
    return "completed"


def fail_job(backtest_id: str, *, claim_token: str, reason: str) -> None:
    """Fail a job this delivery holds: ``reason`` "timeout" (the soft time limit hit)
    or "internal" (an unexpected error, logged with its traceback by the caller)."""
    settings = worker_settings()
    db, bus = _db(settings), _bus(settings)
    row = db.run(lambda s: backtests_repo.get(s, uuid.UUID(backtest_id)))
    if row is None:
        return
    if reason == "timeout":
        message = (
            f"The backtest exceeded the time limit of "
            f"{settings.task_soft_time_limit_seconds} s."
        )
    else:
        message = "Internal error while running the backtest; it has been logged."
    _fail(db, bus, row, claim_token, message, bound=log.bind(task_id=backtest_id))


def _stopped(
    db: _Db, bus: _BestEffortBus, row: Backtest, claim_token: str, *, bound: Any
) -> str:
    """The run stopped at a cancel check. Cancelled (by us now, or by the API): tell
    the watchers the worker has stopped. Taken over (the sweeper re-queued it after a
    stale heartbeat): stay quiet, a "cancelled" would end the watchers' sockets of a
    job that is going to run again."""
    if not db.run(lambda s: _cancel_if_ours(s, row.id, claim_token)):
        bound.info("backtest.released")
        return "discarded"
    bus.publish(str(row.id), _terminal("cancelled", row, message="Backtest cancelled."))
    bound.info("backtest.cancelled")
    return "cancelled"


async def _cancel_if_ours(s: AsyncSession, job_id: uuid.UUID, token: str) -> bool:
    """Cancel the row if this delivery still holds it; True if it ends cancelled."""
    if await _commit(backtests_repo.mark_cancelled, s, job_id, token):
        return True
    current = await backtests_repo.get(s, job_id)
    return current is not None and current.status == BacktestStatus.CANCELLED.value


def _fail(
    db: _Db,
    bus: _BestEffortBus,
    row: Backtest,
    claim_token: str,
    message: str,
    *,
    bound: Any,
) -> str:
    async def fail(s: AsyncSession) -> bool:
        ok = await backtests_repo.mark_failed(
            s, row.id, error=message, claim_token=claim_token
        )
        await s.commit()
        return ok

    if db.run(fail):
        bus.publish(str(row.id), _terminal("failed", row, message=message))
    bound.info("backtest.failed", error=message)
    return "failed"


async def _commit(
    op: Callable[..., Awaitable[bool]], s: AsyncSession, job_id: uuid.UUID, token: str
) -> bool:
    ok = await op(s, job_id, claim_token=token)
    await s.commit()
    return ok


async def _claim(
    s: AsyncSession, job_id: uuid.UUID, token: str, max_attempts: int
) -> Backtest | None:
    row = await backtests_repo.get(s, job_id)
    if row is None:
        return None
    if row.status == BacktestStatus.PENDING.value:
        ok = await backtests_repo.mark_running(s, job_id, claim_token=token)
    elif row.status == BacktestStatus.RUNNING.value and row.claim_token == token:
        ok = await backtests_repo.reclaim(s, job_id, claim_token=token)
    else:
        return None
    if not ok:
        await s.rollback()
        return None
    await s.commit()
    await s.refresh(row)
    if row.attempts > max_attempts:
        error = (
            f"The backtest stopped its worker {row.attempts - 1} times (crash or "
            f"time limit); giving up after {max_attempts} attempts."
        )
        await backtests_repo.mark_failed(s, job_id, error=error, claim_token=token)
        await s.commit()
        await s.refresh(row)
    return row


async def _save(
    s: AsyncSession, job_id: uuid.UUID, token: str, result: BacktestResult
) -> bool:
    metrics = result.metrics
    ok = await backtests_repo.update_progress(
        s,
        job_id,
        claim_token=token,
        progress=100.0,
        current_date=_last_date(result),
        trades_executed=len(result.fills),
    ) and await backtests_repo.mark_completed(
        s,
        job_id,
        claim_token=token,
        metrics=metrics,
        total_return=metrics.get("total_return"),
        sharpe_ratio=metrics.get("sharpe_ratio"),
    )
    if not ok:
        await s.rollback()
        return False
    await trades_repo.bulk_insert(s, job_id, result.trade_records())
    await backtests_repo.save_series(s, job_id, series_payload(result))
    await s.commit()
    return True


def _last_date(result: BacktestResult) -> dt.date:
    day: dt.date = result.dates[-1].astype("datetime64[D]").item()
    return day


class _Reporter:
    """Throttled progress messages, DB heartbeat and the cancel check of one run."""

    def __init__(
        self,
        db: _Db,
        bus: _BestEffortBus,
        settings: Settings,
        job_id: uuid.UUID,
        token: str,
    ) -> None:
        self.db, self.bus, self.settings = db, bus, settings
        self.job_id, self.token = job_id, token
        self.started = time.monotonic()
        self.last_publish = self.last_beat = -1e9
        self.lost = False  # the row stopped being ours (cancelled, swept, taken over)

    def progress(self, fraction: float, day: dt.date, fills: int) -> None:
        self.publish(fraction, day, fills)
        now = time.monotonic()
        if now - self.last_beat >= min(self.settings.heartbeat_interval_seconds, 0.5):
            self.last_beat = now
            self.heartbeat(fraction, day, fills)
        if self.settings.engine_chunk_delay_seconds:
            time.sleep(self.settings.engine_chunk_delay_seconds)

    def heartbeat(self, fraction: float, day: dt.date, fills: int) -> None:
        """Write progress and heartbeat; ``lost`` once the row is no longer ours. A
        database outage skips the beat: if it outlasts the stale-heartbeat limit the
        sweeper takes the job back and the next beat finds the row lost."""
        try:
            ours = self.db.run(lambda s: self._beat(s, 100.0 * fraction, day, fills))
        except Exception as exc:
            if unavailable_dependency(exc) != "database":
                raise
            log.warning(
                "backtest.heartbeat_failed",
                task_id=str(self.job_id),
                error_type=type(exc).__name__,
            )
            return
        self.lost = not ours

    async def _beat(
        self, s: AsyncSession, pct: float, day: dt.date, fills: int
    ) -> bool:
        ok = await backtests_repo.update_progress(
            s,
            self.job_id,
            claim_token=self.token,
            progress=min(pct, 99.9),
            current_date=day,
            trades_executed=fills,
        )
        await s.commit()
        return ok

    def publish(
        self, fraction: float, day: dt.date | None, fills: int, *, force: bool = False
    ) -> None:
        now = time.monotonic()
        if (
            not force
            and now - self.last_publish < self.settings.progress_interval_seconds
        ):
            return
        self.last_publish = now
        elapsed = now - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        self.bus.publish(
            str(self.job_id),
            {
                "status": "running",
                "progress": round(min(100.0 * fraction, 99.9), 2),
                "current_date": day.isoformat() if day else None,
                "eta_seconds": None if eta is None else round(eta, 3),
                "trades_executed": fills,
                "message": None,
            },
        )

    def cancelled(self) -> bool:
        return self.lost or self.bus.cancel_requested(str(self.job_id))


def _terminal(status: str, row: Backtest, *, message: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "progress": row.progress,
        "current_date": row.current_date.isoformat() if row.current_date else None,
        "eta_seconds": 0.0,
        "trades_executed": row.trades_executed,
        "message": message,
    }


def _completed(result: BacktestResult) -> dict[str, Any]:
    return {
        "status": "completed",
        "progress": 100.0,
        "current_date": _last_date(result).isoformat(),
        "eta_seconds": 0.0,
        "trades_executed": len(result.fills),
        "message": None,
    }
