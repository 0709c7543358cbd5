"""Completion e-mails: validated account addresses (register, PATCH /v1/auth/me),
clear 400s without SMTP settings or an address, and a real message through a local
SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import User
from app.emails import mail
from app.jobs.registry import JobEvent
from app.main import create_app
from tests.integration.session_override import use_test_session
from tests.integration.smtp_server import SmtpServer

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]
SMALL: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _client(settings: Settings, session: AsyncSession) -> httpx.AsyncClient:
    app: FastAPI = use_test_session(create_app(settings), session)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    )


@pytest.fixture
async def with_smtp(
    test_settings: Settings, session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    settings = test_settings.model_copy(
        update={"smtp_url": "smtp://127.0.0.1:9", "embedded_worker_concurrency": 0}
    )
    async with _client(settings, session) as c:
        yield c


@pytest.fixture
async def without_smtp(
    test_settings: Settings, session: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    settings = test_settings.model_copy(update={"embedded_worker_concurrency": 0})
    async with _client(settings, session) as c:
        yield c


async def test_register_with_a_validated_email(with_smtp: httpx.AsyncClient) -> None:
    good = await with_smtp.post(
        "/v1/auth/register",
        json={
            "username": "mailer_ok",
            "password": "correct-horse-battery",
            "email": "alice@example.com",
        },
    )
    assert good.status_code == 201, good.text
    assert good.json()["email"] == "alice@example.com"
    assert good.json()["notify_email"] is False
    bad = await with_smtp.post(
        "/v1/auth/register",
        json={
            "username": "mailer_bad",
            "password": "correct-horse-battery",
            "email": "not-an-address",
        },
    )
    assert bad.status_code == 400
    assert bad.json()["details"][0]["field"] == "body.email"


async def test_notify_email_setting_needs_an_address(
    with_smtp: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    refused = await with_smtp.patch(
        "/v1/auth/me", json={"notify_email": True}, headers=headers
    )
    assert (
        refused.status_code == 400 and "no e-mail address" in refused.json()["message"]
    )
    invalid = await with_smtp.patch(
        "/v1/auth/me", json={"email": "a@"}, headers=headers
    )
    assert invalid.status_code == 400
    ok = await with_smtp.patch(
        "/v1/auth/me",
        json={"email": "bob@example.com", "notify_email": True},
        headers=headers,
    )
    assert ok.status_code == 200
    assert (ok.json()["email"], ok.json()["notify_email"]) == ("bob@example.com", True)
    me = (await with_smtp.get("/v1/auth/me", headers=headers)).json()
    assert me["notify_email"] is True
    removed = await with_smtp.patch(
        "/v1/auth/me", json={"email": None}, headers=headers
    )
    assert removed.json()["email"] is None and removed.json()["notify_email"] is False


async def test_notify_email_is_refused_without_smtp_settings(
    without_smtp: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    await without_smtp.patch(
        "/v1/auth/me", json={"email": "c@example.com"}, headers=headers
    )
    setting = await without_smtp.patch(
        "/v1/auth/me", json={"notify_email": True}, headers=headers
    )
    submission = await without_smtp.post(
        "/v1/backtest", json={**SMALL, "notify_email": True}, headers=headers
    )
    for answer in (setting, submission):
        assert answer.status_code == 400
        assert "SMTP" in answer.json()["message"]
        assert answer.json()["details"][0]["field"] == "body.notify_email"
    plain = await without_smtp.post(
        "/v1/backtest", json={**SMALL, "notify_email": False}, headers=headers
    )
    assert plain.status_code == 200


async def test_notify_email_on_a_submission_needs_an_address(
    with_smtp: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    body = {**SMALL, "notify_email": True}
    refused = await with_smtp.post("/v1/backtest", json=body, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["details"][0]["field"] == "body.notify_email"
    await with_smtp.patch(
        "/v1/auth/me", json={"email": "d@example.com"}, headers=headers
    )
    accepted = await with_smtp.post("/v1/backtest", json=body, headers=headers)
    assert accepted.status_code == 200, accepted.text


def test_completion_mail_goes_through_smtp(
    smtp: SmtpServer, test_settings: Settings
) -> None:
    event = JobEvent(
        job_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        kind="backtest",
        status="completed",
        name="nightly momentum",
        config={},
        metrics={"total_return": 0.4213, "sharpe_ratio": 1.234, "max_drawdown": -0.2},
        error=None,
        created_at=utcnow(),
        completed_at=utcnow(),
    )
    subject, body = mail.compose(
        event, label="Backtest", link="https://x/v1/backtest/1"
    )
    settings = test_settings.model_copy(
        update={"smtp_url": smtp.url, "smtp_from": "bt@example.com"}
    )
    mail.send(settings, to="erin@example.com", subject=subject, body=body)

    ((recipients, message),) = smtp.inbox.wait_for(1)
    assert recipients == ["erin@example.com"]
    assert message["Subject"] == "Backtest completed: nightly momentum"
    assert message["From"] == "bt@example.com"
    text = message.get_payload()
    assert "Total return: 42.13%" in text and "Sharpe ratio: 1.23" in text
    assert "Max drawdown: -20.00%" in text and "https://x/v1/backtest/1" in text
