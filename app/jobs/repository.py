"""Job rows, of every kind: the one lifecycle's SQL.

State changes are *guarded* updates (``UPDATE ... WHERE status = <expected>``) that
return whether a row changed, so a redelivered task, a second worker or a late cancel
cannot move a job backwards. Nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.base import utcnow
from app.db.models import ACTIVE_STATUSES, OPEN_STATUSES, Job, JobStatus, User

JobSort = Literal[
    "created_at", "-created_at", "total_return", "-total_return",
    "sharpe_ratio", "-sharpe_ratio", "name", "-name",
]  # fmt: skip
_SORT_COLUMNS = {
    "created_at": Job.created_at,
    "total_return": Job.total_return,
    "sharpe_ratio": Job.sharpe_ratio,
    "name": Job.name,
}
_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_OPEN = [s.value for s in OPEN_STATUSES]


async def create(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str,
    config: dict[str, Any],
    name: str | None = None,
    status: JobStatus = JobStatus.PENDING,
    cost: float = 1.0,
) -> Job:
    job = Job(
        user_id=user_id,
        kind=kind,
        config=config,
        name=name,
        status=status.value,
        cost=cost,
    )
    session.add(job)
    await session.flush()
    return job


async def get(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    """Unscoped read, for workers and the sweeper; the API uses ``get_for_owner``."""
    return await session.get(Job, job_id)


async def get_for_owner(
    session: AsyncSession, job_id: uuid.UUID, user: User, *, kind: str
) -> Job | None:
    """The ``kind`` job if ``user`` owns it (or is an admin); ``None`` otherwise, so
    another user's id (or another kind's) is indistinguishable from an unknown one."""
    query = select(Job).where(Job.id == job_id, Job.kind == kind)
    if not user.is_admin:
        query = query.where(Job.user_id == user.id)
    return (await session.execute(query)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is reading: what authorisation and rate limiting need of the user row."""

    id: uuid.UUID
    tier: str
    is_admin: bool


class JobView(Protocol):
    """The job fields a status read shows; a ``Job`` and the rows of
    ``get_with_viewer`` both have them."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def progress(self) -> float: ...
    @property
    def current_date(self) -> dt.date | None: ...
    @property
    def trades_executed(self) -> int: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def started_at(self) -> dt.datetime | None: ...
    @property
    def completed_at(self) -> dt.datetime | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def metrics(self) -> dict[str, Any] | None: ...


def _viewer_query() -> Select[Any]:
    """``users LEFT JOIN jobs`` on "this id of this kind, and the viewer owns it or is
    an admin"; job columns labelled with the model's attribute names (``JobView``).
    Built once: a Core statement with bound parameters skips the ORM's per-call
    statement building and row loading (half the CPU of this read)."""
    users, jobs = User.__table__, Job.__table__
    visible = and_(
        jobs.c.id == bindparam("job_id"),
        jobs.c.kind == bindparam("kind"),
        or_(jobs.c.user_id == users.c.id, users.c.is_admin.is_(True)),
    )
    job_columns = [
        prop.columns[0].label(prop.key)
        for prop in inspect(Job).column_attrs
        if prop.key in _JOB_VIEW_FIELDS
    ]
    return (
        select(
            users.c.tier.label("viewer_tier"), users.c.is_admin.label("viewer_admin")
        )
        .add_columns(*job_columns)
        .select_from(users.outerjoin(jobs, visible))
        .where(users.c.id == bindparam("viewer_id"))
    )


_JOB_VIEW_FIELDS = frozenset(name for name in vars(JobView) if not name.startswith("_"))
_VIEWER_QUERY = _viewer_query()


async def get_with_viewer(
    connection: AsyncConnection,
    *,
    viewer_id: uuid.UUID,
    job_id: uuid.UUID | None,
    kind: str,
) -> tuple[Viewer | None, JobView | None]:
    """The viewer's user row and the job if they may see it, in **one** statement:
    the hot read path of a status read (``GET /v1/backtest/{id}``), run on an
    autocommit connection (no BEGIN/ROLLBACK, no ORM session). ``(None, None)``
    when the user no longer exists; the job is ``None`` when unknown, malformed
    (``job_id=None``), of another kind or another user's (the same answer, no
    enumeration), unless the viewer is an admin."""
    params = {"viewer_id": viewer_id, "job_id": job_id, "kind": kind}
    found = (await connection.execute(_VIEWER_QUERY, params)).one_or_none()
    if found is None:
        return None, None
    viewer = Viewer(id=viewer_id, tier=found.viewer_tier, is_admin=found.viewer_admin)
    job: JobView | None = None if found.id is None else found
    return viewer, job


async def list_for_owner(
    session: AsyncSession,
    user: User,
    *,
    kind: str,
    status: JobStatus | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    sort: JobSort = "-created_at",
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """One page of ``user``'s jobs and the total matching the filters.

    Sorting by a nullable column (``total_return``, ``sharpe_ratio``) puts NULLs last in
    both directions; ``id`` breaks ties so pages are stable.
    """
    query = select(Job).where(Job.user_id == user.id, Job.kind == kind)
    if status is not None:
        query = query.where(Job.status == JobStatus(status).value)
    if created_after is not None:
        query = query.where(Job.created_at >= created_after)
    if created_before is not None:
        query = query.where(Job.created_at < created_before)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    column = _SORT_COLUMNS[sort.removeprefix("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    query = query.order_by(order.nulls_last(), Job.id).limit(limit).offset(offset)
    rows = await session.scalars(query)
    return list(rows), int(total or 0)


async def count_active(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Pending + running jobs of a user, of every kind (per-tier concurrency)."""
    query = select(func.count()).where(Job.user_id == user_id, Job.status.in_(_ACTIVE))
    return int(await session.scalar(query) or 0)


