"""Who is calling: the authenticated user (loaded from the database on every request),
within the per-user request limit, and admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.accounts import service as users_service
from app.accounts.sessions import revocations_of
from app.api.deps import (
    LimiterDep,
    SessionDep,
    SettingsDep,
    TokenDep,
    enforce_api_limit,
)
from app.core.errors import Forbidden, Unauthorized
from app.db.models import User


async def get_current_user(
    request: Request, session: SessionDep, token: TokenDep, settings: SettingsDep
) -> User:
    if not token:
        raise Unauthorized("Not authenticated")
    return await users_service.user_from_token(
        session,
        token=token,
        settings=settings,
        revocations=revocations_of(request.app),
    )


async def get_rate_limited_user(
    request: Request,
    user: Annotated[User, Depends(get_current_user)],
    limiter: LimiterDep,
) -> User:
    """The authenticated user, within the per-user request limit."""
    await enforce_api_limit(request, user, limiter)
    return user


CurrentUser = Annotated[User, Depends(get_rate_limited_user)]
# Submissions: authenticated only; their own limit is applied by the job service
# after the request has been validated (app.jobs.quotas).
SubmittingUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Administrator rights required")
    return user


AdminUser = Annotated[User, Depends(get_current_admin)]
