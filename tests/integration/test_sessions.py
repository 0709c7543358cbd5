"""Ending sessions on live servers, in both modes: logout revokes one token at once,
a password change voids every earlier token (HTTP and WebSocket alike)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.stack import LiveApi

pytestmark = pytest.mark.integration
PASSWORD = "correct-horse-battery"


@pytest.fixture(params=["embedded_server", "live_stack"], scope="module")
def server(request: pytest.FixtureRequest) -> LiveApi:
    live: LiveApi = request.getfixturevalue(request.param)
    return live


async def _me(http: httpx.AsyncClient, token: str) -> int:
    response = await http.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


async def _ws_close_code(server: LiveApi, token: str) -> int | None:
    url = f"{server.ws_url}/v1/backtest/{uuid.uuid4()}/progress?token={token}"
    async with connect(url, open_timeout=30) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    return ws.close_code


async def test_logout_revokes_only_that_token(server: LiveApi) -> None:
    user = server.make_user(password=PASSWORD)
    other = server.login(user.username, PASSWORD)
    async with server.client() as http:
        out = await http.post(
            "/v1/auth/logout", headers={"Authorization": f"Bearer {user.token}"}
        )
        assert out.status_code == 204, out.text
        assert await _me(http, user.token) == 401
        assert await _me(http, other.token) == 200
    assert await _ws_close_code(server, user.token) == 4001
    assert await _ws_close_code(server, other.token) == 4004  # valid: unknown job


async def test_password_change_voids_every_earlier_token(server: LiveApi) -> None:
    user = server.make_user(password=PASSWORD)
    laptop = server.login(user.username, PASSWORD)
    async with server.client() as http:
        wrong = await http.post(
            "/v1/auth/password",
            json={"current_password": "not-it-at-all", "new_password": "new-pass-123"},
            headers=user.headers,
        )
        assert wrong.status_code == 401, wrong.text
        changed = await http.post(
            "/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "new-pass-123"},
            headers=user.headers,
        )
        assert changed.status_code == 200, changed.text
        fresh = changed.json()["access_token"]
        assert await _me(http, user.token) == 401
        assert await _me(http, laptop.token) == 401
        assert await _me(http, fresh) == 200
        old = await http.post(
            "/v1/auth/login", json={"username": user.username, "password": PASSWORD}
        )
        assert old.status_code == 401
    assert server.login(user.username, "new-pass-123").token
    assert await _ws_close_code(server, laptop.token) == 4001
