"""Running one job of any kind on a worker (the Celery task is a thin adapter around
this); the kind's own work is ``JobKind.run`` (:mod:`app.jobs.registry`).

Idempotent by construction, so ``acks_late`` redelivery and retries are safe:

1. **Claim** with a guarded update: ``pending → running`` under the delivery's claim
   token (the Celery task id), or re-claim a ``running`` row that already carries this
   token (the broker re-delivered the message because that execution died). Any other
   state means someone else owns the job, or it is finished or cancelled: do nothing.
   Each claim counts an attempt (informational); a job that keeps stopping its worker
   is caught before the claim by the delivery counter (:mod:`app.jobs.deadletters`).
2. **Run** the kind's ``run`` with a progress callback (throttled pub/sub messages, a DB
   heartbeat) and a cancel check (the bus flag, or the guarded heartbeat write failing
   because the row was cancelled or taken over). Both are best effort against
   outages: progress is lossy by design and a cancel is also seen through the guarded
   heartbeat, so Redis down does not stop a job, and a heartbeat that cannot reach the
   database is skipped (the guarded save decides in the end; if it cannot reach the
   database either, the task is retried and the job re-claimed).
3. **Save** status, headline metrics and the kind's own results (``Completion.save``:
   a backtest's trades and chart series) in **one transaction**, guarded on
   ``running`` + claim token: a cancelled or re-claimed job never gets results, and a
   completed job always has all of them.

Database access uses the async repositories through a per-thread event loop
(``asyncio.Runner``), so the same code serves Celery's prefork children and the
in-process worker threads of embedded mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.outages import unavailable_dependency
from app.db.models import Job, JobStatus
from app.db.session import create_engine, create_sessionmaker
from app.jobs import (
    deadletter_repository,
    deadletters,
    limits,
    notify,
    registry,
    scheduler,
)
from app.jobs import repository as jobs_repo
from app.jobs.eta import Phase, PhaseProgress
from app.jobs.progress import Message, ProgressBus, ProgressMessage, get_bus
from app.jobs.registry import Completion, JobCancelled, JobFailed, RunContext

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
            log.warning("job.bus_unavailable", error_type=type(exc).__name__)
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


def execute(job_id_text: str, *, claim_token: str) -> str:
    """Run job ``job_id_text`` under ``claim_token``; returns the outcome."""
    settings = worker_settings()
    db, bus = _db(settings), _bus(settings)
    job_id = uuid.UUID(job_id_text)
    bound = log.bind(task_id=job_id_text, claim=claim_token)
    claimed = db.run(lambda s: _claim(s, job_id, claim_token, settings))
    if claimed is None:
        bound.info("job.skipped")
        return "skipped"
    row, job_limits = claimed
    kind = registry.get(row.kind)
    bound = bound.bind(kind=row.kind, user_id=str(row.user_id), attempt=row.attempts)
    bound.info("job.started", soft_time_limit=job_limits.soft_seconds)
    dispatch_next()  # claimed: room in the broker queue for the next queued job
    reporter = _Reporter(db, bus, settings, job_id, claim_token)
    reporter.deadline = reporter.started + job_limits.soft_seconds
    reporter.publish(force=True)
    context = RunContext(
        job_id=job_id,
        config=row.config,
        name=row.name,
        settings=settings,
        reporter=reporter,
    )
    _PULSE.add(reporter)
    try:
        completion = kind.run(context)
        reporter.phase("saving")
        saved = db.run(lambda s: _save(s, job_id, claim_token, completion, settings))
    except JobCancelled:
        reached = 100.0 * reporter.reached[0]
        if reporter.timed_out:
            message = timeout_error(kind.label, job_limits.soft_seconds)
            return _fail(
                db, bus, row, claim_token, message, "timeout", bound=bound,
                progress=reached,
            )  # fmt: skip
        return _stopped(
            db, bus, row, claim_token, label=kind.label, bound=bound, progress=reached
        )
    except JobFailed as exc:
        return _fail(
            db, bus, row, claim_token, str(exc), "job", bound=bound,
            progress=100.0 * reporter.reached[0],
        )  # fmt: skip
    finally:
        _PULSE.remove(reporter)
    if saved is None:  # cancelled (or taken over) while saving: nothing was written
        bound.info("job.discarded")
        return "discarded"
    done = ProgressMessage.completed(
        current_date=completion.current_date, work_done=completion.work_done
    )
    bus.publish(job_id_text, done.frame())
    bound.info("job.completed", work_done=completion.work_done)
    _notify(db, job_id, saved)
    return "completed"


def dispatch_next() -> None:
    """Run the queue's dispatcher (``app.jobs.scheduler``) after a slot changed
    hands (a claim, a finished run); never fails the job. It does not wait for the
    dispatcher lock (whoever holds it looks again after releasing it): the slot
    claims its next job or starts its run without queueing behind submissions."""
    settings = worker_settings()
    try:
        _db(settings).run(
            lambda s: scheduler.dispatch_quietly(
                s, settings=settings, enqueue=limits.send, wait=False
            )
        )
    except Exception:
        log.exception("queue.dispatch_failed")


def fail_job(job_id_text: str, *, claim_token: str, reason: str) -> None:
    """Fail a job this delivery holds: ``reason`` "timeout" (the soft time limit hit)
    or "internal" (an unexpected error, logged with its traceback by the caller)."""
    settings = worker_settings()
    db, bus = _db(settings), _bus(settings)

    async def load(s: AsyncSession) -> tuple[Job, limits.TimeLimits] | None:
        row = await jobs_repo.get(s, uuid.UUID(job_id_text))
        return None if row is None else (row, await limits.limits_of(s, row, settings))

    loaded = db.run(load)
    if loaded is None:
        return
    row, job_limits = loaded
    label = registry.get(row.kind).label
    if reason == "timeout":
        message = timeout_error(label, job_limits.soft_seconds)
    else:
        message = (
            f"Internal error while running the {label.lower()}; it has been logged."
        )
    bound = log.bind(task_id=job_id_text)
    _fail(db, bus, row, claim_token, message, reason, bound=bound)


def timeout_error(label: str, soft_seconds: float) -> str:
    return (
        f"The {label.lower()} took longer than {limits.describe(soft_seconds)} "
        "(its time limit) and was stopped."
    )


def begin_delivery(job_id_text: str) -> tuple[bool, str | None]:
    """Count this delivery on the job (:mod:`app.jobs.deadletters`) before anything
    else. Returns (counted, outcome): ``counted`` says whether ``end_delivery`` must
    take it off again; ``outcome`` is "failed" when the job had already stopped its
    worker ``MAX_ATTEMPTS`` times and was dead-lettered now (do not run it)."""
    settings = worker_settings()
    db = _db(settings)
    job_id = uuid.UUID(job_id_text)

    async def count(s: AsyncSession) -> tuple[bool, str | None]:
        deliveries = await deadletter_repository.add_delivery(s, job_id)
        await s.commit()
        if deliveries is None:
            return False, None
        stopped = deliveries - 1  # the earlier deliveries that never returned
        if stopped < settings.max_attempts:
            return True, None
        row = await jobs_repo.get(s, job_id)
        if row is not None:
            await s.refresh(row)
            if await deadletters.dead_letter(
                s, row, stopped=stopped, settings=settings
            ):
                await s.refresh(row)
                _bus(settings).publish(
                    job_id_text, _ended("failed", row, message=row.error)
                )
        return True, "failed"

    return db.run(count)


def end_delivery(job_id_text: str) -> None:
    """Take a delivery that returned off the counter (best effort: if the database
    is unreachable the job counts one stop more than it had)."""
    settings = worker_settings()

    async def end(s: AsyncSession) -> None:
        await deadletter_repository.end_delivery(s, uuid.UUID(job_id_text))
        await s.commit()

    try:
        _db(settings).run(end)
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        log.warning("job.delivery_not_ended", task_id=job_id_text)


def _stopped(
    db: _Db,
    bus: _BestEffortBus,
    row: Job,
    claim_token: str,
    *,
    label: str,
    bound: Any,
    progress: float | None = None,
) -> str:
    """The run stopped at a cancel check. Cancelled (by us now, or by the API): tell
    the watchers the worker has stopped. Taken over (the sweeper re-queued it after a
    stale heartbeat): stay quiet, a "cancelled" would end the watchers' sockets of a
    job that is going to run again."""
    if not db.run(lambda s: _cancel_if_ours(s, row.id, claim_token)):
        bound.info("job.released")
        return "discarded"
    message = f"{label} cancelled."
    bus.publish(
        str(row.id), _ended("cancelled", row, message=message, progress=progress)
    )
    bound.info("job.cancelled")
    return "cancelled"


def _notify(db: _Db, job_id: uuid.UUID, steps: list[registry.AfterCommit]) -> None:
    """Queue the outbox rows committed with the terminal state (webhooks, e-mail);
    never fails the job (rows whose message is lost are re-sent periodically)."""
    if not steps:
        return
    try:
        db.run(lambda s: notify.send_outbox(steps, job_id))
    except Exception:
        log.exception("job.notify_failed", task_id=str(job_id))


async def _cancel_if_ours(s: AsyncSession, job_id: uuid.UUID, token: str) -> bool:
    """Cancel the row if this delivery still holds it; True if it ends cancelled."""
    if await _commit(jobs_repo.mark_cancelled, s, job_id, token):
        return True
    current = await jobs_repo.get(s, job_id)
    return current is not None and current.status == JobStatus.CANCELLED.value


def _fail(  # noqa: PLR0917 - private; every call site passes the same six
    db: _Db,
    bus: _BestEffortBus,
    row: Job,
    claim_token: str,
    message: str,
    error_code: str,
    *,
    bound: Any,
    progress: float | None = None,
) -> str:
    async def fail(s: AsyncSession) -> list[registry.AfterCommit] | None:
        ok = await jobs_repo.mark_failed(
            s, row.id, error=message, claim_token=claim_token, error_code=error_code
        )
        steps = await _outbox(s, row.id) if ok else []
        await s.commit()
        return steps if ok else None

    steps = db.run(fail)
    if steps is not None:
        bus.publish(
            str(row.id), _ended("failed", row, message=message, progress=progress)
        )
        _notify(db, row.id, steps)
    bound.info("job.failed", error=message, error_code=error_code)
    return "failed"


async def _commit(
    op: Callable[..., Awaitable[bool]], s: AsyncSession, job_id: uuid.UUID, token: str
) -> bool:
    ok = await op(s, job_id, claim_token=token)
    await s.commit()
    return ok


async def _claim(
    s: AsyncSession, job_id: uuid.UUID, token: str, settings: Settings
) -> tuple[Job, limits.TimeLimits] | None:
    row = await jobs_repo.get(s, job_id)
    if row is None:
        return None
    if row.status == JobStatus.PENDING.value:
        ok = await jobs_repo.mark_running(s, job_id, claim_token=token)
    elif row.status == JobStatus.RUNNING.value and row.claim_token == token:
        ok = await jobs_repo.reclaim(s, job_id, claim_token=token)
    else:
        return None
    if not ok:
        await s.rollback()
        return None
    await s.commit()
    await s.refresh(row)
    return row, await limits.limits_of(s, row, settings)


async def _outbox(s: AsyncSession, job_id: uuid.UUID) -> list[registry.AfterCommit]:
    return await notify.write_outbox(s, job_id, settings=worker_settings())


async def _save(
    s: AsyncSession,
    job_id: uuid.UUID,
    token: str,
    completion: Completion,
    settings: Settings,
) -> list[registry.AfterCommit] | None:
    """Save the completion; returns the outbox's after-commit steps, or None when
    the row is no longer ours (nothing written)."""
    ok = await jobs_repo.update_progress(
        s,
        job_id,
        claim_token=token,
        progress=100.0,
        current_date=completion.current_date,
        trades_executed=completion.work_done,
    ) and await jobs_repo.mark_completed(
        s,
        job_id,
        claim_token=token,
        metrics=completion.metrics,
        total_return=completion.headline("total_return"),
        sharpe_ratio=completion.headline("sharpe_ratio"),
    )
    if not ok:
        await s.rollback()
        return None
    await completion.save(s, job_id)
    await jobs_repo.stamp_completed(s, job_id)
    steps = await notify.write_outbox(s, job_id, settings=settings)
    await s.commit()
    return steps


class _Reporter:
    """Progress frames, DB heartbeat and the cancel check of one run.

    Progress conventions (README "Progress and ETA"): with a plan from the kind
    (``plan``), the fraction shown is phase-weighted and the ETA is the plan's
    remaining predicted time scaled by the run's observed pace (:mod:`app.jobs.eta`);
    without one (a kind that predicts nothing) the kind's fraction and an ETA from
    elapsed time. Either way the fraction never goes down, and ``tick`` (the
    process's pulse thread) re-sends the current state when nothing was published
    for ``TICK_SECONDS``, so a watcher gets a frame at least every second while the
    job runs, whatever phase it is in."""

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
        self.deadline = float("inf")  # the job's soft time limit (monotonic)
        self.timed_out = False
        # The last progress reported: what a heartbeat between progress calls (at a
        # setup phase's cancel check) writes again.
        self.reached: tuple[float, dt.date | None, int] = (0.0, None, 0)
        self.model: PhaseProgress | None = None
        self.current_phase: str | None = None  # until the kind's plan or phase
        self.extra: Mapping[str, Any] | None = None
        # Frames come from the job's thread and the pulse thread.
        self.lock = threading.RLock()

    def plan(self, phases: Sequence[Phase]) -> None:
        """The kind's plan; a second call refines the phases not started yet."""
        if not phases:
            return
        with self.lock:
            if self.model is None:
                self.model = PhaseProgress(phases)
                self.current_phase = self.model.phase
            else:
                self.model.revise(phases)
            self._publish_now()

    def phase(self, name: str) -> None:
        with self.lock:
            self.current_phase = name
            if self.model is not None:
                self.model.enter(name)
            self._publish_now()

    def progress(
        self,
        fraction: float,
        current_date: dt.date | None,
        work_done: int,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        with self.lock:
            if self.model is not None:
                self.model.advance(fraction)
                fraction = self.model.fraction()
            fraction = max(fraction, self.reached[0])
            self.reached = (fraction, current_date, work_done)
            self.extra = extra
            self.publish()
        self._beat_if_due()

    def tick(self) -> None:
        """Re-send the current state if nothing was published for TICK_SECONDS."""
        with self.lock:
            if time.monotonic() - self.last_publish >= TICK_SECONDS:
                self._publish_now()

    def _publish_now(self) -> None:
        if self.model is not None:
            _, day, fills = self.reached
            self.reached = (max(self.model.fraction(), self.reached[0]), day, fills)
        self.publish(force=True)

    def _beat_if_due(self) -> None:
        now = time.monotonic()
        if now - self.last_beat >= min(self.settings.heartbeat_interval_seconds, 0.5):
            self.last_beat = now
            self.heartbeat(*self.reached)

    def heartbeat(self, fraction: float, day: dt.date | None, fills: int) -> None:
        """Write progress and heartbeat; ``lost`` once the row is no longer ours. A
        database outage skips the beat: if it outlasts the stale-heartbeat limit the
        sweeper takes the job back and the next beat finds the row lost."""
        try:
            ours = self.db.run(lambda s: self._beat(s, 100.0 * fraction, day, fills))
        except Exception as exc:
            if unavailable_dependency(exc) != "database":
                raise
            log.warning(
                "job.heartbeat_failed",
                task_id=str(self.job_id),
                error_type=type(exc).__name__,
            )
            return
        self.lost = not ours

    async def _beat(
        self, s: AsyncSession, pct: float, day: dt.date | None, fills: int
    ) -> bool:
        ok = await jobs_repo.update_progress(
            s,
            self.job_id,
            claim_token=self.token,
            progress=min(pct, 99.9),
            current_date=day,
            trades_executed=fills,
        )
        await s.commit()
        return ok

    def publish(self, *, force: bool = False) -> None:
        """Send the state in ``reached`` (at most every progress_interval_seconds
        unless ``force``)."""
        now = time.monotonic()
        if (
            not force
            and now - self.last_publish < self.settings.progress_interval_seconds
        ):
            return
        self.last_publish = now
        fraction, day, fills = self.reached
        if self.model is not None:
            eta: float | None = self.model.eta_seconds()
        else:
            elapsed = now - self.started
            eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        frame = ProgressMessage.running(
            fraction=fraction,
            current_date=day,
            eta_seconds=eta,
            work_done=fills,
            phase=self.current_phase,
        ).frame()
        self.bus.publish(str(self.job_id), {**frame, **(self.extra or {})})

    def cancelled(self) -> bool:
        """True once the run must stop: cancelled, taken over, or past its soft time
        limit (``timed_out``; the embedded worker's threads have no Celery limits)."""
        if time.monotonic() >= self.deadline:
            self.timed_out = True
            return True
        # A setup phase has no progress calls: its checks keep the heartbeat fresh,
        # so the sweeper does not take a slow setup for a dead worker.
        self._beat_if_due()
        return self.lost or self.bus.cancel_requested(str(self.job_id))


def _ended(
    status: str, row: Job, *, message: str | None, progress: float | None = None
) -> Message:
    """A terminal frame at ``progress`` (the run's last, in percent) or the row's."""
    return ProgressMessage.ended(
        status, row, message=message, progress=progress
    ).frame()


class _Pulse:
    """One daemon thread per process that refreshes the heartbeat of every running
    job that has not written one for ``HEARTBEAT_INTERVAL_SECONDS``: a phase without
    progress calls (the analysis and stored results after the simulation, saving)
    can outlast the stale-heartbeat limit on a loaded machine, and the sweeper would
    take the job back from a live worker. It also ``tick``s each running job, so a
    watcher gets a progress frame at least every second. The thread has its own
    database loop (``_db`` is per thread); started lazily in each (forked) process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: set[_Reporter] = set()
        self.pid: int | None = None

    def add(self, reporter: _Reporter) -> None:
        with self.lock:
            self.active.add(reporter)
            if self.pid != os.getpid():
                self.pid = os.getpid()
                threading.Thread(
                    target=self._loop, name="job-heartbeat", daemon=True
                ).start()

    def remove(self, reporter: _Reporter) -> None:
        with self.lock:
            self.active.discard(reporter)

    def _loop(self) -> None:
        while True:
            time.sleep(PULSE_SECONDS)
            with self.lock:
                reporters = list(self.active)
            for reporter in reporters:
                with contextlib.suppress(Exception):  # best effort, as every beat
                    reporter.tick()
                with contextlib.suppress(Exception):
                    self._beat(reporter)

    @staticmethod
    def _beat(reporter: _Reporter) -> None:
        interval = reporter.settings.heartbeat_interval_seconds
        if time.monotonic() - reporter.last_beat < interval:
            return
        reporter.last_beat = time.monotonic()
        fraction, day, fills = reporter.reached
        ours = _db(reporter.settings).run(
            lambda s: reporter._beat(s, 100.0 * fraction, day, fills)
        )
        if not ours:
            reporter.lost = True


# The pulse wakes every PULSE_SECONDS and re-sends a job's progress when nothing was
# published for TICK_SECONDS: TICK + PULSE < 1 s between frames while a job runs.
PULSE_SECONDS = 0.25
TICK_SECONDS = 0.7
_PULSE = _Pulse()
