"""HTTP validators for immutable results, and a small Redis JSON cache.

A completed backtest never changes (it can only be deleted, which the ownership
check turns into a 404 before any validator is compared), so its status, trades
and chart carry a strong ``ETag`` derived from the id, the completion time and the
query variant, with ``Cache-Control: private, max-age=..., immutable``; a request
whose ``If-None-Match`` matches gets ``304 Not Modified`` without a body (and without
the database or chart work). Unfinished jobs answer ``Cache-Control: no-cache``.
``private`` and ``Vary: Authorization``: the resources are per user.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as aredis
from starlette.requests import Request
from starlette.responses import Response

IMMUTABLE_MAX_AGE_SECONDS = 365 * 24 * 3600
IMMUTABLE = f"private, max-age={IMMUTABLE_MAX_AGE_SECONDS}, immutable"
REVALIDATE = "private, no-cache"


def make_etag(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``If-None-Match`` (a list, or ``*``)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == bare for c in candidates)


def conditional(
    request: Request, response: Response, *, version: str | None, variant: str = ""
) -> Response | None:
    """Set the caching headers on ``response``; return a 304 to send instead when
    the client's copy is current. ``version`` is None for a resource that can still
    change (no validator then)."""
    response.headers["Vary"] = "Authorization"
    if version is None:
        response.headers["Cache-Control"] = REVALIDATE
        return None
    etag = make_etag(version, request.url.path, variant)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Vary": "Authorization"}
    response.headers.update(headers)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return None


class JsonCache:
    """JSON values in Redis hashes (one hash per resource, one field per variant), so
    a resource's variants expire together. Failures are misses: the cache must never
    make a request fail."""

    def __init__(
        self, client: aredis.Redis, *, ttl_seconds: int, prefix: str = "cache"
    ) -> None:
        self._client = client
        self._ttl, self._prefix = ttl_seconds, prefix

    def _key(self, resource: str) -> str:
        return f"{self._prefix}:{resource}"

    async def get(self, resource: str, variant: str) -> Any | None:
        try:
            raw = await self._client.hget(self._key(resource), variant)
        except Exception:  # a cache outage is a miss
            return None
        return None if raw is None else json.loads(raw)

    async def set(self, resource: str, variant: str, value: Any) -> None:
        key = self._key(resource)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(key, variant, json.dumps(value, default=str))
                pipe.expire(key, self._ttl)
                await pipe.execute()
        except Exception:  # noqa: S110 - best effort by design
            pass
