"""Per-job time limits, from the owner's tier and the job's kind.

A job's **soft** limit is ``JOB_TIME_LIMIT_SECONDS`` (10 minutes), or what its kind
asks for (``JobKind.time_limit_seconds``: a sweep asks for an hour), never more than
its owner's tier allows (``JOB_TIME_LIMIT_MAX_SECONDS``: 10 minutes for free and
pro, 1 hour for enterprise and admins). The **hard** limit is the soft one plus
``JOB_TIME_LIMIT_GRACE_SECONDS`` (60 s).

The runner checks the soft deadline at every progress and cancel check (at least
every second in every phase) and fails the job with ``error_code`` "timeout" ("The
backtest took longer than 10 minutes ..."); that is also what enforces it on the
embedded worker's threads (Celery's thread pool has no time limits). Both limits
also travel in the Celery message (``soft_time_limit`` / ``time_limit``): the prefork
pool raises ``SoftTimeLimitExceeded`` in the task ``CELERY_SOFT_MARGIN_SECONDS``
after the soft limit (a run that missed its checks; the job fails the same way) and
kills the process at the hard one (a backstop for a run stuck outside Python; that
counts as a stopped worker, see :mod:`app.jobs.deadletters`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.queue import enqueue_job
from app.db.models import Job, User
from app.jobs import registry


@dataclass(frozen=True)
class TimeLimits:
    soft_seconds: int
    hard_seconds: int


def time_limits(
    settings: Settings, *, tier: str, is_admin: bool, kind: str
) -> TimeLimits:
    default = settings.job_time_limit_seconds
    wanted = default
    with contextlib.suppress(LookupError):  # an unregistered kind: the default
        wanted = registry.get(kind).time_limit_seconds or default
    key = "admin" if is_admin else tier
    ceiling = settings.job_time_limit_max_seconds.get(key, default)
    soft = min(wanted, ceiling)
    return TimeLimits(soft, soft + settings.job_time_limit_grace_seconds)


async def limits_of(session: AsyncSession, row: Job, settings: Settings) -> TimeLimits:
    """The limits of a stored job (its owner's tier as it is now)."""
    owner = await session.get(User, row.user_id)
    tier = owner.tier if owner is not None else "free"
    is_admin = bool(owner is not None and owner.is_admin)
    return time_limits(settings, tier=tier, is_admin=is_admin, kind=row.kind)


# Celery's soft limit fires this long after the runner's own check would have: the
# check stops the job at a clean point, the signal only when no check came.
CELERY_SOFT_MARGIN_SECONDS = 2


def celery_limits(limits: TimeLimits) -> tuple[int, int]:
    """``(soft_time_limit, time_limit)`` of a Celery message working for a job with
    ``limits`` (the job's own message, and the helper tasks of a sweep)."""
    soft = min(
        limits.soft_seconds + CELERY_SOFT_MARGIN_SECONDS, limits.hard_seconds - 1
    )
    return soft, limits.hard_seconds


def send(job_id: str, limits: TimeLimits) -> str:
    """``enqueue_job`` with the job's limits; blocking (call from a thread)."""
    soft, hard = celery_limits(limits)
    return enqueue_job(job_id, soft_time_limit=soft, time_limit=hard)


Sender = Callable[[str, TimeLimits], str]


def describe(seconds: float) -> str:
    """``600`` → "10 minutes", ``90`` → "90 seconds" (for error messages)."""
    whole = int(seconds)
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{whole} second{'s' if whole != 1 else ''}"
