"""The failed-login throttle in process (ASGI, memory limiter, real clients'
addresses via the transport): what a stranger can and cannot do to an account."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from tests.integration.limits_support import app_on_engine, limit_settings

pytestmark = pytest.mark.integration
PASSWORD = "correct-horse-battery"


@pytest.fixture
def limited_app(test_settings: Settings, engine: AsyncEngine) -> FastAPI:
    """Real per-request sessions (concurrent requests); users are committed, with
    unique names."""
    settings = limit_settings(test_settings, redis_url=None)
    return app_on_engine(settings, engine)


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def _login(app: FastAPI, address: str, username: str, password: str) -> int:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/auth/login", json={"username": username, "password": password}
        )
    return response.status_code


async def _register(app: FastAPI, username: str) -> None:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.250", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
    assert response.status_code == 201, response.text


async def test_under_attack_a_client_that_failed_is_refused_the_owner_is_not(
    limited_app: FastAPI,
) -> None:
    victim = _name("Victim")
    await _register(limited_app, victim)
    attackers = [f"198.51.100.{i}" for i in range(1, 61)]
    guesses: list[int] = []
    for batch in range(0, len(attackers), 10):  # the test pool has 8 connections
        guesses += await asyncio.gather(
            *(
                _login(limited_app, a, victim.upper(), "wrong-pass")
                for a in attackers[batch : batch + 10]
            )
        )
    assert set(guesses) == {401}  # each address failed once: all checked
    # 60 failures ≥ 50: the account is under attack. An address that failed is
    # refused even with the right password; the owner's address is not.
    assert await _login(limited_app, attackers[0], victim.lower(), PASSWORD) == 429
    assert await _login(limited_app, "203.0.113.9", victim.lower(), PASSWORD) == 200


async def test_nine_concurrent_wrong_passwords_get_at_most_five_through(
    limited_app: FastAPI,
) -> None:
    target = _name("burst_")
    await _register(limited_app, target)
    statuses = await asyncio.gather(
        *(_login(limited_app, "198.51.100.7", target, "nope-nope") for _ in range(9))
    )
    assert statuses.count(401) == 5
    assert statuses.count(429) == 4
    assert await _login(limited_app, "203.0.113.10", target, PASSWORD) == 200


async def test_usernames_are_case_insensitive(limited_app: FastAPI) -> None:
    name = _name("CaseUser")
    await _register(limited_app, name)
    transport = httpx.ASGITransport(app=limited_app, client=("192.0.2.251", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        clash = await http.post(
            "/v1/auth/register", json={"username": name.lower(), "password": PASSWORD}
        )
    assert clash.status_code == 409, clash.text
    assert await _login(limited_app, "192.0.2.252", name.upper(), PASSWORD) == 200
