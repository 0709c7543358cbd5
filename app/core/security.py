"""Password hashing (argon2id) and access tokens (JWT, HS256).

Tokens carry identity only (``sub`` = user id, ``iat``, ``exp``). Tier and admin rights
are read from the database on every request: a claim added to a token grants nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.config import Settings
from app.core.errors import Unauthorized

JWT_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat"]
VERIFIED_TOKEN_CACHE_SIZE = 4096

# argon2-cffi's defaults are argon2id with the RFC 9106 low-memory profile. Changing
# them here makes every existing hash "need rehash", which login then upgrades.
_hasher = PasswordHasher()
# Verified against for unknown usernames, so their login costs as much as a real one.
# A stored hash of the hasher's own parameters, not one computed at import: hashing
# takes ~0.1 s of CPU and 64 MiB, which every process start (API, worker, CLI) paid.
_DUMMY_HASH_STORED = (
    "$argon2id$v=19$m=65536,t=3,p=4$XC/AvKWh0Cbbgyn9BY3t8Q$"
    "MnjBggBXq0TyTg8KDOrwLkAiodgbvszExY4K4XVIY3o"
)


class Tier(StrEnum):
    """Account tier: selects quotas and rate limits. Read from the DB, never a token."""

    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class TokenPayload:
    sub: str
    iat: dt.datetime
    exp: dt.datetime
    jti: str | None = None  # the token's id (logout revokes it); older tokens: none


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check ``password``; return ``(ok, new_hash)``.

    ``new_hash`` is set when the stored hash used outdated parameters and should be
    replaced (rehash on login).
    """
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if _hasher.check_needs_rehash(password_hash):
        return True, _hasher.hash(password)
    return True, None


@functools.cache
def _dummy_hash() -> str:
    """A hash with the hasher's current parameters (so verifying against it costs what
    a real account's does): the stored one, unless the parameters changed."""
    if _hasher.check_needs_rehash(_DUMMY_HASH_STORED):
        return _hasher.hash("dummy-password-for-timing-equalisation")
    return _DUMMY_HASH_STORED


def dummy_verify(password: str) -> None:
    """Burn the time of a real verification (for unknown usernames)."""
    verify_password(password, _dummy_hash())


def create_access_token(
    subject: uuid.UUID | str,
    *,
    settings: Settings,
    expires_in: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> IssuedToken:
    issued_at = now or dt.datetime.now(dt.UTC)
    lifetime = expires_in or dt.timedelta(minutes=settings.jwt_expire_minutes)
    claims: dict[str, Any] = {
        "sub": str(subject),
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.jwt_secret, algorithm=JWT_ALGORITHM)
    return IssuedToken(access_token=token, expires_in=int(lifetime.total_seconds()))


def decode_access_token(token: str, *, settings: Settings) -> TokenPayload:
    """Verify signature, algorithm and required claims; any failure → 401.

    A verified token is remembered (bounded LRU keyed by the token *and* the secret,
    so a rotated secret re-verifies everything): a client polling with the same token
    pays the HMAC and JSON work once, not per request. Only expiry can change a
    verified token's verdict, and it is checked on every call; failures are never
    cached."""
    payload = _verified(token, settings.jwt_secret)
    if payload.exp <= _now():
        raise Unauthorized("Token has expired")
    return payload


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE_SIZE)
def _verified(token: str, secret: str) -> TokenPayload:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Could not validate credentials") from exc
    sub = claims.get("sub")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("Could not validate credentials")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise Unauthorized("Could not validate credentials")
    jti = claims.get("jti")
    try:
        return TokenPayload(
            jti=jti if isinstance(jti, str) and jti else None,
            sub=sub,
            iat=dt.datetime.fromtimestamp(iat, dt.UTC),
            exp=dt.datetime.fromtimestamp(exp, dt.UTC),
        )
    except (OverflowError, ValueError, OSError) as exc:  # exp = 1e20, NaN, ...
        raise Unauthorized("Could not validate credentials") from exc
