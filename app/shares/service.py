"""Share links: create (replacing any previous link), revoke, read publicly.

The token is 256 random bits (``secrets.token_urlsafe(32)``); only its SHA-256 is
stored. Revoking deletes the row, so the next public read is a 404 at once (public
responses are ``no-store``: no cache keeps serving a revoked page). Deleting the job
deletes its link (foreign key cascade)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import NotFound
from app.db.models import JobStatus, User
from app.jobs import registry
from app.jobs import service as jobs
from app.shares import repository
from app.shares.schemas import PublicResult, ShareCreated

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def page_url(token: str, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/s/{token}"


async def share(
    session: AsyncSession, *, user: User, task_id: str, kind: str, settings: Settings
) -> ShareCreated:
    """A new public link to a completed job (409 before it completed)."""
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=kind)
    jobs.require_completed(row)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await repository.replace(session, row.id, token_hash(token))
    await session.commit()
    return ShareCreated(token=token, url=page_url(token, settings))


async def revoke(session: AsyncSession, *, user: User, task_id: str, kind: str) -> None:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=kind)
    await repository.remove(session, row.id)
    await session.commit()


async def public(session: AsyncSession, *, token: str) -> PublicResult:
    """The shared job, or 404 (unknown or revoked link; a job no longer
    completed)."""
    row = None
    if 20 <= len(token) <= 100:
        row = await repository.shared_job(session, token_hash(token))
    if row is None or row.status != JobStatus.COMPLETED.value:
        raise NotFound("This link does not exist or has been revoked.")
    api = registry.api_of(row.kind)
    hidden = api.private_fields | {"name"}
    config = {k: v for k, v in (row.config or {}).items() if k not in hidden}
    results: dict[str, Any] = {}
    if api.public_results is not None:
        results = await api.public_results(session, row.id)
    return PublicResult(
        kind=row.kind,
        name=row.name,
        config=config,
        metrics=row.metrics,
        completed_at=row.completed_at,
        results=results,
    )