async def _guarded_update(
    session: AsyncSession,
    job_id: uuid.UUID,
    conditions: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
) -> bool:
    statement = (
        update(Job)
        .where(Job.id == job_id, *conditions)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount == 1


def _claimed_by(claim_token: str | None) -> list[ColumnElement[bool]]:
    return [] if claim_token is None else [Job.claim_token == claim_token]


async def mark_running(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    claim_token: str,
    now: dt.datetime | None = None,
) -> bool:
    """Claim a pending, not-cancelled job for one worker; False if someone else has it
    (or it already finished / was cancelled)."""
    now = now or utcnow()
    conditions = [
        Job.status == JobStatus.PENDING.value,
        Job.cancel_requested.is_(False),
    ]
    values = {
        "status": JobStatus.RUNNING.value,
        "claim_token": claim_token,
        "started_at": now,
        "heartbeat_at": now,
        "attempts": Job.attempts + 1,
    }
    return await _guarded_update(session, job_id, conditions, values)


async def reclaim(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    claim_token: str,
    now: dt.datetime | None = None,
) -> bool:
    """Take a job back under the same claim: the broker re-delivered the message that
    claimed it (``acks_late``), which only happens when that execution died."""
    now = now or utcnow()
    conditions = [
        Job.status == JobStatus.RUNNING.value,
        Job.claim_token == claim_token,
        Job.cancel_requested.is_(False),
    ]
    values = {"heartbeat_at": now, "attempts": Job.attempts + 1}
    return await _guarded_update(session, job_id, conditions, values)


async def mark_enqueued(
    session: AsyncSession, job_id: uuid.UUID, *, now: dt.datetime | None = None
) -> None:
    await _guarded_update(session, job_id, [], {"enqueued_at": now or utcnow()})


async def release_stale_running(
    session: AsyncSession, job_id: uuid.UUID, *, heartbeat_before: dt.datetime
) -> bool:
    """Put a running job whose worker went silent back to pending (claim cleared)."""
    conditions = [
        Job.status == JobStatus.RUNNING.value,
        Job.heartbeat_at < heartbeat_before,
    ]
    values = {"status": JobStatus.PENDING.value, "claim_token": None}
    return await _guarded_update(session, job_id, conditions, values)


async def list_stale(
    session: AsyncSession,
    *,
    heartbeat_before: dt.datetime,
    enqueued_before: dt.datetime,
    limit: int = 500,
) -> list[Job]:
    """Running jobs with an old heartbeat and pending ones not (re)sent recently."""
    running_stale = (Job.status == JobStatus.RUNNING.value) & (
        Job.heartbeat_at < heartbeat_before
    )
    pending_stale = (Job.status == JobStatus.PENDING.value) & (
        func.coalesce(Job.enqueued_at, Job.dispatched_at, Job.created_at)
        < enqueued_before
    )
    query = (
        select(Job)
        .where(running_stale | pending_stale)
        .order_by(Job.created_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def update_progress(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    claim_token: str,
    progress: float,
    current_date: dt.date | None = None,
    trades_executed: int | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Progress + heartbeat from the claiming worker; False once the job is no longer
    running under this claim (cancelled, failed by the sweeper, re-claimed)."""
    values: dict[str, Any] = {
        "progress": min(max(progress, 0.0), 100.0),
        "heartbeat_at": now or utcnow(),
    }
    if current_date is not None:
        values["current_date"] = current_date
    if trades_executed is not None:
        values["trades_executed"] = trades_executed
    conditions = [
        Job.status == JobStatus.RUNNING.value,
        *_claimed_by(claim_token),
    ]
    return await _guarded_update(session, job_id, conditions, values)


async def mark_completed(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    claim_token: str,
    metrics: dict[str, Any] | None,
    total_return: float | None,
    sharpe_ratio: float | None,
    now: dt.datetime | None = None,
) -> bool:
    values = {
        "status": JobStatus.COMPLETED.value,
        "progress": 100.0,
        "metrics": metrics,
        "total_return": total_return,
        "sharpe_ratio": sharpe_ratio,
        "completed_at": now or utcnow(),
    }
    conditions = [
        Job.status == JobStatus.RUNNING.value,
        *_claimed_by(claim_token),
    ]
    return await _guarded_update(session, job_id, conditions, values)


async def stamp_completed(
    session: AsyncSession, job_id: uuid.UUID, *, now: dt.datetime | None = None
) -> None:
    """Move ``completed_at`` of a job completed in this transaction to ``now``: the
    moment its results are saved, just before they become visible (the commit), so
    ``completed_at - started_at`` is the whole time the job held its worker slot,
    saving included (what the queue's mean run time and ETAs are made of)."""
    await session.execute(
        update(Job).where(Job.id == job_id).values(completed_at=now or utcnow())
    )


async def mark_failed(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    error: str,
    claim_token: str | None = None,
    error_code: str | None = None,
    dead_letter: bool = False,
    now: dt.datetime | None = None,
) -> bool:
    """Fail an active job (with ``claim_token``: only while that worker holds it);
    ``error_code`` is the failure's category, ``dead_letter`` lists it for admins."""
    now = now or utcnow()
    values: dict[str, Any] = {
        "status": JobStatus.FAILED.value,
        "error": error,
        "error_code": error_code,
        "completed_at": now,
    }
    if dead_letter:
        values["dead_lettered_at"] = now
    conditions = [Job.status.in_(_OPEN), *_claimed_by(claim_token)]
    return await _guarded_update(session, job_id, conditions, values)


async def request_cancel(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Flag an open job for cancellation (the worker polls the flag)."""
    conditions = [Job.status.in_(_OPEN)]
    values = {"cancel_requested": True}
    return await _guarded_update(session, job_id, conditions, values)


async def mark_cancelled(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    claim_token: str | None = None,
    from_status: JobStatus | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Cancel an active job (only from ``from_status`` when given; with
    ``claim_token``: only while that worker holds it)."""
    values = {
        "status": JobStatus.CANCELLED.value,
        "cancel_requested": True,
        "completed_at": now or utcnow(),
    }
    state = (
        Job.status.in_(_OPEN)
        if from_status is None
        else Job.status == from_status.value
    )
    conditions = [state, *_claimed_by(claim_token)]
    return await _guarded_update(session, job_id, conditions, values)


async def delete(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Delete a job; its kind's result rows go with it (ON DELETE CASCADE)."""
    statement = sql_delete(Job).where(Job.id == job_id)
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount == 1


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Lock the user's row until the transaction ends: one submission per user at a
    time, across API processes, so "count, then insert" is exact. PostgreSQL:
    ``SELECT ... FOR UPDATE``. SQLite ignores FOR UPDATE and reads outside any write
    lock, so there a no-op ``UPDATE`` of the row opens the write transaction first
    (waiting up to ``SQLITE_BUSY_TIMEOUT_MS`` for another writer): the counts that
    follow cannot be raced by another submission's insert."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(User).where(User.id == user_id).values(tier=User.tier)
        )
        return
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def recent_creations(
    session: AsyncSession, user_id: uuid.UUID, *, since: dt.datetime, limit: int
) -> list[dt.datetime]:
    """``created_at`` of the user's newest ``limit`` jobs created after ``since``,
    newest first (index ``ix_jobs_user_id_created_at``)."""
    query = (
        select(Job.created_at)
        .where(Job.user_id == user_id, Job.created_at > since)
        .order_by(Job.created_at.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


# --- the queue (app.jobs.scheduler) -------------------------------------------------

_QUEUED = JobStatus.QUEUED.value
_PENDING = JobStatus.PENDING.value
# pg_advisory_xact_lock key of the dispatcher ("jobsdisp" as a 64-bit integer).
_DISPATCH_LOCK_KEY = 0x6A6F627364697370


@dataclass(frozen=True, slots=True)
class QueueUser:
    """A user with queued jobs, as the dispatcher sees them."""

    user_id: uuid.UUID
    tier: str
    is_admin: bool
    queued: int
    active: int
    last_dispatched_at: dt.datetime | None


async def lock_dispatcher(session: AsyncSession, *, wait: bool = True) -> bool:
    """One dispatcher at a time, across API processes and workers, until the
    transaction ends; True once held. PostgreSQL: a transaction-scoped advisory
    lock; ``wait=False`` only tries (``pg_try_advisory_xact_lock``) and returns
    False at once when another dispatcher holds it. SQLite: a no-op ``UPDATE``
    takes the database write lock (as ``lock_user`` does), always waiting (up to
    the busy timeout): SQLite has no "try" for it, and embedded mode is one
    process whose submissions are already serialised (app.jobs.service)."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Job).where(Job.id.is_(None)).values(status=Job.status)
        )
        return True
    if wait:
        await session.execute(select(func.pg_advisory_xact_lock(_DISPATCH_LOCK_KEY)))
        return True
    held = await session.scalar(
        select(func.pg_try_advisory_xact_lock(_DISPATCH_LOCK_KEY))
    )
    return bool(held)


async def count_pending(
    session: AsyncSession, *, sent_after: dt.datetime | None = None
) -> int:
    """Jobs sent to the broker and not claimed yet, of every user; with
    ``sent_after``, only those sent (or promoted) since then."""
    query = select(func.count()).where(Job.status == _PENDING)
    if sent_after is not None:
        query = query.where(
            func.coalesce(Job.enqueued_at, Job.dispatched_at) >= sent_after
        )
    return int(await session.scalar(query) or 0)


async def queue_users(session: AsyncSession) -> list[QueueUser]:
    """Every user with at least one queued job: tier, queued and active (pending +
    running) counts, and when one of their jobs was last dispatched."""
    waiting = select(Job.user_id).where(Job.status == _QUEUED).distinct()
    is_queued = func.sum(case((Job.status == _QUEUED, 1), else_=0))
    is_active = func.sum(case((Job.status.in_(_ACTIVE), 1), else_=0))
    query = (
        select(
            Job.user_id,
            User.tier,
            User.is_admin,
            is_queued,
            is_active,
            func.max(Job.dispatched_at),
        )
        .join(User, User.id == Job.user_id)
        .where(Job.user_id.in_(waiting))
        .group_by(Job.user_id, User.tier, User.is_admin)
    )
    rows = (await session.execute(query)).all()
    return [
        QueueUser(
            user_id=r[0],
            tier=r[1],
            is_admin=bool(r[2]),
            queued=int(r[3] or 0),
            active=int(r[4] or 0),
            last_dispatched_at=r[5],
        )
        for r in rows
    ]


def _queue_order() -> list[ColumnElement[Any]]:
    """A user's own queued jobs: cheapest first, then oldest, then id."""
    return [Job.cost.asc(), Job.created_at.asc(), Job.id.asc()]


async def next_queued(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    query = (
        select(Job.id)
        .where(Job.user_id == user_id, Job.status == _QUEUED)
        .order_by(*_queue_order())
        .limit(1)
    )
    return cast("uuid.UUID | None", await session.scalar(query))


async def mark_dispatched(
    session: AsyncSession, job_id: uuid.UUID, *, now: dt.datetime
) -> bool:
    """``queued → pending`` (its turn came); False if it was cancelled meanwhile."""
    conditions = [Job.status == _QUEUED, Job.cancel_requested.is_(False)]
    values = {"status": _PENDING, "dispatched_at": now, "enqueued_at": None}
    return await _guarded_update(session, job_id, conditions, values)


async def undispatch(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """``pending → queued`` for a job whose message could not be sent (no worker
    can have claimed it: it has no message)."""
    conditions = [Job.status == _PENDING, Job.claim_token.is_(None)]
    values = {"status": _QUEUED, "dispatched_at": None}
    return await _guarded_update(session, job_id, conditions, values)


async def count_queued(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Queued jobs of a user, of every kind (the waiting backstop)."""
    query = select(func.count()).where(Job.user_id == user_id, Job.status == _QUEUED)
    return int(await session.scalar(query) or 0)


Reader = AsyncSession | AsyncConnection


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What a queue position estimate needs about the queue around one job."""

    own_ahead: int  # the owner's queued jobs dispatched before this one
    others: list[int]  # queued counts of every other user with queued jobs
    pending: int  # dispatched, not claimed yet (they start first)
    running: int
    mean_run_seconds: float | None  # of recently finished runs


async def queue_snapshot(
    reader: Reader, job: JobView, user_id: uuid.UUID
) -> QueueSnapshot:
    cost = await reader.scalar(select(Job.cost).where(Job.id == job.id))
    ahead = (
        (Job.cost < cost)
        | ((Job.cost == cost) & (Job.created_at < job.created_at))
        | ((Job.cost == cost) & (Job.created_at == job.created_at) & (Job.id < job.id))
    )
    own_ahead = await reader.scalar(
        select(func.count()).where(
            Job.user_id == user_id, Job.status == _QUEUED, Job.id != job.id, ahead
        )
    )
    others = (
        await reader.execute(
            select(func.count())
            .where(Job.status == _QUEUED, Job.user_id != user_id)
            .group_by(Job.user_id)
        )
    ).scalars()
    counted = await reader.execute(
        select(Job.status, func.count())
        .where(Job.status.in_(_ACTIVE))
        .group_by(Job.status)
    )
    states = {str(status): int(n) for status, n in counted.all()}
    return QueueSnapshot(
        own_ahead=int(own_ahead or 0),
        others=[int(n) for n in others],
        pending=int(states.get(_PENDING, 0)),
        running=int(states.get(JobStatus.RUNNING.value, 0)),
        mean_run_seconds=await mean_run_seconds(reader),
    )


async def mean_run_seconds(reader: Reader, *, sample: int = 50) -> float | None:
    """Mean wall time (started → completed) of the last ``sample`` completed jobs."""
    recent = (
        select(Job.started_at, Job.completed_at)
        .where(
            Job.status == JobStatus.COMPLETED.value,
            Job.started_at.is_not(None),
            Job.completed_at.is_not(None),
        )
        .order_by(Job.completed_at.desc())
        .limit(sample)
    )
    rows = (await reader.execute(recent)).all()
    spans = [
        (done - start).total_seconds()
        for start, done in rows
        if start is not None and done is not None
    ]
    return sum(spans) / len(spans) if spans else None
