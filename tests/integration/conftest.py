"""Integration fixtures: a real PostgreSQL database per test session.

* ``database_url``: creates ``bt_test_<random>`` through an admin connection,
  migrates it to head once, drops it at the end. Unreachable PostgreSQL → skip, or
  fail when ``REQUIRE_SERVICES=1``.
* ``session``: an ``AsyncSession`` on a connection inside an outer transaction that is
  rolled back after the test; ``join_transaction_mode="create_savepoint"`` turns the
  services' commits into savepoints, so nothing leaks between tests.
* ``app`` / ``client``: the real app (``create_app``) with the session dependency
  overridden, served through ``httpx.ASGITransport``.
* ``user_factory``, ``token_for``, ``auth_headers``: real users and real JWTs.

Live stacks (``tests/integration/stack.py``), for end-to-end tests that need what a
separate worker process commits:

* ``live_stack`` (session): uvicorn + a prefork Celery worker on their own database
  and their own redis-server (machine Redis DB 14 without the binary), the engine
  slowed by ``TEST_ENGINE_CHUNK_DELAY_SECONDS=0.06`` (``slow_engine``; a 50-chunk
  backtest runs ~3 s).
  ``start_live_stack(options, tmp)`` builds others (a context manager: fresh
  database, processes stopped and database dropped on exit).
  ``start_live_stack(..., postgres=server)`` puts the database on a private cluster
  (``private_postgres(tmp)``: initdb + postgres on a free port, run as the
  ``postgres`` OS user when root) that a chaos test may stop and start;
  ``StackOptions(redis_aof=True)`` gives the private redis-server an append-only
  file, and ``stack.kill_redis()`` / ``stack.restart_redis()`` crash it and bring it
  back on the same port. The machine's shared servers are never stopped.
* ``embedded_server`` (session): one API process with no DATABASE_URL/REDIS_URL.
* A failing test that used one of them gets the processes' log tails in its report.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts import repository as users_repo
from app.core.config import Settings
from app.core.security import Tier, create_access_token, hash_password
from app.db.migrate import upgrade_to_head
from app.db.models import User
from app.db.session import create_engine
from app.main import create_app
from tests.integration.session_override import use_test_session
from tests.integration.stack import (
    EmbeddedServer,
    LiveApi,
    LiveStack,
    PostgresServer,
    PrivateServerError,
    StackOptions,
    start_redis_server,
)

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DEFAULT_PASSWORD = "correct-horse-battery"
_INTEGRATION_DIR = os.path.dirname(__file__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(_INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


def _unavailable(reason: str, service: str = "PostgreSQL") -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{service} required (REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


def admin_connection(admin_url: str = ADMIN_URL) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable(str(exc).strip())
        raise  # unreachable: skip/fail raise


def async_url(database: str, admin_url: str = ADMIN_URL) -> str:
    """``postgresql+asyncpg://`` URL of ``database`` on the admin server."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    user, host = info.get("user", "postgres"), info.get("host", "127.0.0.1")
    password = f":{info['password']}" if info.get("password") else ""
    port = info.get("port", 5432)
    return f"postgresql+asyncpg://{user}{password}@{host}:{port}/{database}"


