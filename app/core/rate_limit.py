"""Rate limiting: exact moving windows over Redis (or memory), shared by API processes.

The algorithm is ``limits``' moving window: every admitted request is a timestamp in a
Redis list (one list per rule and key), and a Lua script atomically checks "fewer than
N entries newer than now - window" and pushes the new one. There is no fixed window,
so no 2x burst at a boundary, and nothing is consumed by a refused request.

* Distributed mode: ``limits.aio.storage.RedisStorage`` (redis-py's asyncio client);
  embedded mode: ``MemoryStorage`` (one process, so exact as well).
* Keys are the authenticated user id (per-user rules), the client IP (per-IP rules,
  X-Forwarded-For only from ``trusted_proxies``) or the username (failed logins);
  never a client-chosen header.
* A Redis error raises :class:`LimiterUnavailable`, after which Redis is skipped for
  ``rate_limit_redis_retry_seconds`` (no connect timeout paid on every request). The
  callers decide: reads fail open (logged, counted in ``rate_limit_fail_open_total``),
  submissions fall back to the database (``app.jobs.quotas``).

Headers of a limited response (success or 429), e.g. 10 per hour, 3 left::

    X-RateLimit-Limit: 10
    X-RateLimit-Remaining: 3
    X-RateLimit-Reset: 1764000000          (Unix time at which a slot frees)
    RateLimit-Policy: 10;w=3600            (draft-ietf-httpapi-ratelimit-headers)
    RateLimit: limit=10, remaining=3, reset=1234   (reset: seconds from now)

and on a 429 ``Retry-After: <seconds>`` (an integer, 1..3600): a retry after that
long is admitted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import limits
import redis.asyncio as aredis
import structlog
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from app.core.config import MAX_RATE_LIMIT_WINDOW_SECONDS, Settings
from app.core.errors import RateLimited, Unauthorized
from app.core.metrics import RATE_LIMIT_REJECTIONS
from app.core.text import normalise_username

logger = structlog.get_logger(__name__)

RATE_LIMIT_FAIL_OPEN = Counter(
    "rate_limit_fail_open_total",
    "Rate-limit checks skipped or answered by a fallback because the limiter's "
    "storage (Redis) was unavailable, by rule.",
    ["rule"],
)
STATE_KEY = "rate_limit"  # request.state attribute read by the headers middleware


class LimiterUnavailable(Exception):  # noqa: N818 - a condition, not an API error
    """The limiter's storage could not be reached; the caller picks the fallback."""


