"""The job queue: accept, then schedule fairly.

Every accepted submission is stored as ``queued`` (no broker message yet). The
**dispatcher** (:func:`dispatch`) promotes queued jobs to ``pending`` in fair order
and only then sends their Celery message (``jobs.run`` on the ``jobs`` queue); from
there the lifecycle is unchanged (claim, run, save). It runs

* after every submission (API),
* after every claim and every finished run (worker: a slot changed hands),
* after a cancel (API), and
* on every sweep (Celery beat / the embedded sweeper loop), which also heals a
  dispatch lost to an outage.

Rules, applied under one lock (PostgreSQL advisory lock, SQLite write lock), so two
dispatchers never promote past a cap:

1. **Per-user concurrency** (``RATE_LIMITS.active_jobs``: free 2, pro 10,
   enterprise 50; admins unlimited): a user's pending + running jobs never exceed
   it. Jobs over it wait; they are never refused.
2. **A short broker queue**: at most ``QUEUE_DISPATCH_AHEAD`` jobs (default 1) are
   ``pending`` (sent, not claimed) at a time. The order is decided here, at the
   moment a worker can take the job, not when it was submitted: a job that arrives
   behind another user's deep backlog waits for at most that many dispatched jobs
   plus the runs in progress, i.e. about one job run per worker.
3. **Fair order across users** (weighted round-robin): among users below their cap,
   the one with the fewest dispatched jobs per tier weight goes first (weights:
   free 1, pro 2, enterprise 4, admins 4), ties broken by who was served least
   recently (never-served users first), then by user id. One user's 100 queued jobs
   take one turn per round like anyone else's single job.
4. **Small jobs first within a user**: a user's queued jobs go cheapest first by the
   cost estimate stored at submission (:func:`estimate_cost`), then oldest first.

**Lock-free hand-over.** Under a burst, hundreds of submissions each trigger a
dispatch, nearly all with nothing to move (the broker queue already holds its
``QUEUE_DISPATCH_AHEAD`` jobs). Each dispatch therefore first looks without the
lock (room, and a waiting user below its cap) and stops when nothing can move;
a submission's or a worker's dispatch then only *tries* the lock and gives up
when another dispatcher holds it, so a worker whose run just ended never waits
in line behind submissions (it used to; measured, that cost little: 0.04 s a
claim, the queue section of BENCHMARKS.md). Nothing
is left behind, because every dispatcher that held the lock looks again once it
has released it, and passes again if something can move:

* a trigger that found no room: the jobs holding the room are pending; each one's
  claim (or cancel, or the sweeper's re-send) commits later and runs a dispatch
  that sees the trigger's change;
* a trigger that found every waiting user at its cap: each of those users' runs
  ends later and runs a dispatch;
* a trigger that gave up on the lock: its change was committed before it tried,
  so the holder's look after releasing sees it (and if that look's own pass finds
  the lock taken again, the new holder looks after *it*).

The sweep (and a cancel) still wait for the lock, and the sweep every
``SWEEP_INTERVAL_SECONDS`` heals anything a crash between two of these steps
left. The caps stay exact: jobs are only ever promoted under the lock, after
counting again.

The queue's backstop (``RATE_LIMITS.waiting_jobs``: free 20, pro 200, enterprise
2,000 queued per user; admins unlimited) is enforced at submission
(:mod:`app.jobs.quotas`).

``queue_position`` / ``eta_seconds`` of a queued job (:func:`estimate`) are an
estimate of the round-robin above: ``position = pending + own_ahead + 1 +
sum(min(q, own_ahead + 1) for q in other users' queued counts)`` (each other user
gets at most one turn per round before this job's round), and ``eta_seconds =
position × mean run time / max(running, 1)`` with the mean of the last 50 completed
runs (``QUEUE_DEFAULT_RUN_SECONDS`` before any). Both are re-estimated on every read.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.db.base import utcnow
from app.jobs import limits
from app.jobs import repository as jobs_repo
from app.jobs.repository import JobView, QueueUser, Reader

log = structlog.get_logger(__name__)

# Round-robin weights: a user's dispatched jobs are divided by this before
# comparing users (a pro user gets twice a free user's share of the workers).
TIER_WEIGHTS: dict[str, float] = {"free": 1.0, "pro": 2.0, "enterprise": 4.0}
ADMIN_WEIGHT = 4.0
# A dispatch moves at most this many jobs in one transaction (the rest next time).
MAX_PER_DISPATCH = 100
# Passes of one dispatch (each: look, lock, move): it looks again after each pass
# for what arrived while it held the lock; bounded against a pathological churn
# (the sweep, seconds away, catches up).
MAX_PASSES = 10
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class Dispatched:
    """What one :func:`dispatch` did: jobs sent, and jobs whose send failed (put
    back in the queue; ``error`` is the last such exception)."""

    sent: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    error: Exception | None = None


def weight(user: QueueUser) -> float:
    return ADMIN_WEIGHT if user.is_admin else TIER_WEIGHTS.get(user.tier, 1.0)


def cap(user: QueueUser, settings: Settings) -> int | None:
    """The user's concurrency cap (None: unlimited)."""
    if user.is_admin or not settings.rate_limit_enabled:
        return None
    return settings.rate_limits.active_jobs.get(user.tier, 1)  # type: ignore[call-overload, no-any-return]


