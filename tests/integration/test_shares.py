"""Public share links: created for completed backtests only, 256-bit tokens, the
page and JSON show config/metrics/charts but nothing of the account, noindex,
revoke is immediate, per-IP rate limit, BOLA on the owner routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import User
from app.main import create_app
from tests.integration.session_override import use_test_session
from tests.integration.test_backtest_api import SMALL, _completed_job, _job

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]


@pytest.fixture
def app(test_settings: Settings, session: AsyncSession) -> FastAPI:
    settings = test_settings.model_copy(
        update={
            "embedded_worker_concurrency": 0,
            "public_base_url": "https://bt.example.com",
        }
    )
    return use_test_session(create_app(settings), session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_share_shows_results_without_the_account(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    user = await user_factory(username="alice_private_name")
    job = await _completed_job(
        session, user, config={**SMALL, "callback_url": "https://hooks.example/x"}
    )
    created = await client.post(
        f"/v1/backtest/{job.id}/share", headers=auth_headers(user)
    )
    assert created.status_code == 201, created.text
    token, url = created.json()["token"], created.json()["url"]
    assert url == f"https://bt.example.com/s/{token}"
    assert len(token) >= 43  # 32 random bytes, URL-safe base64

    public = await client.get(f"/v1/public/{token}")
    assert public.status_code == 200
    assert public.headers["x-robots-tag"] == "noindex, nofollow"
    assert public.headers["cache-control"] == "no-store"
    body = public.json()
    assert body["metrics"]["total_return"] == job.metrics["total_return"]
    assert body["config"]["symbols"] == SMALL["symbols"]
    assert "callback_url" not in body["config"]
    assert len(body["results"]["chart"]["equity_curve"]) > 100
    page = await client.get(f"/s/{token}")
    assert page.status_code == 200 and page.headers["x-robots-tag"].startswith(
        "noindex"
    )
    assert '<meta name="robots" content="noindex' in page.text
    assert "<polyline" in page.text
    for text in (public.text, page.text):
        for secret in (str(job.id), str(user.id), user.username, "hooks.example"):
            assert secret not in text


async def test_revoke_is_immediate_and_a_new_link_replaces_the_old(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    headers = auth_headers(user)
    job = await _completed_job(session, user)
    first = (await client.post(f"/v1/backtest/{job.id}/share", headers=headers)).json()
    second = (await client.post(f"/v1/backtest/{job.id}/share", headers=headers)).json()
    assert first["token"] != second["token"]
    assert (await client.get(f"/v1/public/{first['token']}")).status_code == 404
    assert (await client.get(f"/v1/public/{second['token']}")).status_code == 200

    revoked = await client.delete(f"/v1/backtest/{job.id}/share", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get(f"/v1/public/{second['token']}")).status_code == 404
    assert (await client.get(f"/s/{second['token']}")).status_code == 404


async def test_only_completed_backtests_can_be_shared(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    for status in ("pending", "running", "failed", "cancelled"):
        job = await _job(session, user, status=status)
        answer = await client.post(
            f"/v1/backtest/{job.id}/share", headers=auth_headers(user)
        )
        assert answer.status_code == 409, status


async def test_share_routes_are_private_to_the_owner(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    owner, other = await user_factory(), await user_factory()
    job = await _completed_job(session, owner)
    token = (
        await client.post(f"/v1/backtest/{job.id}/share", headers=auth_headers(owner))
    ).json()["token"]
    for method in ("POST", "DELETE"):
        answer = await client.request(
            method, f"/v1/backtest/{job.id}/share", headers=auth_headers(other)
        )
        assert answer.status_code == 404, method
    assert (await client.post(f"/v1/backtest/{job.id}/share")).status_code == 401
    assert (await client.get(f"/v1/public/{token}")).status_code == 200  # untouched


async def test_unknown_tokens_are_404(client: httpx.AsyncClient) -> None:
    for token in ("x", "A" * 43, "../../etc/passwd"):
        assert (await client.get(f"/v1/public/{token}")).status_code == 404


async def test_public_reads_are_rate_limited_per_ip(
    test_settings: Settings,
    session: AsyncSession,
) -> None:
    settings = test_settings.model_copy(
        update={"share_rate_limit": "3/minute", "embedded_worker_concurrency": 0}
    )
    app = use_test_session(create_app(settings), session)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        codes = [(await c.get("/v1/public/" + "B" * 43)).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
