"""Job use cases on the API side, for every kind: submit, read, list, cancel, delete.

A domain validates its own request first, then calls :func:`submit` with the job's
kind and its stored configuration. Ordering rule for submission: the job row is
committed **before** the message is sent, so a worker can never receive an id that
is not in the database; if the broker cannot be reached the row is marked failed and
the client gets 503 (nothing is left pending without a message, and the sweeper
re-sends any message that got lost after that).

**Embedded mode serialises submissions in-process** (:func:`_one_sqlite_submit`).
SQLite has one write lock for the whole file and a submission takes it three times
(the quota's user lock, the insert, the dispatch); hundreds of simultaneous
submissions, each waiting up to ``SQLITE_BUSY_TIMEOUT_MS`` for it in SQLite's
sleep-and-retry busy handler, made some time out ("database is locked" → 503) while
the file was only ever busy, not down. Embedded mode is one process, so an
``asyncio.Lock`` (per event loop) queues its submissions in arrival order and each
one meets at most the worker's writes at the lock. The wait for it is bounded by
``SQLITE_SUBMIT_WAIT_SECONDS`` (default 60); past that the client gets 503 with
``Retry-After: 5``, never a 500. PostgreSQL (distributed mode) needs none of this:
row locks, no global write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.accounts import service as users_service
from app.accounts.sessions import TokenRevocations
from app.core.config import Settings, get_settings
from app.core.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized
from app.core.metrics import BACKTEST_REQUESTS
from app.core.outages import unavailable_dependency
from app.db.models import TERMINAL_STATUSES, Job, JobStatus, User
from app.jobs import limits, registry, scheduler
from app.jobs import repository as jobs_repo
from app.jobs.progress import ProgressBus, ProgressMessage, get_bus
from app.jobs.quotas import SubmissionQuota
from app.jobs.repository import JobSort, JobView, Viewer

logger = structlog.get_logger(__name__)

# One lock per event loop (the API's; a thread with its own loop gets its own).
_SQLITE_SUBMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
SQLITE_SUBMIT_RETRY_AFTER = 5


async def _release_if_reading(session: AsyncSession) -> None:
    """End the session's transaction if it has only read (the request's user, ...),
    returning its connection to the pool. One that has written (a schedule's claim
    committed with its submission) keeps it: SQLite begins a transaction only
    before the first write, which the driver connection's ``in_transaction`` tells."""
    if not session.in_transaction() or session.new or session.dirty or session.deleted:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    if not getattr(raw.driver_connection, "in_transaction", True):
        await session.commit()  # nothing to write: expire_on_commit is off