def _eligible(user: QueueUser, settings: Settings) -> bool:
    limit = cap(user, settings)
    return user.queued > 0 and (limit is None or user.active < limit)


def _turn(user: QueueUser) -> tuple[float, dt.datetime, str]:
    """Sort key: fewest dispatched per weight, least recently served, user id."""
    return (
        user.active / weight(user),
        user.last_dispatched_at or _NEVER,
        str(user.user_id),
    )


def pick_order(
    users: list[QueueUser], settings: Settings, slots: int, now: dt.datetime
) -> list[uuid.UUID]:
    """The users whose next queued job gets each of ``slots`` slots, in order
    (pure: the fair-order rules above, without the database)."""
    state = {u.user_id: u for u in users}
    chosen: list[uuid.UUID] = []
    for turn in range(slots):
        ready = [u for u in state.values() if _eligible(u, settings)]
        if not ready:
            break
        user = min(ready, key=_turn)
        chosen.append(user.user_id)
        state[user.user_id] = QueueUser(
            user_id=user.user_id,
            tier=user.tier,
            is_admin=user.is_admin,
            queued=user.queued - 1,
            active=user.active + 1,
            # Later turns of one dispatch count as later: round-robin within it.
            last_dispatched_at=now + dt.timedelta(microseconds=turn),
        )
    return chosen


async def dispatch(
    session: AsyncSession,
    *,
    settings: Settings,
    enqueue: limits.Sender,
    now: dt.datetime | None = None,
    wait: bool = True,
) -> Dispatched:
    """Promote queued jobs in fair order while there is room, then send them.

    The promotion (guarded ``queued → pending``) commits before any message is sent,
    so a worker never receives a job that is still ``queued``. A send that fails
    puts its job back to ``queued`` and stops this dispatch (the broker is down: the
    next trigger or sweep tries again). Starts with no open transaction.

    Without the lock first (see "Lock-free hand-over" in the module docstring):
    nothing to move (no room, or every waiting user at its cap) ends here.
    ``wait=False`` (a submission, a worker's claim or finished run) then only
    tries the lock and gives up when another dispatcher holds it; ``wait=True``
    (the sweep, a cancel) waits for it. Whoever held the lock looks again once it
    has released it, so a job whose trigger gave up is never left behind."""
    result = Dispatched()
    for _ in range(MAX_PASSES):
        if not await _movable(session, settings, now or utcnow()):
            break
        if not await jobs_repo.lock_dispatcher(session, wait=wait):
            await session.commit()  # ends the transaction; the holder looks again
            break
        # Stamped once the lock is held, so dispatch times follow the order in
        # which dispatchers actually ran (the round-robin's "least recently").
        await _dispatch_locked(session, settings, enqueue, now or utcnow(), result)
        if result.error is not None:
            break
        wait = False  # a later pass: whoever holds the lock now looks after us
    if result.sent or result.failed:
        log.info("queue.dispatched", sent=len(result.sent), failed=len(result.failed))
    return result


async def _room(session: AsyncSession, settings: Settings, now: dt.datetime) -> int:
    """Free places in the broker queue: ``QUEUE_DISPATCH_AHEAD`` minus the jobs sent
    and not claimed yet. A job sent longer ago than ``pending_requeue_seconds`` and
    still unclaimed has lost its message (a worker died holding it, a broker
    restart): the sweeper re-sends it, and it no longer holds back everyone else."""
    fresh = now - dt.timedelta(seconds=settings.pending_requeue_seconds)
    pending = await jobs_repo.count_pending(session, sent_after=fresh)
    return settings.queue_dispatch_ahead - pending


async def _movable(session: AsyncSession, settings: Settings, now: dt.datetime) -> bool:
    """Whether a dispatch would move a job now (room, and a waiting user below its
    cap), read without the lock; ends its read transaction (SQLite must not upgrade
    a stale read to the write lock; a commit keeps the caller's objects loaded)."""
    movable = await _room(session, settings, now) > 0 and bool(
        pick_order(await jobs_repo.queue_users(session), settings, 1, now)
    )
    await session.commit()
    return movable