def create_database(prefix: str, admin_url: str = ADMIN_URL) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str, admin_url: str = ADMIN_URL) -> None:
    with admin_connection(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


@contextlib.contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A fresh database named ``<prefix>_<random>``, migrated to head (its async
    URL); dropped on exit."""
    name = create_database(prefix)
    try:
        url = async_url(name)
        upgrade_to_head(url)
        yield url
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with migrated_database("bt_test") as url:
        yield url


@pytest.fixture(scope="session")
def test_settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        jwt_secret=uuid.uuid4().hex + uuid.uuid4().hex,
        db_pool_size=4,
        db_max_overflow=4,
        log_json=False,
        log_level="WARNING",
        # No worker claims jobs in the shared test database: a pending row left by
        # an earlier test must not hold back every later submission. The queue's
        # own tests set 1 (the default) where they need it; caps still apply.
        queue_dispatch_ahead=1000,
    )


@pytest.fixture(scope="session")
async def engine(test_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(test_settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def app(test_settings: Settings, session: AsyncSession) -> FastAPI:
    application = create_app(test_settings)

    return use_test_session(application, session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


class UserFactory(Protocol):
    def __call__(
        self,
        *,
        username: str | None = None,
        password: str = DEFAULT_PASSWORD,
        tier: Tier = Tier.FREE,
        is_admin: bool = False,
    ) -> Awaitable[User]: ...


@pytest.fixture
def user_factory(session: AsyncSession) -> UserFactory:
    async def _create(
        *,
        username: str | None = None,
        password: str = DEFAULT_PASSWORD,
        tier: Tier = Tier.FREE,
        is_admin: bool = False,
    ) -> User:
        return await users_repo.create(
            session,
            username=username or f"user_{uuid.uuid4().hex[:10]}",
            password_hash=hash_password(password),
            tier=tier,
            is_admin=is_admin,
        )

    return _create


@pytest.fixture
def token_for(test_settings: Settings) -> Callable[[User], str]:
    def _token(user: User) -> str:
        return create_access_token(user.id, settings=test_settings).access_token

    return _token


@pytest.fixture
def auth_headers(
    token_for: Callable[[User], str],
) -> Callable[[User], dict[str, str]]:
    def _headers(user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(user)}"}

    return _headers


# --- live stacks (real processes) -----------------------------------------------
REDIS_HOST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def require_redis() -> None:
    """Skip (or fail with REQUIRE_SERVICES=1) when Redis is unreachable."""
    client = redis.Redis.from_url(REDIS_HOST_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis required (REQUIRE_SERVICES=1): {exc}")
        pytest.skip(f"Redis unavailable: {exc}")
    finally:
        client.close()


@contextlib.contextmanager
def start_live_stack(
    options: StackOptions, log_dir: Path, *, postgres: PostgresServer | None = None
) -> Iterator[LiveStack]:
    """A fresh migrated database (on ``postgres``, a private cluster, if given; else
    on the machine's server), a private redis-server (or, without the binary, a
    flushed DB index of the machine's Redis), API + worker (+ beat) processes;
    everything stopped and dropped on exit."""
    redis_server = start_redis_server(log_dir, aof=options.redis_aof)
    if redis_server is None:
        require_redis()
        redis_url = f"{REDIS_HOST_URL}/{options.redis_db}"
    else:
        redis_url = f"{redis_server.base_url}/0"
    admin_url = postgres.admin_url if postgres else ADMIN_URL
    name = create_database("bt_live", admin_url)
    stack: LiveStack | None = None
    try:
        url = async_url(name, admin_url)
        upgrade_to_head(url)
        stack = LiveStack(
            database=name,
            database_url=url,
            redis_url=redis_url,
            options=options,
            log_dir=log_dir,
            redis_server=redis_server,
            postgres=postgres,
        )
        stack.start()
        yield stack
    finally:
        if stack is not None:
            stack.stop()  # the private redis-server last
        elif redis_server is not None:
            redis_server.stop()
        if postgres is None:  # a private cluster is thrown away whole (maybe down)
            drop_database(name, admin_url)


@contextlib.contextmanager
def private_postgres(log_dir: Path) -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster (initdb + postgres on a free port) that the test
    may stop and start; removed on exit. Cannot be run here → skip, or fail with
    REQUIRE_SERVICES=1."""
    try:
        server = PostgresServer(log_dir)
    except PrivateServerError as exc:
        _unavailable(str(exc), "private PostgreSQL")
        raise  # unreachable: skip/fail raise
    try:
        try:
            server.start()
        except PrivateServerError as exc:
            _unavailable(str(exc), "private PostgreSQL")
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(chunk_delay_seconds=0.06, redis_db=14)
    with start_live_stack(options, tmp_path_factory.mktemp("live_stack")) as stack:
        yield stack


@pytest.fixture(scope="session")
def embedded_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedServer]:
    root = tmp_path_factory.mktemp("embedded")
    server = EmbeddedServer(var_dir=root / "var", log_dir=root, chunk_delay=0.06)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the live processes' log tails to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveApi):
                report.sections.append(("live stack logs", value.diagnostics(80)))
