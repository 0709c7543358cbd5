"""Submission quotas, for every kind of job (each job counts as one submission,
whatever its kind): the per-tier cap on *waiting* (queued) jobs and the per-tier
rolling-window limit on accepted submissions (``settings.rate_limits``). The per-tier
cap on *running* jobs (``active_jobs``) does not refuse anything: jobs over it wait
as ``queued`` (``app.jobs.scheduler``).

``reserve`` runs inside the submission's transaction, after the request has been
validated and before the job row is inserted, so an invalid request (400) or a refused
one (429) consumes nothing. It first locks the user's row (``SELECT ... FOR UPDATE``):
a user's submissions are serialised across API processes until the job row commits,
which makes both counts exact. Then, in order:

1. queued jobs ≥ the tier's ``waiting_jobs`` backstop → 429;
2. jobs created in the window (database) ≥ the limit → 429. This costs one indexed
   query and keeps the limit exact after a Redis outage, when Redis has not seen the
   submissions admitted through the fallback;
3. the Redis moving window (atomic test-and-hit) → 429 when full. If Redis is
   unavailable the database count of step 2 decides (or 503 with
   ``RATE_LIMIT_SUBMIT_FALLBACK=reject``): never a 500, never over quota.

Admins are exempt. A submission that fails after ``reserve`` (the insert, the
commit, the queue: any 5xx) calls :meth:`SubmissionQuota.refund`, which gives the
Redis slot back; the job service deletes the row, so the database count (step 2)
forgets it too. A failed request costs nothing.

``lock_user`` is ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite ignores that, so
there it is a no-op write to the user's row, which takes SQLite's database write
lock until the transaction ends: the same serialisation of a user's submissions.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import limits
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, TierName
from app.core.errors import ServiceUnavailable
from app.core.rate_limit import (
    RATE_LIMIT_FAIL_OPEN,
    Decision,
    LimiterUnavailable,
    RateLimiter,
    count_rejection,
    parse_rule,
)
from app.db.base import utcnow
from app.db.models import User
from app.jobs import repository as jobs_repo
from app.jobs import scheduler


def _ignore(_: Decision) -> None:
    return None


@dataclass
class SubmissionQuota:
    limiter: RateLimiter
    settings: Settings
    # Receives the window decision (the route's rate-limit headers come from it).
    on_decision: Callable[[Decision], None] = field(default=_ignore)
    # The (rule, user id) of the Redis slot this request took, for ``refund``.
    _taken: tuple[str, str] | None = field(default=None, init=False)

    async def reserve(self, session: AsyncSession, *, user: User) -> None:
        """Admit one submission for ``user`` or raise ``RateLimited``."""
        if not self.limiter.enabled or user.is_admin:
            return
        tier: TierName = user.tier  # type: ignore[assignment]
        rules = self.limiter.rules
        await jobs_repo.lock_user(session, user.id)
        await self._check_waiting(session, user, tier, rules.waiting_jobs[tier])
        item = parse_rule(rules.submit[tier])
        from_db = await self._database_window(session, user, item)
        if not from_db.allowed:
            self._refuse(from_db, tier, item)
        try:
            decision = await self.limiter.hit(
                rules.submit[tier], "submit", str(user.id)
            )
        except LimiterUnavailable:
            RATE_LIMIT_FAIL_OPEN.labels(rule="submit").inc()
            if self.settings.rate_limit_submit_fallback == "reject":
                raise ServiceUnavailable(
                    "Submissions are paused: the rate limiter is unavailable.",
                    retry_after=max(
                        math.ceil(self.settings.rate_limit_redis_retry_seconds), 1
                    ),
                ) from None
            decision = from_db
        else:
            self._taken = (
                (rules.submit[tier], str(user.id)) if decision.allowed else None
            )
        if not decision.allowed:
            self._refuse(decision, tier, item)
        self.on_decision(decision)

    async def refund(self) -> None:
        """Give back the slot ``reserve`` took (the submission failed after it)."""
        if self._taken is not None:
            rule, user_id = self._taken
            self._taken = None
            await self.limiter.refund(rule, "submit", user_id)

    async def _check_waiting(
        self, session: AsyncSession, user: User, tier: str, cap: int
    ) -> None:
        """The queue's backstop: at most ``cap`` queued jobs per user. Refused
        like every other limit: 429, ``Retry-After`` and the rate-limit headers of
        this limit (``RateLimit-Policy: <cap>;w=<Retry-After>``)."""
        waiting = await jobs_repo.count_queued(session, user.id)
        if waiting < cap:
            return
        retry = scheduler.retry_after_seconds(
            await jobs_repo.mean_run_seconds(session), self.settings
        )
        decision = Decision(
            allowed=False,
            limit=cap,
            remaining=0,
            window_seconds=retry,
            reset_at=time.time() + retry - 0.5,
        )
        self.on_decision(decision)
        count_rejection(tier)
        raise decision.error(
            f"Too many waiting jobs: the {tier} tier may have {cap} queued at a "
            f"time and you have {waiting}. They start as running ones finish; "
            f"retry in {decision.retry_after()} s or cancel one."
        )

    async def _database_window(
        self, session: AsyncSession, user: User, item: limits.RateLimitItem
    ) -> Decision:
        """The window counted from the user's job rows (created_at)."""
        window = item.get_expiry()
        now = utcnow()
        created = await jobs_repo.recent_creations(
            session,
            user.id,
            since=now - dt.timedelta(seconds=window),
            limit=item.amount,
        )
        allowed = len(created) < item.amount
        # Full: a slot frees when the limit-th newest job leaves the window.
        oldest = created[-1].timestamp() if created else now.timestamp()
        return Decision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(item.amount - len(created) - (1 if allowed else 0), 0),
            window_seconds=window,
            reset_at=oldest + window,
        )

    def _refuse(
        self, decision: Decision, tier: str, item: limits.RateLimitItem
    ) -> None:
        self.on_decision(decision)
        count_rejection(tier)
        raise decision.error(
            f"Submission limit reached: the {tier} tier allows {item.amount} "
            f"jobs (backtests and sweeps) per {_window_text(item.get_expiry())}. "
            f"Retry in {decision.retry_after()} s."
        )


def _window_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"