async def _dispatch_locked(
    session: AsyncSession,
    settings: Settings,
    enqueue: limits.Sender,
    now: dt.datetime,
    result: Dispatched,
) -> None:
    """One pass under the dispatcher lock (held by the open transaction): promote,
    commit (releasing the lock), send."""
    room = await _room(session, settings, now)
    if room <= 0:
        # Ends the transaction (releases the lock); a commit, not a rollback, so
        # the caller's loaded objects are not expired.
        await session.commit()
        return
    users = await jobs_repo.queue_users(session)
    promoted: list[uuid.UUID] = []
    order = pick_order(users, settings, min(room, MAX_PER_DISPATCH), now)
    for turn, user_id in enumerate(order):
        job_id = await jobs_repo.next_queued(session, user_id)
        at = now + dt.timedelta(microseconds=turn)  # the round-robin's order
        if job_id is not None and await jobs_repo.mark_dispatched(
            session, job_id, now=at
        ):
            promoted.append(job_id)
    await session.commit()
    for job_id in promoted:
        if result.error is None:
            try:
                row = await jobs_repo.get(session, job_id)
                if row is None:  # deleted meanwhile: nothing to send
                    continue
                # the job's own time limits travel in its message (app.jobs.limits)
                job_limits = await limits.limits_of(session, row, settings)
                await anyio.to_thread.run_sync(enqueue, str(job_id), job_limits)
            except Exception as exc:
                if unavailable_dependency(exc) is None:
                    raise
                result.error = exc
        if result.error is not None:
            result.failed.append(job_id)
            await jobs_repo.undispatch(session, job_id)
            await session.commit()
            continue
        await jobs_repo.mark_enqueued(session, job_id)  # sent now
        await session.commit()
        result.sent.append(job_id)


async def dispatch_quietly(
    session: AsyncSession,
    *,
    settings: Settings,
    enqueue: limits.Sender,
    wait: bool = True,
) -> Dispatched | None:
    """:func:`dispatch` where a failure must not fail the caller (a finished run, a
    cancel): an outage is logged and left to the next trigger or sweep."""
    try:
        return await dispatch(session, settings=settings, enqueue=enqueue, wait=wait)
    except Exception as exc:
        await session.rollback()
        dependency = unavailable_dependency(exc)
        if dependency is None:
            log.exception("queue.dispatch_failed")
        else:
            log.warning("queue.dispatch_skipped", dependency=dependency)
        return None


@dataclass(frozen=True)
class QueueEstimate:
    position: int
    eta_seconds: float


async def estimate(
    reader: Reader, job: JobView, *, user_id: uuid.UUID, settings: Settings
) -> QueueEstimate:
    """Queue position (1 = next to start) and the estimated wait of a queued job
    (the formula in the module docstring)."""
    snap = await jobs_repo.queue_snapshot(reader, job, user_id)
    rounds = snap.own_ahead + 1
    position = (
        snap.pending + snap.own_ahead + 1 + sum(min(q, rounds) for q in snap.others)
    )
    run = snap.mean_run_seconds or settings.queue_default_run_seconds
    eta = position * run / max(snap.running, 1)
    return QueueEstimate(position=position, eta_seconds=round(eta, 1))


def retry_after_seconds(mean_run_seconds: float | None, settings: Settings) -> int:
    """When a user at the waiting backstop may expect room: one mean run."""
    run = mean_run_seconds or settings.queue_default_run_seconds
    return min(max(math.ceil(run) + 1, 1), 3600)


# --- the cost model ----------------------------------------------------------------

# Trading sessions per calendar day (252 of 365).
SESSIONS_PER_DAY = 252 / 365
# The symbols a backtest without ``symbols`` scans (the bundled universe's order of
# magnitude); only relative costs matter.
DEFAULT_SYMBOLS = 500
DECISIONS_PER_SESSION = {
    "daily": 1.0,
    "weekly": 1 / 5,
    "monthly": 1 / 21,
    "quarterly": 1 / 63,
}


def estimate_cost(config: dict[str, Any]) -> float:
    """A job's relative cost, from its stored configuration: symbols × sessions ×
    (1 + decision rows per session × 10), a sweep's base cost × its combinations
    (× walk-forward windows). Used only to order one user's own queued jobs, so
    only the ratios matter; 1.0 when the configuration says nothing usable."""
    try:
        if "base" in config and "combinations" in config:
            windows = max(len(config.get("walk_forward_windows") or []), 1)
            combos = max(int(config["combinations"]), 1)
            return estimate_cost(config["base"]) * combos * windows
        start = dt.date.fromisoformat(str(config["start_date"]))
        end = dt.date.fromisoformat(str(config["end_date"]))
    except (KeyError, TypeError, ValueError):
        return 1.0
    symbols = config.get("symbols")
    n_symbols = len(symbols) if isinstance(symbols, list) and symbols else None
    sessions = max((end - start).days, 1) * SESSIONS_PER_DAY
    decisions = DECISIONS_PER_SESSION.get(str(config.get("rebalancing")), 1 / 21)
    return float((n_symbols or DEFAULT_SYMBOLS) * sessions * (1 + 10 * decisions))
