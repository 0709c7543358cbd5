"""Registration, login (JSON and OAuth2 form) and the current user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.accounts import service as users_service
from app.accounts.deps import CurrentUser
from app.accounts.schemas import (
    LoginRequest,
    PasswordChange,
    ProfileUpdate,
    RegisterRequest,
    TokenResponse,
    UserRead,
)
from app.accounts.sessions import revocations_of
from app.api.deps import (
    AuthIpLimit,
    LoginThrottleDep,
    SessionDep,
    SettingsDep,
    TokenDep,
)
from app.api.schemas import error_responses
from app.core.errors import ValidationFailed
from app.core.security import IssuedToken
from app.core.text import UNSAFE_TEXT_MESSAGE, is_safe_text

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(token: IssuedToken) -> TokenResponse:
    return TokenResponse(access_token=token.access_token, expires_in=token.expires_in)


@router.post(
    "/register",
    dependencies=[AuthIpLimit],
    summary="Create an account",
    description="Register a free-tier account. Usernames are 3–64 characters of "
    "letters, digits, `_`, `.`, `-`; passwords 8–256 characters.",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=error_responses(400, 409, 429),
)
async def register(body: RegisterRequest, session: SessionDep) -> UserRead:
    user = await users_service.register(
        session, username=body.username, password=body.password, email=body.email
    )
    return UserRead.model_validate(user)


@router.post(
    "/login",
    dependencies=[AuthIpLimit],
    summary="Log in (JSON)",
    description="Exchange a username and password for a bearer token.",
    status_code=status.HTTP_200_OK,
    response_model=TokenResponse,
    responses=error_responses(400, 401, 429),
)
async def login(
    body: LoginRequest,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> TokenResponse:
    return await _login(session, settings, throttle, body.username, body.password)


@router.post(
    "/token",
    dependencies=[AuthIpLimit],
    summary="Log in (OAuth2 password form)",
    description="The OAuth2 password flow used by the docs' **Authorize** button; "
    "same result as `/v1/auth/login`.",
    status_code=status.HTTP_200_OK,
    response_model=TokenResponse,
    responses=error_responses(400, 401, 429),
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
) -> TokenResponse:
    for name in ("username", "password"):
        if not is_safe_text(getattr(form, name)):
            field = f"body.{name}"
            raise ValidationFailed(f"{field} {UNSAFE_TEXT_MESSAGE}", field=field)
    return await _login(session, settings, throttle, form.username, form.password)


async def _login(
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    username: str,
    password: str,
) -> TokenResponse:
    """Both login routes: failed attempts for ``username`` are throttled."""
    async with throttle.attempt(username):
        issued = await users_service.login(
            session, username=username, password=password, settings=settings
        )
    return _token_response(issued)


@router.get(
    "/me",
    summary="The current user",
    description="The authenticated account, with its tier and admin flag as stored.",
    status_code=status.HTTP_200_OK,
    response_model=UserRead,
    responses=error_responses(401, 429),
)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.patch(
    "/me",
    summary="Update your e-mail settings",
    description="`email` (validated; `null` removes it) and `notify_email` (e-mail "
    "me when a job completes or fails, unless a submission says "
    "`notify_email: false`). Turning it on needs an address and SMTP settings on "
    "the server (400 otherwise).",
    response_model=UserRead,
    responses=error_responses(400, 401),
)
async def update_me(
    body: ProfileUpdate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> UserRead:
    changes = body.model_dump(exclude_unset=True)
    user = await users_service.update_profile(
        session, user=user, changes=changes, settings=settings
    )
    return UserRead.model_validate(user)


@router.post(
    "/logout",
    summary="Log out (end this token's session)",
    description="The presented token is revoked at once, for every API process "
    "(other tokens of the account stay valid; changing the password ends them all).",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 429),
)
async def logout(
    request: Request, user: CurrentUser, token: TokenDep, settings: SettingsDep
) -> Response:
    await users_service.logout(
        token or "", settings=settings, revocations=revocations_of(request.app)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    summary="Change your password",
    description="Needs the current password (failed attempts are throttled like "
    "logins). Every token issued before the change stops working, on every device; "
    "the response carries a fresh token for this session.",
    status_code=status.HTTP_200_OK,
    response_model=TokenResponse,
    responses=error_responses(400, 401, 429),
)
async def change_password(
    request: Request,
    body: PasswordChange,
    session: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    user: CurrentUser,
) -> TokenResponse:
    async with throttle.attempt(user.username):
        issued = await users_service.change_password(
            session,
            user=user,
            current_password=body.current_password,
            new_password=body.new_password,
            settings=settings,
            revocations=revocations_of(request.app),
        )
    return _token_response(issued)