@dataclass(frozen=True)
class Decision:
    """The outcome of one check of one rule for one key."""

    allowed: bool
    limit: int
    remaining: int
    window_seconds: int
    reset_at: float  # Unix time at which the oldest entry leaves the window

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until a slot frees: strictly after the oldest entry expires
        (so a retry then is admitted), at least 1, at most the window (≤ 1 hour)."""
        delta = self.reset_at - (time.time() if now is None else now)
        seconds = math.floor(max(delta, 0.0)) + 1
        return min(max(seconds, 1), MAX_RATE_LIMIT_WINDOW_SECONDS)

    def headers(self, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        reset = max(math.ceil(self.reset_at - now), 0)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
            "RateLimit": (
                f"limit={self.limit}, remaining={self.remaining}, reset={reset}"
            ),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after(now))
        return headers

    def error(self, message: str) -> RateLimited:
        """The 429 for this refusal, with Retry-After and the rate-limit headers."""
        exc = RateLimited(message, retry_after=self.retry_after())
        exc.headers.update(self.headers())
        return exc


def parse_rule(rule: str) -> limits.RateLimitItem:
    return limits.parse(rule)


class RateLimiter:
    """Moving-window checks against Redis (distributed) or memory (embedded)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = settings.rate_limits
        self.enabled = settings.rate_limit_enabled
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self._retry_seconds = settings.rate_limit_redis_retry_seconds
        self._down_until = 0.0
        self._redis: aredis.Redis | None = None
        self.storage: MemoryStorage | RedisStorage
        if settings.redis_url:
            timeout = settings.rate_limit_redis_timeout_seconds
            self.storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix=settings.rate_limit_key_prefix,
                wrap_exceptions=True,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            self._redis = aredis.Redis.from_url(
                settings.redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        else:
            self.storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.connections = ConnectionSlots(
            self._redis,
            prefix=f"{settings.rate_limit_key_prefix}:ws",
            limit=settings.ws_max_connections_per_user,
        )

    async def hit(self, rule: str, *identifiers: str) -> Decision:
        """Consume one slot of ``rule`` for ``identifiers`` if one is free (atomic);
        a refused request consumes nothing."""
        item = parse_rule(rule)
        allowed = await self._call(self.strategy.hit, item, *identifiers)
        return await self._decision(item, identifiers, allowed=allowed)

    async def peek(self, rule: str, *identifiers: str) -> Decision:
        """Would a hit be admitted? Consumes nothing."""
        item = parse_rule(rule)
        stats = await self._call(self.strategy.get_window_stats, item, *identifiers)
        return self._from_stats(item, stats, allowed=stats.remaining >= 1)

    async def refund(self, rule: str, *identifiers: str) -> None:
        """Give back one slot taken by ``hit`` (the newest entry of the window): for a
        request that failed after it was admitted. Best effort: a storage error is
        logged, never raised (the slot then ages out with its window)."""
        key = parse_rule(rule).key_for(*identifiers)
        try:
            if self._redis is not None:
                prefix = self.settings.rate_limit_key_prefix
                await self._redis.lpop(f"{prefix}:{key}")
            elif isinstance(self.storage, MemoryStorage):
                entries = self.storage.events.get(key)
                if entries:
                    del entries[0]
        except (aredis.RedisError, OSError) as exc:
            logger.warning("rate_limit.refund_failed", error=type(exc).__name__)

    async def _decision(
        self, item: limits.RateLimitItem, identifiers: Iterable[str], *, allowed: bool
    ) -> Decision:
        stats = await self._call(self.strategy.get_window_stats, item, *identifiers)
        return self._from_stats(item, stats, allowed=allowed)

    @staticmethod
    def _from_stats(
        item: limits.RateLimitItem, stats: Any, *, allowed: bool
    ) -> Decision:
        return Decision(
            allowed=bool(allowed),
            limit=item.amount,
            remaining=max(int(stats.remaining), 0),
            window_seconds=item.get_expiry(),
            reset_at=float(stats.reset_time),
        )

    async def _call(self, method: Any, *args: Any) -> Any:
        if time.monotonic() < self._down_until:
            raise LimiterUnavailable("rate-limit storage recently unreachable")
        try:
            return await method(*args)
        except (limits.errors.StorageError, aredis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self._retry_seconds
            logger.warning("rate_limit.storage_unavailable", error=type(exc).__name__)
            raise LimiterUnavailable(str(exc)) from exc

    async def hit_or_fail_open(self, rule: str, *identifiers: str) -> Decision | None:
        """``hit`` for limits that protect reads: when the storage is down the request
        is let through (logged and counted), never refused or failed."""
        try:
            return await self.hit(rule, *identifiers)
        except LimiterUnavailable:
            RATE_LIMIT_FAIL_OPEN.labels(rule=_rule_name(self, rule)).inc()
            return None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if isinstance(self.storage, RedisStorage):
            bridge: Any = self.storage.bridge
            connection = getattr(bridge, "storage", None)
            if connection is not None:
                await connection.aclose()
        else:
            timer = self.storage.timer  # the memory storage's expiry task
            if timer is not None and not timer.done():
                timer.cancel()


def _rule_name(limiter: RateLimiter, rule: str) -> str:
    """A bounded metric label for a rule string."""
    rules = limiter.rules
    for name in ("api", "auth_ip", "login_failures", "login_failures_account"):
        if getattr(rules, name) == rule:
            return name
    return "submit" if rule in rules.submit.values() else "other"


def count_rejection(tier: str) -> None:
    """The Prometheus counter of 429s (``anonymous`` for per-IP/username rules)."""
    RATE_LIMIT_REJECTIONS.labels(tier=tier).inc()


def _hashed(*parts: str) -> str:
    # Hashed: bounded key length whatever the client sends as a username.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class LoginThrottle:
    """Failed logins, keyed so that a stranger can slow guessing down but cannot
    lock the owner out:

    * per (username, client address), ``rate_limits.login_failures`` (5 per 15
      minutes): an atomic test-and-hit *before* the password check, so a burst of
      N concurrent wrong passwords gets at most the limit through; a success gives
      its slot back (successful logins cost nothing);
    * per username, ``rate_limits.login_failures_account`` (50 per 15 minutes),
      attempts from every client (successes included: they give nothing back
      here). While it is full the account is under attack and
      each client may fail only once per window: a client that has failed gets
      429, a client that has not (the owner on their own address) still has its
      password checked, and a correct password logs in.

    Fails open when the storage is down (logged, counted)."""

    def __init__(self, limiter: RateLimiter, client: str) -> None:
        self.limiter = limiter
        self.client = client

    @asynccontextmanager
    async def attempt(self, username: str) -> AsyncIterator[None]:
        if not self.limiter.enabled:
            yield
            return
        name = normalise_username(username)
        taken = await self._admit(_hashed(name), _hashed(name, self.client))
        try:
            yield
        except Unauthorized:
            raise  # the failure keeps its slots
        except BaseException:
            await self._refund(taken)
            raise
        await self._refund(taken)

    async def _admit(self, account: str, pair: str) -> list[tuple[str, str, str]]:
        """Take the slots of one attempt (429 when refused); the slots taken."""
        limiter = self.limiter
        rules = limiter.rules
        window = parse_rule(rules.login_failures).get_expiry()
        account_rule = rules.login_failures_account
        taken: list[tuple[str, str, str]] = []
        try:
            watch = await limiter.peek(account_rule, "login-acct", account)
            checks = [(rules.login_failures, "login", pair)]
            if not watch.allowed:  # under attack: a client that failed is refused
                failed = await limiter.peek(rules.login_failures, "login", pair)
                if failed.remaining < failed.limit:
                    self._refuse(failed)
                # ... and a burst from a client that had not is one attempt.
                checks.insert(0, (f"1 per {window} seconds", "login-strict", pair))
            for rule, scope, key in checks:
                decision = await limiter.hit(rule, scope, key)
                if not decision.allowed:
                    await self._refund(taken)
                    self._refuse(decision)
                taken.append((rule, scope, key))
            # Every attempt counts here and a success gives nothing back: an owner's
            # login in the middle of an attack must not end the "under attack" state.
            await limiter.hit(account_rule, "login-acct", account)
        except LimiterUnavailable:
            RATE_LIMIT_FAIL_OPEN.labels(rule="login_failures").inc()
        return taken

    @staticmethod
    def _refuse(decision: Decision) -> NoReturn:
        count_rejection("anonymous")
        raise decision.error(
            "Too many failed logins for this account from this address; "
            f"retry in {decision.retry_after()} s."
        )

    async def _refund(self, taken: list[tuple[str, str, str]]) -> None:
        for rule, scope, key in taken:
            await self.limiter.refund(rule, scope, key)


# --- client address -------------------------------------------------------------


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: list[Network]
) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy; then
    the right-most X-Forwarded-For entry that is not itself a trusted proxy (entries
    to its left were written by the client and prove nothing)."""
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop
        address = hop
    return address


# --- concurrent connections -----------------------------------------------------

# Drop expired members, then add this one if there is room. Members expire after a
# TTL so a crashed process cannot hold a user's slots for ever.
_ACQUIRE_SLOT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return 1
"""
SLOT_TTL_SECONDS = 3600


class ConnectionSlots:
    """At most ``limit`` concurrent connections per user, across processes (Redis
    sorted set of connection ids scored by expiry) or in this process (memory)."""

    def __init__(self, client: aredis.Redis | None, *, prefix: str, limit: int):
        self._client = client
        # EVALSHA after the first call (redis-py loads the script on NOSCRIPT).
        self._acquire = (
            None if client is None else client.register_script(_ACQUIRE_SLOT)
        )
        self._prefix = prefix
        self.limit = limit
        self._local: dict[str, set[str]] = {}

    async def acquire(self, user_id: str) -> str | None:
        """A slot id, or ``None`` when the user is at the limit. Fails open."""
        slot = uuid.uuid4().hex
        if self._acquire is None:
            held = self._local.setdefault(user_id, set())
            if len(held) >= self.limit:
                return None
            held.add(slot)
            return slot
        now = time.time()
        try:
            ok = await self._acquire(
                keys=[f"{self._prefix}:{user_id}"],
                args=[
                    str(now),
                    str(self.limit),
                    str(now + SLOT_TTL_SECONDS),
                    slot,
                    str(SLOT_TTL_SECONDS),
                ],
            )
        except (aredis.RedisError, OSError):
            RATE_LIMIT_FAIL_OPEN.labels(rule="ws_connections").inc()
            logger.warning("rate_limit.ws_slots_unavailable")
            return slot
        return slot if ok else None

    async def release(self, user_id: str, slot: str) -> None:
        if self._client is None:
            self._local.get(user_id, set()).discard(slot)
            return
        try:
            await self._client.zrem(f"{self._prefix}:{user_id}", slot)
        except (aredis.RedisError, OSError):
            logger.warning("rate_limit.ws_slot_release_failed")
