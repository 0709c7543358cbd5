"""At-most-once submission with the ``Idempotency-Key`` header (per user), for every
kind of job (:func:`submit_once`).

* The first request with a key inserts ``(user_id, key)`` as *in flight* and commits;
  the primary key lets exactly one of any number of concurrent requests win.
* When it succeeds its response (status + JSON body) is stored with the key; a later
  request with the same key and the same body gets that response again (header
  ``Idempotent-Replayed: true``): no new job, no quota consumed.
* When it fails (400, 429, 503, ...) the key is released, so the client can retry
  with the same key; only successes are remembered.
* Same key, different body → 422 ``IdempotencyKeyMismatch``; same key while the first
  request is still in flight → 409 ``Conflict``.

"Same body" means the same *validated* request (canonical JSON of the parsed model,
so whitespace, key order and spelled-out defaults do not matter), hashed with SHA-256.

Keys are kept at least ``IDEMPOTENCY_TTL_HOURS`` (≥ 24 h). Expiry is lazy: a user's
expired keys are deleted when that user next sends a key, and an expired key found on
conflict is replaced. ``purge_expired`` deletes all of them (for a periodic job). An
in-flight key older than ``IN_FLIGHT_STALE_SECONDS`` belongs to a request that died
(process killed) and may be taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError, Conflict
from app.db.base import utcnow
from app.db.models import IdempotencyKey, IdempotencyStatus, User
from app.jobs import idempotency_repository as repo

logger = structlog.get_logger(__name__)
IN_FLIGHT_STALE_SECONDS = 120
REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyKeyMismatch(AppError):  # noqa: N818 - the public error code
    def __init__(self) -> None:
        super().__init__(
            "IdempotencyKeyMismatch",
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a different request.",
            422,
        )


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(request: BaseModel, *, scope: str = "") -> str:
    """SHA-256 of the validated request (and of ``scope``, the kind of job, so one key
    used for two kinds of submission is a mismatch even with equal bodies)."""
    canonical = json.dumps(
        {"scope": scope, "request": request.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_once(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    settings: Settings,
    action: Callable[[], Awaitable[Outcome]],
) -> Outcome:
    """``action()`` at most once per ``(user_id, key)``; see the module docstring."""
    replay = await _claim(session, user_id, key, request_hash, settings)
    if replay is not None:
        return replay
    try:
        outcome = await action()
    except BaseException:
        await _release(session, user_id, key)
        raise
    await repo.complete(
        session,
        user_id=user_id,
        key=key,
        status_code=outcome.status_code,
        body=outcome.body,
    )
    await session.commit()
    return outcome


async def _claim(
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    settings: Settings,
) -> Outcome | None:
    """None when this request now holds the key; the stored outcome to replay; or
    409/422."""
    now = utcnow()
    expired_before = now - dt.timedelta(hours=settings.idempotency_ttl_hours)
    await repo.delete_expired(session, created_before=expired_before, user_id=user_id)
    for _ in range(2):  # a second try after removing an expired or abandoned key
        try:
            await repo.insert(
                session, user_id=user_id, key=key, request_hash=request_hash
            )
            await session.commit()
            return None
        except IntegrityError:
            existing = await repo.get(session, user_id=user_id, key=key)
        if existing is None:  # released in the meantime: try again
            continue
        if _abandoned(existing, now):
            await repo.remove(session, user_id=user_id, key=key)
            continue
        return _decide(existing, request_hash)
    raise Conflict("A request with this Idempotency-Key is being processed.")


def _abandoned(record: IdempotencyKey, now: dt.datetime) -> bool:
    age = (now - record.created_at).total_seconds()
    return record.status == IdempotencyStatus.IN_FLIGHT.value and (
        age > IN_FLIGHT_STALE_SECONDS
    )


def _decide(record: IdempotencyKey, request_hash: str) -> Outcome:
    if record.request_hash != request_hash:
        raise IdempotencyKeyMismatch()
    if record.status != IdempotencyStatus.COMPLETED.value:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; "
            "retry in a moment to get its response."
        )
    return Outcome(
        status_code=record.response_status or 200,
        body=dict(record.response_body or {}),
        replayed=True,
    )


async def _release(session: AsyncSession, user_id: uuid.UUID, key: str) -> None:
    """Forget the key of a failed request (best effort: an unreleased key is taken
    over once it is IN_FLIGHT_STALE_SECONDS old)."""
    try:
        await session.rollback()
        await repo.remove(session, user_id=user_id, key=key)
        await session.commit()
    except Exception:
        logger.warning("idempotency.release_failed", key_length=len(key), exc_info=True)


async def purge_expired(session: AsyncSession, *, settings: Settings) -> int:
    """Delete every expired key (all users) and commit; returns how many."""
    cutoff = utcnow() - dt.timedelta(hours=settings.idempotency_ttl_hours)
    removed = await repo.delete_expired(session, created_before=cutoff)
    await session.commit()
    return removed


async def submit_once(
    session: AsyncSession,
    *,
    user: User,
    request: BaseModel,
    scope: str,
    settings: Settings,
    key: str | None,
    create: Callable[[], Awaitable[dict[str, Any]]],
) -> Outcome:
    """``create()`` (validate, admit, store, queue; returns the 200 body) at most once
    per ``key`` when one is given."""

    async def action() -> Outcome:
        return Outcome(status_code=200, body=await create())

    if key is None:
        return await action()
    return await run_once(
        session,
        user_id=user.id,
        key=key,
        request_hash=fingerprint(request, scope=scope),
        settings=settings,
        action=action,
    )
