"""SQL of share links (repositories never commit)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Job, JobShare


async def replace(session: AsyncSession, job_id: uuid.UUID, token_hash: str) -> None:
    await session.execute(delete(JobShare).where(JobShare.job_id == job_id))
    session.add(JobShare(job_id=job_id, token_hash=token_hash))
    await session.flush()


async def remove(session: AsyncSession, job_id: uuid.UUID) -> bool:
    result = await session.execute(delete(JobShare).where(JobShare.job_id == job_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def shared_job(session: AsyncSession, token_hash: str) -> Job | None:
    query = (
        select(Job)
        .join(JobShare, JobShare.job_id == Job.id)
        .where(JobShare.token_hash == token_hash)
    )
    return (await session.scalars(query)).first()
