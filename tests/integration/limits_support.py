"""Helpers of the rate-limit and idempotency tests: apps with their own rule table,
users committed for real (for tests that need several connections or processes), and
a private Redis server that a test may stop without disturbing anybody else's."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import redis
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts import repository as users_repo
from app.core.config import RateLimitRules, Settings
from app.core.security import Tier, hash_password
from app.db.models import User
from app.db.session import create_sessionmaker
from app.main import create_app
from tests.integration.session_override import use_test_session

VALID_BODY: dict[str, Any] = {
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "strategy_id": 2,
}
# Caps high enough that only the rule under test can refuse (no worker runs jobs).
NO_ACTIVE_CAP = {"free": 10_000, "pro": 10_000, "enterprise": 10_000}
PASSWORD = "correct-horse-battery"


def limit_settings(base: Settings, **update: Any) -> Settings:
    """``base`` with a rule table (``rules=...`` dict) and other settings replaced."""
    rules = dict(update.pop("rules", {}))
    rules.setdefault("active_jobs", NO_ACTIVE_CAP)
    return base.model_copy(
        update={
            "rate_limits": RateLimitRules(**rules),
            "rate_limit_key_prefix": f"rltest-{uuid.uuid4().hex[:8]}",
            **update,
        }
    )


def app_on_session(settings: Settings, session: AsyncSession) -> FastAPI:
    application = create_app(settings)

    return use_test_session(application, session)


def app_on_engine(settings: Settings, engine: AsyncEngine) -> FastAPI:
    """Real per-request sessions (what concurrent requests need); data is committed."""
    application = create_app(settings)
    application.state.engine = engine
    application.state.sessionmaker = create_sessionmaker(engine)
    return application


@contextlib.asynccontextmanager
async def client_for(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
    finally:
        limiter = getattr(application.state, "limiter", None)
        if limiter is not None:
            await limiter.aclose()


@contextlib.asynccontextmanager
async def committed_user(
    engine: AsyncEngine, *, tier: Tier = Tier.FREE, is_admin: bool = False
) -> AsyncIterator[User]:
    """A user committed to the test database, deleted (with its jobs) afterwards."""
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        user = await users_repo.create(
            session,
            username=f"rl_{uuid.uuid4().hex[:10]}",
            password_hash=hash_password(PASSWORD),
            tier=tier,
            is_admin=is_admin,
        )
        await session.commit()
    try:
        yield user
    finally:
        async with sessionmaker() as session:
            await session.execute(delete(User).where(User.id == user.id))
            await session.commit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test alone, on its own port (stoppable at will)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not installed")
        subprocess.run(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes",
             "--pidfile", f"/tmp/redis-rltest-{self.port}.pid"],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url).ping():
                    return self
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url).shutdown(nosave=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
            except redis.RedisError:
                return
            time.sleep(0.05)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.stop()
