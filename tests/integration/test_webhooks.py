"""Webhooks against real PostgreSQL and a real HTTP receiver on 127.0.0.1: the API
(secret shown once, BOLA, SSRF refusals), signed deliveries verified with the
``standardwebhooks`` library, the retry schedule (short, configured), redirects not
followed, DNS rebinding refused at delivery time, endpoints disabled after failing
for days, and ``callback_url`` on a submission."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import Job, User, WebhookDelivery, WebhookEndpoint
from app.jobs import notify
from app.jobs import repository as jobs_repo
from app.main import create_app
from app.webhooks import delivery
from app.webhooks.client import guarded_client
from tests.integration.receiver import Receiver, start_receiver
from tests.integration.session_override import use_test_session

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]
SCHEDULE = [0.0, 0.3, 0.6]
JITTER = 0.1
METRICS = {"total_return": 0.42, "sharpe_ratio": 1.3, "max_drawdown": -0.2, "x": 1}
SMALL: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture
def settings(test_settings: Settings) -> Settings:
    return test_settings.model_copy(
        update={
            "webhook_allowed_hosts": ["127.0.0.1"],
            "webhook_retry_schedule_seconds": SCHEDULE,
            "webhook_retry_jitter": JITTER,
            "webhook_timeout_seconds": 2.0,
            "public_base_url": "https://backtests.example.com",
        }
    )


@pytest.fixture
def app(settings: Settings, session: AsyncSession) -> FastAPI:
    return use_test_session(create_app(settings), session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = start_receiver([200])
    yield server
    server.server.shutdown()


async def _register(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, **extra: Any
) -> httpx.Response:
    body = {"url": url, "events": ["backtest.completed", "backtest.failed"], **extra}
    return await client.post("/v1/webhooks", json=body, headers=headers)


async def _finished_job(session: AsyncSession, user: User, **config: Any) -> Job:
    row = await jobs_repo.create(
        session, user_id=user.id, kind="backtest", config=config, name="nightly"
    )
    row.status, row.metrics, row.completed_at = "completed", METRICS, utcnow()
    await session.commit()
    return row


async def _attempt(session: AsyncSession, delivery_id: uuid.UUID, s: Settings) -> Any:
    """One attempt as the ``webhooks.deliver`` task makes it (claim, send, record)."""
    attempt = await delivery.claim(session, delivery_id, settings=s)
    if attempt is None:
        return None
    with guarded_client(allowed_hosts=s.webhook_allowed_hosts, timeout=2) as http:
        outcome = delivery.send(http, attempt)
    return await delivery.record(session, attempt, outcome, settings=s)


async def _deliveries(session: AsyncSession, job: Job) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)
    return list(await session.scalars(query.execution_options(populate_existing=True)))


# --- API --------------------------------------------------------------------------
async def test_create_webhook_shows_secret_once(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    created = await _register(client, headers, "http://127.0.0.1:9/x", description="ci")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    Webhook(body["secret"])  # a valid Standard Webhooks secret
    assert body["status"] == "active"
    read = (await client.get(f"/v1/webhooks/{body['id']}", headers=headers)).json()
    listed = (await client.get("/v1/webhooks", headers=headers)).json()
    assert "secret" not in read and read["description"] == "ci"
    assert [w["id"] for w in listed] == [body["id"]]

    rotated = await client.post(
        f"/v1/webhooks/{body['id']}/rotate-secret", headers=headers
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != body["secret"]
    deleted = await client.delete(f"/v1/webhooks/{body['id']}", headers=headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/webhooks/{body['id']}", headers=headers)
    assert gone.status_code == 404


async def test_webhook_endpoints_are_private_to_their_owner(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    owner, other = (
        auth_headers(await user_factory()),
        auth_headers(await user_factory()),
    )
    hook_id = (await _register(client, owner, "http://127.0.0.1:9/x")).json()["id"]
    for method, path in (
        ("GET", f"/v1/webhooks/{hook_id}"),
        ("DELETE", f"/v1/webhooks/{hook_id}"),
        ("POST", f"/v1/webhooks/{hook_id}/rotate-secret"),
        ("POST", f"/v1/webhooks/{hook_id}/enable"),
        ("GET", f"/v1/webhooks/{hook_id}/deliveries"),
    ):
        answer = await client.request(method, path, headers=other)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await client.get("/v1/webhooks", headers=other)).json() == []
    assert (
        await client.get(f"/v1/webhooks/{hook_id}", headers=owner)
    ).status_code == 200
    assert (await client.get("/v1/webhooks")).status_code == 401


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "https"),
        ("https://localhost/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://10.1.2.3/hook", "private"),
        ("https://[::1]/hook", "loopback"),
        ("https://metadata.google.internal/", "metadata"),
        ("https://user:pw@example.com/", "credentials"),
        ("ftp://127.0.0.1/hook", "https"),
    ],
)
async def test_create_webhook_refuses_unsafe_urls(
    client: httpx.AsyncClient,
    user_factory: Any,
    auth_headers: Headers,
    url: str,
    reason: str,
) -> None:
    answer = await _register(client, auth_headers(await user_factory()), url)
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["field"] == "body.url"
    assert reason in answer.json()["message"]


async def test_loopback_is_refused_without_the_allowlist(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    app = use_test_session(create_app(test_settings), session)  # no allowlist
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        headers = auth_headers(await user_factory())
        plain = await _register(c, headers, "http://127.0.0.1:8080/hook")
        tls = await _register(c, headers, "https://127.0.0.1/hook")
    assert plain.status_code == tls.status_code == 400
    assert "loopback" in tls.json()["message"]


async def test_create_webhook_refuses_unknown_events(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    answer = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/", "events": ["backtest.started"]},
        headers=auth_headers(await user_factory()),
    )
    assert answer.status_code == 400
    assert answer.json()["details"][0]["field"] == "body.events.0"


# --- deliveries -------------------------------------------------------------------
async def test_delivery_is_signed_and_retried_on_the_schedule(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    receiver = start_receiver([500, 503, 204])
    user = await user_factory()
    headers = auth_headers(user)
    hook = (await _register(client, headers, receiver.url)).json()
    job = await _finished_job(session, user)

    await notify.job_finished(session, job.id, settings=settings)
    (row,) = await _deliveries(session, job)
    delays = []
    while (delay := await _attempt(session, row.id, settings)) is not None:
        await session.refresh(row)
        assert row.next_attempt_at is not None and row.last_attempt_at is not None
        delays.append((row.next_attempt_at - row.last_attempt_at).total_seconds())
        await asyncio.sleep(delay)

    requests = receiver.wait_for(3)
    receiver.server.shutdown()
    # Two failures, each followed by the schedule's next delay (with jitter).
    assert len(delays) == 2
    for got, planned in zip(delays, SCHEDULE[1:], strict=True):
        assert planned * (1 - JITTER) - 0.01 <= got <= planned * (1 + JITTER) + 0.01
    # The same webhook-id on every attempt; each signature verifies.
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    verifier = Webhook(hook["secret"])
    for r in requests:
        payload = verifier.verify(r.body, r.headers)
        assert payload["type"] == "backtest.completed"
    data = json.loads(requests[0].body)["data"]
    assert data["job_id"] == str(job.id) and data["status"] == "completed"
    assert data["metrics"] == {
        k: METRICS[k] for k in ("total_return", "sharpe_ratio", "max_drawdown")
    }
    assert data["links"]["self"] == (
        f"https://backtests.example.com/v1/backtest/{job.id}"
    )
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(requests[0].body, requests[0].headers)

    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)
    (shown,) = listed.json()
    assert shown["status"] == "succeeded" and shown["attempts"] == 3
    assert shown["response_code"] == 204 and shown["next_attempt_at"] is None
    assert shown["webhook_id"] == requests[0].headers["webhook-id"]


async def test_delivery_gives_up_after_the_last_attempt(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    receiver = start_receiver([500])
    user = await user_factory()
    await _register(client, auth_headers(user), receiver.url)
    job = await _finished_job(session, user)
    await notify.job_finished(session, job.id, settings=settings)
    (row,) = await _deliveries(session, job)
    fast = settings.model_copy(update={"webhook_retry_schedule_seconds": [0, 0, 0]})
    attempts = 0
    while await _attempt(session, row.id, fast) is not None or attempts == 0:
        attempts += 1
        if attempts > 5:
            break
    await session.refresh(row)
    assert row.status == "failed" and row.attempts == 3
    assert row.response_code == 500 and row.next_attempt_at is None
    assert len(receiver.wait_for(3)) == 3
    receiver.server.shutdown()


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
    receiver: Receiver,
) -> None:
    redirecting = start_receiver([302], location=receiver.url)
    user = await user_factory()
    await _register(client, auth_headers(user), redirecting.url)
    job = await _finished_job(session, user)
    await notify.job_finished(session, job.id, settings=settings)
    (row,) = await _deliveries(session, job)
    await _attempt(session, row.id, settings)
    await session.refresh(row)
    redirecting.server.shutdown()
    assert row.response_code == 302 and row.status == "pending"
    assert "redirects are not followed" in (row.last_error or "")
    assert receiver.requests == []  # the target of the redirect heard nothing


async def test_delivery_time_guard_refuses_a_rebound_name(
    session: AsyncSession, settings: Settings, user_factory: Any, receiver: Receiver
) -> None:
    """The name passed the check when registered; at delivery it resolves to a
    private (then a loopback) address: the connection is refused, nothing is sent."""
    port = receiver.server.server_address[1]
    for address in ("10.0.0.5", "127.0.0.1"):
        with guarded_client(
            allowed_hosts=["127.0.0.1"],
            timeout=2,
            resolver=lambda host, _port, a=address: [a],
        ) as http:
            attempt = delivery.Attempt(
                uuid.uuid4(),
                f"http://hooks.example.com:{port}/hook",
                delivery.new_secret(),
                "msg_1",
                "{}",
            )
            outcome = delivery.send(http, attempt)
        assert not outcome.ok and "ConnectError" in (outcome.error or "")
        assert "private" in (outcome.error or "") or "loopback" in (outcome.error or "")
    assert receiver.requests == []


async def test_endpoint_failing_for_days_is_disabled(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    receiver = start_receiver([500])
    user = await user_factory()
    headers = auth_headers(user)
    hook = (await _register(client, headers, receiver.url)).json()
    endpoint = await session.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert endpoint is not None
    endpoint.failing_since = utcnow() - dt.timedelta(days=5, minutes=1)
    await session.commit()
    job = await _finished_job(session, user)
    await notify.job_finished(session, job.id, settings=settings)
    (row,) = await _deliveries(session, job)

    await _attempt(session, row.id, settings)  # fails: the 5 days are up
    shown = (await client.get(f"/v1/webhooks/{hook['id']}", headers=headers)).json()
    assert shown["status"] == "disabled"
    assert "every delivery failed since" in shown["status_note"]
    row.next_attempt_at = utcnow()
    await session.commit()
    assert await _attempt(session, row.id, settings) is None  # no more attempts
    await session.refresh(row)
    assert row.status == "failed" and row.last_error == "The endpoint is disabled."
    assert len(receiver.requests) == 1
    receiver.server.shutdown()

    enabled = await client.post(f"/v1/webhooks/{hook['id']}/enable", headers=headers)
    assert (
        enabled.json()["status"] == "active" and enabled.json()["status_note"] is None
    )


async def test_only_subscribed_events_are_delivered(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/x", "events": ["backtest.failed"]},
        headers=auth_headers(user),
    )
    job = await _finished_job(session, user)
    await notify.job_finished(session, job.id, settings=settings)
    assert await _deliveries(session, job) == []


# --- callback_url -----------------------------------------------------------------
async def test_callback_url_needs_an_endpoint_and_a_safe_url(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    body = {**SMALL, "callback_url": "http://127.0.0.1:9/cb"}
    no_endpoint = await client.post("/v1/backtest", json=body, headers=headers)
    assert no_endpoint.status_code == 400
    assert no_endpoint.json()["details"][0]["field"] == "body.callback_url"
    await _register(client, headers, "http://127.0.0.1:9/x")
    unsafe = await client.post(
        "/v1/backtest",
        json={**SMALL, "callback_url": "https://169.254.169.254/"},
        headers=headers,
    )
    assert unsafe.status_code == 400 and "metadata" in unsafe.json()["message"]
    accepted = await client.post("/v1/backtest", json=body, headers=headers)
    assert accepted.status_code == 200, accepted.text


async def test_callback_url_gets_a_delivery_signed_with_the_default_secret(
    client: httpx.AsyncClient,
    session: AsyncSession,
    settings: Settings,
    user_factory: Any,
    auth_headers: Headers,
    receiver: Receiver,
) -> None:
    user = await user_factory()
    headers = auth_headers(user)
    first = (await _register(client, headers, "http://127.0.0.1:9/a")).json()
    await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/b", "events": ["backtest.failed"]},
        headers=headers,
    )
    job = await _finished_job(session, user, callback_url=receiver.url)
    await notify.job_finished(session, job.id, settings=settings)
    rows = await _deliveries(session, job)
    (callback,) = [r for r in rows if r.url == receiver.url]
    await _attempt(session, callback.id, settings)
    (request,) = receiver.wait_for(1)
    assert Webhook(first["secret"]).verify(request.body, request.headers)["type"] == (
        "backtest.completed"
    )
