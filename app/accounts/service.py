"""Account use cases: register, log in, resolve a token to a user, admin updates.

Each write use case commits once. Password hashing is CPU-bound (argon2, tens of ms)
and runs in a worker thread so it never stalls the event loop.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from typing import Any

import anyio
import structlog
from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import repository as users_repo
from app.accounts.sessions import TokenRevocations
from app.core.config import Settings
from app.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.core.security import (
    IssuedToken,
    Tier,
    TokenPayload,
    create_access_token,
    decode_access_token,
    dummy_verify,
    hash_password,
    verify_password,
)
from app.db.models import User

logger = structlog.get_logger(__name__)
INVALID_CREDENTIALS = "Incorrect username or password"
LAST_ADMIN = (
    "This is the last administrator: make another account an administrator first."
)


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    tier: Tier = Tier.FREE,
    is_admin: bool = False,
    email: str | None = None,
) -> User:
    """Create an account (``Conflict`` if the username is taken) and commit."""
    if await users_repo.get_by_username(session, username) is not None:
        raise Conflict(f"Username {username!r} is already taken")
    password_hash = await to_thread.run_sync(hash_password, password)
    try:
        user = await users_repo.create(
            session,
            username=username,
            password_hash=password_hash,
            tier=tier,
            is_admin=is_admin,
        )
        user.email = email
        await session.commit()
    except IntegrityError as exc:  # lost a race with a concurrent registration
        await session.rollback()
        raise Conflict(f"Username {username!r} is already taken") from exc
    logger.info("user_created", user_id=str(user.id), tier=user.tier, admin=is_admin)
    return user


async def register(
    session: AsyncSession, *, username: str, password: str, email: str | None = None
) -> User:
    """Self-service sign-up: always a free, non-admin account."""
    return await create_user(session, username=username, password=password, email=email)


async def update_profile(
    session: AsyncSession,
    *,
    user: User,
    changes: dict[str, Any],
    settings: Settings,
) -> User:
    """``email`` and the ``notify_email`` default; completion e-mails need both an
    address and SMTP settings (400 naming the field otherwise)."""
    if "email" in changes:
        user.email = changes["email"]
        if user.email is None:
            user.notify_email = False
    if changes.get("notify_email") is not None:
        if changes["notify_email"]:
            check_can_email(user, settings, field="body.notify_email")
        user.notify_email = changes["notify_email"]
    await session.commit()
    return user


def check_can_email(user: User, settings: Settings, *, field: str) -> None:
    if not settings.smtp_url:
        raise ValidationFailed(
            "E-mail notifications are not available: this server has no SMTP "
            "settings (SMTP_URL).",
            field=field,
        )
    if not user.email:
        raise ValidationFailed(
            "Your account has no e-mail address: add one with PATCH /v1/auth/me "
            '{"email": ...} first.',
            field=field,
        )


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User:
    """The user for these credentials, else ``Unauthorized`` with one message for
    unknown users and wrong passwords (and similar timing, via a dummy verify)."""
    user = await users_repo.get_by_username(session, username)
    # End the read transaction: the connection goes back to the pool while argon2
    # runs (tens of ms of CPU), so a burst of logins cannot exhaust the pool
    # (expire_on_commit=False keeps the row readable).
    await session.commit()
    if user is None:
        await to_thread.run_sync(dummy_verify, password)
        raise Unauthorized(INVALID_CREDENTIALS)
    ok, new_hash = await to_thread.run_sync(
        verify_password, password, user.password_hash
    )
    if not ok:
        raise Unauthorized(INVALID_CREDENTIALS)
    if new_hash is not None:  # hashing parameters changed since the hash was made
        await users_repo.update_password_hash(session, user, new_hash)
        await session.commit()
    return user


async def login(
    session: AsyncSession, *, username: str, password: str, settings: Settings
) -> IssuedToken:
    user = await authenticate(session, username=username, password=password)
    logger.info("user_logged_in", user_id=str(user.id))
    return create_access_token(user.id, settings=settings)


async def verify_token(
    token: str, *, settings: Settings, revocations: TokenRevocations
) -> TokenPayload:
    """Signature, expiry, and not logged out nor voided by a password change."""
    payload = decode_access_token(token, settings=settings)
    await revocations.check(payload)
    return payload


def user_id_of(payload: TokenPayload) -> uuid.UUID:
    """The verified token's user id; the caller loads the row, which alone decides
    tier and admin rights."""
    try:
        return uuid.UUID(payload.sub)
    except ValueError as exc:
        raise Unauthorized() from exc


async def user_id_from_token(
    token: str, *, settings: Settings, revocations: TokenRevocations
) -> uuid.UUID:
    """The user id of a valid token (``Unauthorized`` for any bad token)."""
    payload = await verify_token(token, settings=settings, revocations=revocations)
    return user_id_of(payload)


async def user_from_token(
    session: AsyncSession,
    *,
    token: str,
    settings: Settings,
    revocations: TokenRevocations,
) -> User:
    """Verify ``token`` and load its user fresh from the database (tier and admin
    rights come from the row, never from claims). Any failure is ``Unauthorized``."""
    user_id = await user_id_from_token(
        token, settings=settings, revocations=revocations
    )
    user = await users_repo.get(session, user_id)
    if user is None:
        raise Unauthorized()
    return user


async def logout(
    token: str, *, settings: Settings, revocations: TokenRevocations
) -> None:
    """End the session of ``token`` (its id is revoked until it expires)."""
    payload = await verify_token(token, settings=settings, revocations=revocations)
    await revocations.revoke(payload)
    logger.info("user_logged_out", user_id=payload.sub)


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    settings: Settings,
    revocations: TokenRevocations,
) -> IssuedToken:
    """Check the current password, store the new one, void every token issued
    before now and return a fresh one (the caller's session continues with it)."""
    ok, _ = await to_thread.run_sync(
        verify_password, current_password, user.password_hash
    )
    if not ok:
        raise Unauthorized("The current password is incorrect")
    new_hash = await to_thread.run_sync(hash_password, new_password)
    await users_repo.update_password_hash(session, user, new_hash)
    await session.commit()
    # Token times are whole seconds: every token issued up to the end of this second
    # is void, and the new one is issued once the next second has begun (≤ 1 s).
    cutoff = math.floor(time.time()) + 1
    await revocations.revoke_before(
        str(user.id), when=cutoff, ttl=settings.jwt_expire_minutes * 60 + 60
    )
    logger.info("user_password_changed", user_id=str(user.id))
    await anyio.sleep(max(cutoff - time.time(), 0.0))
    return create_access_token(
        user.id, settings=settings, now=dt.datetime.fromtimestamp(cutoff, dt.UTC)
    )


async def update_account(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    tier: Tier | None = None,
    is_admin: bool | None = None,
) -> User:
    if is_admin is False:
        await users_repo.lock_admins(session)
    user = await users_repo.get(session, user_id)
    if user is None:
        raise NotFound("User not found")
    demoting = is_admin is False and user.is_admin
    if demoting and await users_repo.count_admins(session) <= 1:
        raise Conflict(LAST_ADMIN)
    await users_repo.update_tier_admin(session, user, tier=tier, is_admin=is_admin)
    await session.commit()
    logger.info(
        "user_updated", user_id=str(user.id), tier=user.tier, admin=user.is_admin
    )
    return user
