"""``Annotated`` dependencies shared by the routes: settings, the request's DB session,
the authenticated user (loaded from the database on every request) and admins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.db.models import User
from app.services import users as users_service

# auto_error=False: a missing token is reported by us, in the error envelope.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def get_app_settings(request: Request) -> Settings:
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
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def get_current_user(
    session: SessionDep, token: TokenDep, settings: SettingsDep
) -> User:
    if not token:
        raise Unauthorized("Not authenticated")
    return await users_service.user_from_token(session, token=token, settings=settings)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Administrator rights required")
    return user


AdminUser = Annotated[User, Depends(get_current_admin)]
