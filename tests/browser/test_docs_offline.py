"""/docs and /redoc with no outside network: every request to a host other than the
server's is aborted, and the pages must still render and work (their bundles are
vendored under app/web/vendor/, see app/api/docs.py).

Swagger UI is driven the way a reader uses it: Authorize with a real account (the
OAuth2 password flow fetches a real token from /v1/auth/token), then "Try it out" on
GET /v1/auth/me, whose response must name that account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import PASSWORD, Api, ConsoleLog, Server

pytestmark = pytest.mark.browser


@pytest.fixture
def offline(page: Any, server: Server) -> Iterator[list[str]]:
    """Abort every request that leaves the server; yields the aborted URLs."""
    local = urlsplit(server.base_url).netloc
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == local:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.context.route("**/*", handle)
    yield blocked


def test_swagger_ui_authorizes_and_tries_a_call_offline(
    page: Any, api: Api, offline: list[str]
) -> None:
    account = api.register("docs")
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .information-container .title")
    assert "Backtest Service API" in page.inner_text(".information-container .title")

    # Authorize: the password flow's dialog, filled with the account's credentials.
    page.click("button.authorize")
    dialog = page.locator(".dialog-ux .modal-ux")
    dialog.locator("#oauth_username").fill(account.username)
    dialog.locator("#oauth_password").fill(PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    # Swagger UI swaps Authorize for Logout once /v1/auth/token gave it a token.
    dialog.get_by_role("button", name="Remove authorization").wait_for()
    dialog.locator("button.btn-done").click()

    me = page.locator(".opblock.opblock-get").filter(
        has=page.locator('[data-path="/v1/auth/me"]')
    )
    me.locator(".opblock-summary-control").click()
    me.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: r.url.endswith("/v1/auth/me")) as response:
        me.get_by_role("button", name="Execute").click()
    sent = response.value
    assert sent.status == 200
    assert sent.request.headers["authorization"].startswith("Bearer ")
    # The page shows the live answer: the account that authorized.
    body = me.locator(".live-responses-table .response-col_description pre").first
    body.wait_for()
    shown = json.loads(body.inner_text())
    assert shown["username"] == account.username
    assert offline == [], f"the page tried to leave the server: {offline}"


# ReDoc's sidebar credit loads this logo from a hard-coded URL (not configurable in
# redoc 2.x) and removes the <img> when it fails to load: decorative, not needed.
REDOC_CREDIT_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_redoc_renders_offline(
    page: Any, offline: list[str], console: ConsoleLog
) -> None:
    console.allow(r"Failed to load resource: net::ERR_FAILED")
    page.goto("/redoc")
    page.wait_for_selector("redoc h1")
    assert "Backtest Service API" in page.inner_text("redoc h1")
    # The operations are rendered from /openapi.json, e.g. the token endpoint's path.
    page.get_by_text("/v1/auth/me").first.wait_for(state="attached")
    assert set(offline) <= {REDOC_CREDIT_LOGO}, f"the page left the server: {offline}"
    assert page.locator(f'img[src="{REDOC_CREDIT_LOGO}"]').count() == 0


def test_outside_requests_are_really_blocked(
    page: Any, offline: list[str], console: ConsoleLog
) -> None:
    """The fixture's own check: a CDN fetch from the page fails and is recorded (so
    the two tests above would see FastAPI's CDN-hosted pages fail)."""
    console.allow(r"net::ERR_FAILED|Failed to fetch")
    page.goto("/docs")
    cdn = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
    failed = page.evaluate("(url) => fetch(url).then(() => false, () => true)", cdn)
    assert failed is True
    assert offline == [cdn]