@contextlib.asynccontextmanager
async def _one_sqlite_submit(
    session: AsyncSession, settings: Settings
) -> AsyncIterator[None]:
    """In embedded mode (SQLite), one submission of this process at a time, waiting
    at most ``settings.sqlite_submit_wait_seconds`` (then 503 + Retry-After); a
    no-op on PostgreSQL. See the module docstring."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    # Waiters must not hold pool connections the submission being served needs.
    await _release_if_reading(session)
    loop = asyncio.get_running_loop()
    lock = _SQLITE_SUBMITS.setdefault(loop, asyncio.Lock())
    try:
        async with asyncio.timeout(settings.sqlite_submit_wait_seconds):
            await lock.acquire()
    except TimeoutError:
        BACKTEST_REQUESTS.labels(status="rejected").inc()
        raise ServiceUnavailable(
            "Too many submissions at once; try again shortly.",
            retry_after=SQLITE_SUBMIT_RETRY_AFTER,
        ) from None
    try:
        yield
    finally:
        lock.release()


async def submit(
    session: AsyncSession,
    *,
    user: User,
    kind: str,
    config: dict[str, Any],
    name: str | None,
    quota: SubmissionQuota | None = None,
    settings: Settings | None = None,
) -> Job:
    """Admit (``quota``: call this after validating, so a 400 costs no quota), store
    it as ``queued`` and let the dispatcher schedule it. The registered submission
    checks (e.g. a ``callback_url`` the service may call) run first, before any
    quota is taken. A submission that fails after admission (an error storing the
    row, a queue outage) leaves no row and gives its quota back. Embedded mode: one
    at a time (module docstring)."""
    settings = settings or get_settings()
    async with _one_sqlite_submit(session, settings):
        return await _submit(
            session,
            user=user,
            kind=kind,
            config=config,
            name=name,
            quota=quota,
            settings=settings,
        )


async def _submit(
    session: AsyncSession,
    *,
    user: User,
    kind: str,
    config: dict[str, Any],
    name: str | None,
    quota: SubmissionQuota | None,
    settings: Settings,
) -> Job:
    for check in registry.submission_checks():
        await check(session, user, kind, config, settings)
    if quota is not None:
        await quota.reserve(session, user=user)
    try:
        row = await jobs_repo.create(
            session,
            user_id=user.id,
            kind=kind,
            config=config,
            name=name,
            status=JobStatus.QUEUED,
            cost=scheduler.estimate_cost(config),
        )
        job_id = row.id
        await session.commit()
    except BaseException:
        if quota is not None:
            await quota.refund()
        raise
    # Accepted: the job waits as ``queued`` until the dispatcher gives it a slot
    # (app.jobs.scheduler), maybe right now. If its own message cannot be sent (the
    # broker is down) the submission is undone and the client gets 503, as before
    # the queue existed; queued behind others, it simply waits.
    try:
        # Never waits for the dispatcher lock: its holder looks again once it has
        # released it (app.jobs.scheduler, "Lock-free hand-over").
        dispatched = await scheduler.dispatch(
            session, settings=settings, enqueue=limits.send, wait=False
        )
    except Exception as exc:
        await session.rollback()
        if unavailable_dependency(exc) is None:
            await _forget(session, job_id, quota)
            raise
        logger.warning(
            "submit_dispatch_failed", task_id=str(job_id), error=type(exc).__name__
        )
        dispatched = scheduler.Dispatched()
    broker_error: BaseException | None = dispatched.error
    if job_id not in dispatched.sent and job_id not in dispatched.failed:
        # Queued behind others: no message of its own yet. The broker must still be
        # reachable, or the client hears 200 for a queue that is down; one answer
        # for an outage whatever the queue's depth (README, Scheduling).
        broker_error = await _broker_down(settings)
    if job_id in dispatched.failed or broker_error is not None:
        # The row is committed but has no message: delete it, so nothing is left
        # that nobody will run and the failed request is not in the history nor
        # counted against the quota.
        await _forget(session, job_id, quota)
        BACKTEST_REQUESTS.labels(status="rejected").inc()
        raise ServiceUnavailable(
            "The job queue is unavailable; try again shortly.", retry_after=5
        ) from broker_error
    await session.refresh(row)
    BACKTEST_REQUESTS.labels(status="submitted").inc()
    return row


async def _broker_down(settings: Settings) -> BaseException | None:
    """The outage error when the job queue's broker (Redis, distributed mode) does
    not answer a ping; None when it does, or in embedded mode (in-process)."""
    if not settings.redis_url:
        return None
    try:
        await get_bus(settings.redis_url).ping()
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        return exc
    return None


async def _forget(
    session: AsyncSession, job_id: uuid.UUID, quota: SubmissionQuota | None
) -> None:
    """Undo an admitted submission that could not be queued: refund, delete."""
    if quota is not None:
        await quota.refund()
    try:
        await jobs_repo.delete(session, job_id)
        await session.commit()
    except Exception as exc:
        # The database failed as well: the sweeper re-sends the pending row later.
        await session.rollback()
        logger.warning(
            "failed_submission_not_deleted",
            task_id=str(job_id),
            error=type(exc).__name__,
        )


def parse_id(task_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(task_id)
    except ValueError:
        return None


def not_found(kind: str, task_id: str) -> NotFound:
    return NotFound(f"{registry.get(kind).label} not found", task_id=task_id)


async def get_owned(
    session: AsyncSession, *, user: User, task_id: str, kind: str
) -> Job:
    """The ``kind`` job if ``user`` may see it; the same 404 for unknown, malformed,
    other kinds' and other users' ids (no enumeration)."""
    job_id = parse_id(task_id)
    row = (
        None
        if job_id is None
        else await jobs_repo.get_for_owner(session, job_id, user, kind=kind)
    )
    if row is None:
        raise not_found(kind, task_id)
    return row


async def read_owned(
    connection: AsyncConnection,
    *,
    token: str,
    task_id: str,
    kind: str,
    settings: Settings,
    revocations: TokenRevocations,
) -> tuple[Viewer, JobView | None]:
    """Authenticate ``token`` and read the job it may see, in one query (see
    ``jobs_repo.get_with_viewer``). The job is ``None`` for unknown, malformed and
    other users' ids: the caller answers 404 after rate limiting, as for
    ``get_owned``."""
    viewer_id = await users_service.user_id_from_token(
        token, settings=settings, revocations=revocations
    )
    viewer, row = await jobs_repo.get_with_viewer(
        connection, viewer_id=viewer_id, job_id=parse_id(task_id), kind=kind
    )
    if viewer is None:  # a valid token whose user was deleted
        raise Unauthorized()
    return viewer, row


async def history(
    session: AsyncSession,
    *,
    user: User,
    kind: str,
    status: str | None,
    created_after: dt.datetime | None,
    created_before: dt.datetime | None,
    sort: JobSort,
    limit: int,
    offset: int,
) -> tuple[list[Job], int]:
    return await jobs_repo.list_for_owner(
        session,
        user,
        kind=kind,
        status=JobStatus(status) if status else None,
        created_after=created_after,
        created_before=created_before,
        sort=sort,
        limit=limit,
        offset=offset,
    )


async def queue_estimate(
    reader: AsyncSession | AsyncConnection, row: JobView, settings: Settings
) -> scheduler.QueueEstimate | None:
    """Position and estimated wait of a queued job (None for any other status)."""
    if row.status != JobStatus.QUEUED.value:
        return None
    return await scheduler.estimate(reader, row, user_id=row.user_id, settings=settings)


def require_completed(row: Job) -> None:
    if row.status != JobStatus.COMPLETED.value:
        label = registry.get(row.kind).label
        raise Conflict(
            f"{label} is {row.status}; results are available once it has completed.",
            task_id=str(row.id),
        )


def result_version(row: JobView) -> str | None:
    """A validator for the job's results: set once it completed (results never change
    after that), None while it can still change."""
    if row.status != JobStatus.COMPLETED.value or row.completed_at is None:
        return None
    return f"{row.id}:{row.completed_at.isoformat()}"


async def cancel_or_delete(
    session: AsyncSession,
    *,
    user: User,
    task_id: str,
    kind: str,
    bus: ProgressBus,
    settings: Settings | None = None,
) -> tuple[Job, str]:
    """Queued/pending/running: cancel (a queued or pending job never starts, a
    running one stops at its next checkpoint). Finished: delete the job and its
    results. Idempotent."""
    label = registry.get(kind).label
    row = await get_owned(session, user=user, task_id=task_id, kind=kind)
    if row.status in TERMINAL_STATUSES:
        status = row.status
        await jobs_repo.delete(session, row.id)
        await session.commit()
        return row, f"{label} ({status}) and its results were deleted."
    # Pending or running: the row turns cancelled now (the database is the truth); a
    # queued message then finds nothing to claim, and a running worker sees the flag
    # (or its next guarded write failing) at its next chunk and stops without saving.
    # Cancel it from the state it is in *now*, not as read above: a queued job may
    # have been claimed since, and the answer must say which it was.
    for was in (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING):
        if await jobs_repo.mark_cancelled(session, row.id, from_status=was):
            await session.commit()
            if was is not JobStatus.QUEUED:  # a queued job has no message nor worker
                await bus.request_cancel(str(row.id))
            frame = ProgressMessage.cancelled(label, progress=row.progress).frame()
            bus.publish(str(row.id), frame)
            if was is not JobStatus.RUNNING:
                # Its slot is free now (a running one frees it when its worker
                # stops): the next queued job may go.
                await scheduler.dispatch_quietly(
                    session, settings=settings or get_settings(), enqueue=limits.send
                )
            return row, _cancelled(label, started=was is JobStatus.RUNNING)
    # Someone else ended it first: it finished, or a concurrent DELETE cancelled it
    # (and maybe deleted it since: then it is gone, as for any later DELETE).
    current = await session.get(Job, row.id, populate_existing=True)
    if current is None:
        raise not_found(kind, task_id)
    if current.status != JobStatus.CANCELLED.value:
        return current, f"{label} already {current.status}; nothing to cancel."
    return current, _cancelled(label, started=current.started_at is not None)


def _cancelled(label: str, *, started: bool) -> str:
    if started:
        return f"{label} cancelled; the worker stops at its next checkpoint."
    return f"{label} cancelled before it started."
