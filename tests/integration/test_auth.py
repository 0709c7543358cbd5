"""Auth endpoints against real PostgreSQL, with real tokens."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import repository as users_repo
from app.core.config import Settings
from app.core.security import Tier
from app.db.models import User
from tests.integration.conftest import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.integration

Headers = Callable[[User], dict[str, str]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(user: User, **overrides: object) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {
        "sub": str(user.id),
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# --- register -------------------------------------------------------------------


async def test_register_creates_free_account(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"username": "alice.b-1", "password": "s3cret-pass"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice.b-1"
    assert body["tier"] == "free"
    assert body["is_admin"] is False
    uuid.UUID(body["id"])
    assert "password" not in body and "password_hash" not in body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "ab", "password": "long-enough"}, "body.username"),
        ({"username": "x" * 65, "password": "long-enough"}, "body.username"),
        ({"username": "bad name!", "password": "long-enough"}, "body.username"),
        ({"username": "carol", "password": "short"}, "body.password"),
        ({"username": "carol", "password": "p" * 257}, "body.password"),
        ({"username": "carol"}, "body.password"),
    ],
)
async def test_register_invalid_input_is_400_with_field(
    client: httpx.AsyncClient, payload: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/auth/register", json=payload)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "ValidationError"
    assert field in [d["field"] for d in body["details"]]


async def test_register_duplicate_username_is_409(
    client: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(username="taken")

    response = await client.post(
        "/v1/auth/register", json={"username": "taken", "password": "another-pass"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"


# --- login / token --------------------------------------------------------------


async def test_login_returns_bearer_token(
    client: httpx.AsyncClient, user_factory: UserFactory, test_settings: Settings
) -> None:
    user = await user_factory(username="dave")

    response = await client.post(
        "/v1/auth/login", json={"username": "dave", "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == test_settings.jwt_expire_minutes * 60
    me = await client.get("/v1/auth/me", headers=_bearer(body["access_token"]))
    assert me.json()["id"] == str(user.id)


async def test_login_wrong_password_and_unknown_user_look_identical(
    client: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(username="erin")

    wrong = await client.post(
        "/v1/auth/login", json={"username": "erin", "password": "wrong-password"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"username": "nobody", "password": "wrong-password"}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_token_form_login_works(
    client: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(username="frank")

    response = await client.post(
        "/v1/auth/token", data={"username": "frank", "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_token_form_wrong_password_is_401(
    client: httpx.AsyncClient, user_factory: UserFactory
) -> None:
    await user_factory(username="gina")

    response = await client.post(
        "/v1/auth/token", data={"username": "gina", "password": "nope-nope"}
    )

    assert response.status_code == 401


# --- me -------------------------------------------------------------------------


async def test_me_returns_current_user(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory(tier=Tier.PRO)

    response = await client.get("/v1/auth/me", headers=auth_headers(user))

    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.id),
        "username": user.username,
        "tier": "pro",
        "is_admin": False,
        "email": None,
        "notify_email": False,
    }


async def test_me_without_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


# --- admin ----------------------------------------------------------------------


async def test_admin_patch_by_non_admin_is_403(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()

    response = await client.patch(
        f"/v1/admin/users/{user.id}", json={"tier": "pro"}, headers=auth_headers(user)
    )

    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


async def test_admin_patch_updates_tier_and_admin(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    admin = await user_factory(is_admin=True)
    user = await user_factory()

    response = await client.patch(
        f"/v1/admin/users/{user.id}",
        json={"tier": "enterprise", "is_admin": True},
        headers=auth_headers(admin),
    )

    assert response.status_code == 200
    assert response.json()["tier"] == "enterprise"
    assert response.json()["is_admin"] is True
    me = await client.get("/v1/auth/me", headers=auth_headers(user))
    assert me.json()["tier"] == "enterprise"


async def test_admin_patch_unknown_user_is_404(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    admin = await user_factory(is_admin=True)

    response = await client.patch(
        f"/v1/admin/users/{uuid.uuid4()}",
        json={"tier": "pro"},
        headers=auth_headers(admin),
    )

    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"


async def test_admin_patch_empty_body_is_400(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    admin = await user_factory(is_admin=True)

    response = await client.patch(
        f"/v1/admin/users/{admin.id}", json={}, headers=auth_headers(admin)
    )

    assert response.status_code == 400


# --- JWT negative suite ---------------------------------------------------------


def _forged_tokens(user: User, secret: str) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    valid = jwt.encode(_claims(user), secret, algorithm="HS256")
    header, _, signature = valid.split(".")
    other = jwt.encode(_claims(user, sub=str(uuid.uuid4())), secret, algorithm="HS256")
    return {
        "alg_none": jwt.encode(_claims(user), None, algorithm="none"),
        "wrong_key": jwt.encode(_claims(user), "k" * 48, algorithm="HS256"),
        "hs384": jwt.encode(_claims(user), secret, algorithm="HS384"),
        "hs512": jwt.encode(_claims(user), secret, algorithm="HS512"),
        "expired": jwt.encode(
            _claims(
                user, iat=now - dt.timedelta(hours=2), exp=now - dt.timedelta(hours=1)
            ),
            secret,
            algorithm="HS256",
        ),
        "missing_exp": jwt.encode({"sub": str(user.id), "iat": now}, secret, "HS256"),
        "missing_iat": jwt.encode(
            {"sub": str(user.id), "exp": now + dt.timedelta(minutes=5)}, secret, "HS256"
        ),
        "missing_sub": jwt.encode(_claims(user, sub=None), secret, algorithm="HS256"),
        "sub_not_uuid": jwt.encode(_claims(user, sub="admin"), secret, "HS256"),
        "sub_unknown_user": other,
        "tampered_payload": f"{header}.{other.split('.')[1]}.{signature}",
        "garbage": "not-a-jwt",
        "empty_segments": "..",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "wrong_key",
        "hs384",
        "hs512",
        "expired",
        "missing_exp",
        "missing_iat",
        "missing_sub",
        "sub_not_uuid",
        "sub_unknown_user",
        "tampered_payload",
        "garbage",
        "empty_segments",
    ],
)
async def test_invalid_token_is_401(
    client: httpx.AsyncClient,
    user_factory: UserFactory,
    test_settings: Settings,
    case: str,
) -> None:
    user = await user_factory()
    token = _forged_tokens(user, test_settings.jwt_secret)[case]

    response = await client.get("/v1/auth/me", headers=_bearer(token))

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "Unauthorized"


async def test_token_of_deleted_user_is_401(
    client: httpx.AsyncClient,
    user_factory: UserFactory,
    session: AsyncSession,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    headers = auth_headers(user)
    await users_repo.delete(session, user)

    response = await client.get("/v1/auth/me", headers=headers)

    assert response.status_code == 401


async def test_forged_tier_and_admin_claims_grant_nothing(
    client: httpx.AsyncClient, user_factory: UserFactory, test_settings: Settings
) -> None:
    user = await user_factory(tier=Tier.FREE)
    other = await user_factory()
    claims = _claims(user, tier="enterprise", is_admin=True, admin=True, role="admin")
    token = jwt.encode(claims, test_settings.jwt_secret, algorithm="HS256")

    me = await client.get("/v1/auth/me", headers=_bearer(token))
    patch = await client.patch(
        f"/v1/admin/users/{other.id}", json={"tier": "pro"}, headers=_bearer(token)
    )

    assert me.status_code == 200
    assert me.json()["tier"] == "free"
    assert me.json()["is_admin"] is False
    assert patch.status_code == 403


@pytest.mark.parametrize("attempt", [1, 2])
async def test_register_commits_are_rolled_back_between_tests(
    client: httpx.AsyncClient, attempt: int
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"username": "isolated", "password": "long-enough"}
    )

    assert response.status_code == 201, f"attempt {attempt}: {response.text}"


async def test_login_rehashes_outdated_password_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    user = await users_repo.create(
        session, username="oldhash", password_hash=weak.hash(DEFAULT_PASSWORD)
    )
    old_hash = user.password_hash

    response = await client.post(
        "/v1/auth/login", json={"username": "oldhash", "password": DEFAULT_PASSWORD}
    )

    await session.refresh(user)
    assert response.status_code == 200
    assert user.password_hash != old_hash
    assert not PasswordHasher().check_needs_rehash(user.password_hash)
