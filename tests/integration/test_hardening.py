"""Hardening: the last administrator cannot be demoted, /metrics behind a token (and
not served in production without one), /docs and /openapi.json behind a setting."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import User
from tests.integration.conftest import UserFactory
from tests.integration.limits_support import app_on_session, client_for

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]


async def _only_admin(session: AsyncSession, user_factory: UserFactory) -> User:
    """``admin`` becomes the database's only administrator (rolled back after)."""
    await session.execute(update(User).values(is_admin=False))
    admin = await user_factory(is_admin=True)
    assert await session.scalar(select(func.count()).where(User.is_admin)) == 1
    return admin


async def test_admin_cannot_demote_the_last_admin_itself(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    admin = await _only_admin(session, user_factory)
    response = await client.patch(
        f"/v1/admin/users/{admin.id}",
        json={"is_admin": False},
        headers=auth_headers(admin),
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "Conflict"
    me = await client.get("/v1/auth/me", headers=auth_headers(admin))
    assert me.json()["is_admin"] is True


async def test_admin_can_step_down_once_another_admin_exists(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    admin = await _only_admin(session, user_factory)
    other = await user_factory()
    headers = auth_headers(admin)
    promoted = await client.patch(
        f"/v1/admin/users/{other.id}", json={"is_admin": True}, headers=headers
    )
    assert promoted.status_code == 200, promoted.text
    stepped = await client.patch(
        f"/v1/admin/users/{admin.id}", json={"is_admin": False}, headers=headers
    )
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["is_admin"] is False


@pytest.mark.parametrize(
    ("environment", "token", "auth", "status"),
    [
        ("test", None, None, 200),
        ("test", "s3cret-metrics", None, 401),
        ("test", "s3cret-metrics", "Bearer wrong", 401),
        ("test", "s3cret-metrics", "Bearer s3cret-metrics", 200),
        ("production", None, None, 404),
        ("production", "s3cret-metrics", "Bearer s3cret-metrics", 200),
    ],
)
async def test_metrics_token(
    test_settings: Settings,
    session: AsyncSession,
    environment: str,
    token: str | None,
    auth: str | None,
    status: int,
) -> None:
    settings = test_settings.model_copy(
        update={"environment": environment, "metrics_token": token}
    )
    headers = {"Authorization": auth} if auth else {}
    async with client_for(app_on_session(settings, session)) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    if status != 200:
        assert "error" in response.json()


@pytest.mark.parametrize("enabled", [True, False])
async def test_docs_setting(
    test_settings: Settings, session: AsyncSession, enabled: bool
) -> None:
    settings = test_settings.model_copy(update={"docs_enabled": enabled})
    async with client_for(app_on_session(settings, session)) as http:
        statuses = [(await http.get(p)).status_code for p in ("/docs", "/openapi.json")]
    assert statuses == ([200, 200] if enabled else [404, 404])


async def test_every_route_that_can_refuse_documents_429(
    client: httpx.AsyncClient,
) -> None:
    """Authenticated routes (per-user limit) and the auth routes (per-IP limit)."""
    schema = (await client.get("/openapi.json")).json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if ("401" in operation["responses"] or path.startswith("/v1/auth/"))
        and "429" not in operation["responses"]
    ]
    assert missing == []
