"""``Annotated`` dependencies every domain's routes share: settings, the request's DB
session, the read connection, the bearer token, the rate limiter and the per-user
request limit. Who the user is comes from ``app.accounts.deps``; jobs add their own
(``app.jobs.deps``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.core.rate_limit import STATE_KEY as RATE_LIMIT_STATE
from app.core.rate_limit import (
    LoginThrottle,
    RateLimiter,
    client_ip,
    count_rejection,
)

# auto_error=False: a missing token is reported by us, in the error envelope.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)

# Every dependency is ``async def``, even the trivial ones: FastAPI runs a plain ``def``
# dependency in the thread pool, a thread hop per request per dependency.


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; uncommitted work is rolled back when it closes."""
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(
        request.app.state, "sessionmaker", None
    )
    if sessionmaker is None:  # lifespan not run (or failed)
        raise ServiceUnavailable("Database not initialised")
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_bind(request: Request) -> AsyncEngine | AsyncConnection:
    """Where single-statement reads run: the app's autocommit engine (no ORM session,
    no BEGIN/ROLLBACK round trips; the status read is the API's hottest path).
    Tests bind it to their own connection and transaction instead."""
    engine: AsyncEngine | None = getattr(request.app.state, "read_engine", None)
    if engine is None:  # lifespan not run (or failed)
        raise ServiceUnavailable("Database not initialised")
    return engine


ReadBindDep = Annotated[AsyncEngine | AsyncConnection, Depends(get_read_bind)]


@asynccontextmanager
async def read_connection(
    bind: AsyncEngine | AsyncConnection,
) -> AsyncIterator[AsyncConnection]:
    if isinstance(bind, AsyncConnection):
        yield bind
        return
    async with bind.connect() as connection:
        yield connection


TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def limiter_of(app: Any) -> RateLimiter:
    """The app's limiter (created in the lifespan; lazily when that did not run)."""
    limiter: RateLimiter | None = getattr(app.state, "limiter", None)
    if limiter is None:
        limiter = RateLimiter(app.state.settings)
        app.state.limiter = limiter
    return limiter


async def get_limiter(request: Request) -> RateLimiter:
    return limiter_of(request.app)


LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


class RateLimitedIdentity(Protocol):
    """Who a per-user limit is keyed by (a ``User`` row or a lighter viewer)."""

    @property
    def id(self) -> Any: ...
    @property
    def tier(self) -> str: ...
    @property
    def is_admin(self) -> bool: ...


async def enforce_api_limit(
    request: Request, user: RateLimitedIdentity, limiter: RateLimiter
) -> None:
    """The per-user request limit (``rate_limits.api``; keyed by the user id, admins
    exempt, fails open when Redis is down): 429 when exceeded."""
    if limiter.enabled and not user.is_admin:
        decision = await limiter.hit_or_fail_open(
            limiter.rules.api, "api", str(user.id)
        )
        if decision is not None:
            setattr(request.state, RATE_LIMIT_STATE, decision)
            if not decision.allowed:
                count_rejection(user.tier)
                raise decision.error(
                    "Too many requests; retry in "
                    f"{decision.retry_after()} s (limit {limiter.rules.api})."
                )


def request_client_ip(request: Request, limiter: RateLimiter) -> str:
    """The client's address (X-Forwarded-For only from TRUSTED_PROXIES)."""
    peer = request.client.host if request.client else None
    return client_ip(
        peer, request.headers.get("x-forwarded-for"), limiter.trusted_proxies
    )


async def limit_auth_ip(request: Request, limiter: LimiterDep) -> None:
    """Unauthenticated auth endpoints: ``rate_limits.auth_ip`` per client address
    (X-Forwarded-For only from TRUSTED_PROXIES). Fails open."""
    if not limiter.enabled:
        return
    address = request_client_ip(request, limiter)
    decision = await limiter.hit_or_fail_open(limiter.rules.auth_ip, "ip", address)
    if decision is None:
        return
    setattr(request.state, RATE_LIMIT_STATE, decision)
    if not decision.allowed:
        count_rejection("anonymous")
        raise decision.error(
            f"Too many attempts from this address; retry in {decision.retry_after()} s."
        )


AuthIpLimit = Depends(limit_auth_ip)


async def get_login_throttle(request: Request, limiter: LimiterDep) -> LoginThrottle:
    return LoginThrottle(limiter, request_client_ip(request, limiter))


LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
