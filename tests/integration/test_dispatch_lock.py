"""The dispatcher's lock-free hand-over (app.jobs.scheduler), on PostgreSQL.

A submission's or a worker's dispatch only *tries* the dispatcher lock and gives up
when another dispatcher holds it (so a slot whose run ended never queues behind a
burst of submissions); the holder looks again once it has released the lock, so the
job whose trigger gave up is not left waiting for the next sweep. The sweep's
dispatch still waits for the lock. A scratch database of its own: these tests
commit, and count every pending job.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.db.models import Job, JobStatus, User
from app.db.session import create_engine
from app.jobs import limits, scheduler
from app.jobs import repository as jobs_repo
from tests.integration.conftest import migrated_database

pytestmark = pytest.mark.integration

LOCK_KEY = 0x6A6F627364697370  # app.jobs.repository._DISPATCH_LOCK_KEY
# A guard against a hang, not a timing: each awaited step takes milliseconds.
GUARD_SECONDS = 60


@pytest.fixture(scope="module")
def lock_database_url() -> Iterator[str]:
    with migrated_database("bt_dispatch") as url:
        yield url


@pytest.fixture
async def lock_engine(lock_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(_settings(lock_database_url, ahead=1))
    try:
        async with engine.begin() as conn:  # each test starts from an empty queue
            await conn.execute(text("DELETE FROM jobs"))
        yield engine
    finally:
        await engine.dispose()


def _settings(url: str, *, ahead: int) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        jwt_secret=uuid.uuid4().hex * 2,
        log_json=False,
        log_level="WARNING",
        queue_dispatch_ahead=ahead,
    )


class Sent:
    """The broker, as the dispatcher sees it: records the ids it is handed."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, job_id: str, _: limits.TimeLimits) -> str:
        self.ids.append(job_id)
        return job_id


async def _queued_job(sessions: async_sessionmaker[AsyncSession]) -> Job:
    """A new free user with one committed ``queued`` job."""
    async with sessions() as session:
        user = User(username=f"u{uuid.uuid4().hex[:12]}", password_hash="x")
        session.add(user)
        await session.flush()
        job = await jobs_repo.create(
            session,
            user_id=user.id,
            kind="backtest",
            config={},
            status=JobStatus.QUEUED,
        )
        await session.commit()
        return job


async def _status(sessions: async_sessionmaker[AsyncSession], job: Job) -> str:
    async with sessions() as session:
        return str(await session.scalar(select(Job.status).where(Job.id == job.id)))


async def _hold_lock(engine: AsyncEngine) -> Any:
    """Another dispatcher holding the lock: an open transaction that took it."""
    conn = await engine.connect()
    await conn.begin()
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    return conn


async def test_a_trigger_does_not_wait_for_a_held_lock(
    lock_engine: AsyncEngine, lock_database_url: str
) -> None:
    settings = _settings(lock_database_url, ahead=1)
    sessions = async_sessionmaker(lock_engine, expire_on_commit=False)
    job = await _queued_job(sessions)
    sent = Sent()
    holder = await _hold_lock(lock_engine)
    try:
        async with sessions() as session:
            # Returns while the lock is still held: it did not wait for it.
            gave_up = await asyncio.wait_for(
                scheduler.dispatch(
                    session, settings=settings, enqueue=sent, wait=False
                ),
                GUARD_SECONDS,
            )
        assert gave_up.sent == [] and sent.ids == []
        assert await _status(sessions, job) == "queued"
    finally:
        await holder.rollback()
        await holder.close()
    async with sessions() as session:
        done = await scheduler.dispatch(
            session, settings=settings, enqueue=sent, wait=False
        )
    assert done.sent == [job.id] and sent.ids == [str(job.id)]
    assert await _status(sessions, job) == "pending"


async def test_the_sweep_waits_for_a_held_lock(
    lock_engine: AsyncEngine, lock_database_url: str
) -> None:
    settings = _settings(lock_database_url, ahead=1)
    sessions = async_sessionmaker(lock_engine, expire_on_commit=False)
    job = await _queued_job(sessions)
    sent = Sent()
    holder = await _hold_lock(lock_engine)
    async with sessions() as session:
        waiting = asyncio.create_task(
            scheduler.dispatch(session, settings=settings, enqueue=sent, wait=True)
        )
        try:
            async with asyncio.timeout(GUARD_SECONDS):
                while not await _lock_waiters(lock_engine):
                    assert not waiting.done(), waiting.result()
                    await asyncio.sleep(0.01)
            assert sent.ids == []  # in line for the lock, nothing sent yet
        finally:
            await holder.rollback()
            await holder.close()
        done = await asyncio.wait_for(waiting, GUARD_SECONDS)
    assert done.sent == [job.id]


async def _lock_waiters(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND NOT granted"
            )
        )
    return int(found or 0)


async def test_the_holder_moves_the_job_whose_trigger_gave_up(
    lock_engine: AsyncEngine,
    lock_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The holder read the queue before job J existed; J's own trigger gave up on
    the lock. Once the holder has released it, it looks again and sends J: without
    that second look J would wait for the next sweep."""
    settings = _settings(lock_database_url, ahead=2)
    sessions = async_sessionmaker(lock_engine, expire_on_commit=False)
    first = await _queued_job(sessions)
    sent = Sent()
    real_queue_users = jobs_repo.queue_users
    read, resume = asyncio.Event(), asyncio.Event()
    holder_session = sessions()

    async def queue_users_then_pause(session: AsyncSession) -> Any:
        users = await real_queue_users(session)
        # The holder's read under the lock (its second: the first is the look
        # before locking): pause it there, the lock held, J not seen.
        if session is holder_session and not read.is_set():
            locked = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND pid = pg_backend_pid()"
                )
            )
            if locked:
                read.set()
                await resume.wait()
        return users

    monkeypatch.setattr(jobs_repo, "queue_users", queue_users_then_pause)
    async with holder_session:
        holder = asyncio.create_task(
            scheduler.dispatch(
                holder_session, settings=settings, enqueue=sent, wait=False
            )
        )
        await asyncio.wait_for(read.wait(), GUARD_SECONDS)
        late = await _queued_job(sessions)
        async with sessions() as session:
            gave_up = await asyncio.wait_for(
                scheduler.dispatch(
                    session, settings=settings, enqueue=sent, wait=False
                ),
                GUARD_SECONDS,
            )
        assert gave_up.sent == [] and await _status(sessions, late) == "queued"
        resume.set()
        moved = await asyncio.wait_for(holder, GUARD_SECONDS)
    assert moved.sent == [first.id, late.id]
    assert sent.ids == [str(first.id), str(late.id)]
    assert await _status(sessions, late) == "pending"
