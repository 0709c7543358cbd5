"""Ending sessions: a revoked token id (logout) and a per-user "not before" time
(password change: every token issued before it is void).

Checked on every authenticated request, right after the token's signature (which the
verified-token cache skips re-doing): one Redis ``MGET`` in the distributed mode
(shared by every API process), a dict in the embedded mode (one process). Entries
expire with the tokens they void, so the store stays small. If Redis is unreachable
the check fails open (logged): a revoked token then works until Redis is back or the
token expires, the same trade-off as the read rate limits.
"""

from __future__ import annotations

import math
import time
from typing import Any

import redis.asyncio as aredis
import structlog

from app.core.errors import Unauthorized
from app.core.security import TokenPayload

logger = structlog.get_logger(__name__)
REVOKED = "Token has been revoked"


class TokenRevocations:
    def __init__(self, client: aredis.Redis | None, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._local: dict[str, tuple[float, float]] = {}  # key -> (value, expires)

    def _keys(self, payload: TokenPayload) -> list[str]:
        return [
            f"{self._prefix}:jti:{payload.jti}",
            f"{self._prefix}:nbf:{payload.sub}",
        ]

    async def check(self, payload: TokenPayload) -> None:
        """``Unauthorized`` if ``payload``'s token was logged out or issued before
        its user's last password change."""
        jti_key, nbf_key = self._keys(payload)
        values = await self._get(jti_key, nbf_key)
        revoked, not_before = values
        if payload.jti and revoked is not None:
            raise Unauthorized(REVOKED)
        if not_before is not None and payload.iat.timestamp() < float(not_before):
            raise Unauthorized(REVOKED)

    async def revoke(self, payload: TokenPayload) -> None:
        """Log this token out (until it would have expired anyway)."""
        if payload.jti:
            ttl = payload.exp.timestamp() - time.time()
            await self._set(self._keys(payload)[0], 1.0, ttl)

    async def revoke_before(self, user_id: str, *, when: float, ttl: float) -> None:
        """Void every token of ``user_id`` issued before ``when`` (whole seconds:
        token times are whole seconds)."""
        await self._set(f"{self._prefix}:nbf:{user_id}", math.floor(when), ttl)

    async def _get(self, *keys: str) -> list[Any]:
        if self._client is None:
            now = time.time()
            found = [self._local.get(k) for k in keys]
            return [v[0] if v and v[1] > now else None for v in found]
        try:
            return list(await self._client.mget(keys))
        except (aredis.RedisError, OSError) as exc:
            logger.warning("sessions.check_unavailable", error=type(exc).__name__)
            return [None] * len(keys)

    async def _set(self, key: str, value: float, ttl: float) -> None:
        seconds = max(math.ceil(ttl), 1)
        if self._client is None:
            now = time.time()
            self._local = {k: v for k, v in self._local.items() if v[1] > now}
            self._local[key] = (value, now + seconds)
            return
        await self._client.set(key, value, ex=seconds)


def revocations_of(app: Any) -> TokenRevocations:
    """The app's store (created on first use, on the app's Redis client if any)."""
    store: TokenRevocations | None = getattr(app.state, "revocations", None)
    if store is None:
        settings = app.state.settings
        store = TokenRevocations(
            getattr(app.state, "redis", None),
            prefix=f"{settings.rate_limit_key_prefix}:sessions",
        )
        app.state.revocations = store
    return store
