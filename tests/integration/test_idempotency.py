"""``Idempotency-Key`` on POST /v1/backtest: replay, mismatch, in flight, concurrency,
release on failure and expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.db.models import IdempotencyKey, Job, User
from app.db.session import create_sessionmaker
from app.jobs import idempotency_repository as idempotency_repo
from tests.integration.conftest import UserFactory
from tests.integration.limits_support import (
    VALID_BODY,
    app_on_engine,
    app_on_session,
    client_for,
    committed_user,
    limit_settings,
)

Headers = Callable[[User], dict[str, str]]
OTHER_BODY = {**VALID_BODY, "name": "another"}


async def _jobs(session: AsyncSession, user: User) -> int:
    query = select(func.count()).where(Job.user_id == user.id)
    return int(await session.scalar(query) or 0)


def _with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def _submit(
    c: httpx.AsyncClient,
    headers: dict[str, str],
    key: str,
    body: dict[str, Any] = VALID_BODY,
) -> httpx.Response:
    """POST /v1/backtest with ``Idempotency-Key: key``."""
    return await c.post("/v1/backtest", json=body, headers=_with_key(headers, key))


async def test_same_key_same_body_replays_without_new_job_or_quota(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings, rules={"submit": {"free": "2/hour"}})
    user = await user_factory()
    headers = _with_key(auth_headers(user), "key-1")
    async with client_for(app_on_session(settings, session)) as client:
        first = await client.post("/v1/backtest", json=VALID_BODY, headers=headers)
        replays = [
            await client.post("/v1/backtest", json=VALID_BODY, headers=headers)
            for _ in range(3)
        ]
        other = await client.post(
            "/v1/backtest",
            json=VALID_BODY,
            headers=_with_key(auth_headers(user), "key-2"),
        )

    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    for replay in replays:
        assert replay.status_code == 200
        assert replay.json() == first.json()
        assert replay.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 200  # the replays consumed none of the 2 slots
    assert await _jobs(session, user) == 2


async def test_same_key_different_body_is_422(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    headers = _with_key(auth_headers(user), "key-1")
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        first = await c.post("/v1/backtest", json=VALID_BODY, headers=headers)
        second = await c.post("/v1/backtest", json=OTHER_BODY, headers=headers)

    assert first.status_code == 200
    assert second.status_code == 422
    assert second.json()["error"] == "IdempotencyKeyMismatch"
    assert await _jobs(session, user) == 1


async def test_key_is_scoped_per_user(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    alice, bob = await user_factory(), await user_factory()
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        a = await c.post(
            "/v1/backtest",
            json=VALID_BODY,
            headers=_with_key(auth_headers(alice), "k"),
        )
        b = await c.post(
            "/v1/backtest",
            json=OTHER_BODY,
            headers=_with_key(auth_headers(bob), "k"),
        )

    assert (a.status_code, b.status_code) == (200, 200)
    assert a.json()["task_id"] != b.json()["task_id"]


async def test_same_key_while_first_in_flight_is_409(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        first = await _submit(c, auth_headers(user), "k")
        # Make it look like that request were still running.
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user.id)
            .values(status="in_flight", response_body=None)
        )
        second = await _submit(c, auth_headers(user), "k")

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["error"] == "Conflict"


async def test_failed_request_releases_its_key(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    headers = _with_key(auth_headers(user), "k")
    bad = {**VALID_BODY, "symbols": ["NOSUCHSYMBOL"]}
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        failed = await c.post("/v1/backtest", json=bad, headers=headers)
        fixed = await c.post("/v1/backtest", json=VALID_BODY, headers=headers)

    assert failed.status_code == 400
    assert fixed.status_code == 200


async def test_expired_key_is_forgotten(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    await idempotency_repo.insert(
        session, user_id=user.id, key="old", request_hash="0" * 64
    )
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user.id)
        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
    )
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        response = await _submit(c, auth_headers(user), "old")

    assert response.status_code == 200


async def test_key_over_255_characters_is_400(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        too_long = await _submit(c, auth_headers(user), "k" * 256)
        longest = await _submit(c, auth_headers(user), "k" * 255)

    assert too_long.status_code == 400
    assert longest.status_code == 200
    assert await _jobs(session, user) == 1


async def test_fifty_concurrent_posts_with_one_key_create_one_job(
    test_settings: Settings, engine: AsyncEngine
) -> None:
    settings = limit_settings(test_settings)
    async with committed_user(engine) as user:
        token = create_access_token(user.id, settings=settings).access_token
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "once"}
        async with client_for(app_on_engine(settings, engine)) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/v1/backtest", json=VALID_BODY, headers=headers)
                    for _ in range(50)
                )
            )
            replay = await client.post("/v1/backtest", json=VALID_BODY, headers=headers)
        async with create_sessionmaker(engine)() as check:
            jobs = await _jobs(check, user)

    codes = [r.status_code for r in responses]
    assert jobs == 1
    assert set(codes) <= {200, 409}
    assert codes.count(200) >= 1
    task_ids = {r.json()["task_id"] for r in responses if r.status_code == 200}
    assert len(task_ids) == 1
    assert replay.status_code == 200
    assert replay.json()["task_id"] in task_ids


async def test_requests_without_key_are_not_deduplicated(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    async with client_for(app_on_session(limit_settings(test_settings), session)) as c:
        responses = [
            await c.post("/v1/backtest", json=VALID_BODY, headers=auth_headers(user))
            for _ in range(2)
        ]

    assert [r.status_code for r in responses] == [200, 200]
    assert await _jobs(session, user) == 2
