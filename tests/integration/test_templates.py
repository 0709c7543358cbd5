"""Templates: validated like a submission, names unique per user, BOLA, and a run
is a normal submission (quota, idempotency, overrides)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import Job, User
from app.main import create_app
from tests.integration.session_override import use_test_session

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]
CONFIG: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}


@pytest.fixture
def app(test_settings: Settings, session: AsyncSession) -> FastAPI:
    settings = test_settings.model_copy(update={"embedded_worker_concurrency": 0})
    return use_test_session(create_app(settings), session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _create(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str = "five",
    **config: Any,
) -> httpx.Response:
    body = {"name": name, "config": {**CONFIG, **config}}
    return await client.post("/v1/templates", json=body, headers=headers)


async def test_template_crud(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    created = await _create(client, headers)
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["kind"] == "backtest"
    assert template["config"]["symbols"] == CONFIG["symbols"]
    path = f"/v1/templates/{template['id']}"
    renamed = await client.patch(path, json={"name": "renamed"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
    listed = await client.get("/v1/templates", headers=headers)
    assert [t["name"] for t in listed.json()] == ["renamed"]
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert (await client.get(path, headers=headers)).status_code == 404


async def test_template_config_is_validated_like_a_submission(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    cases = [
        ({"end_date": "2017-01-01"}, "body.config.end_date"),  # before start
        ({"symbols": ["NOPE_NOT_A_SYMBOL"]}, "body.config.symbols"),  # not in data
        ({"commission": 5}, "body.config.commission"),
        ({"unknown_field": 1}, "body.config.unknown_field"),
    ]
    for change, field in cases:
        answer = await _create(client, headers, **change)
        assert answer.status_code == 400, (change, answer.text)
        assert answer.json()["details"][0]["field"].startswith(field), answer.json()


async def test_template_names_are_unique_per_user(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    alice, bob = auth_headers(await user_factory()), auth_headers(await user_factory())
    assert (await _create(client, alice, "same")).status_code == 201
    assert (await _create(client, alice, "same")).status_code == 409
    assert (await _create(client, bob, "same")).status_code == 201
    other = (await _create(client, alice, "other")).json()
    clash = await client.patch(
        f"/v1/templates/{other['id']}", json={"name": "same"}, headers=alice
    )
    assert clash.status_code == 409


async def test_templates_are_private_to_their_owner(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    owner, other = (
        auth_headers(await user_factory()),
        auth_headers(await user_factory()),
    )
    template_id = (await _create(client, owner)).json()["id"]
    path = f"/v1/templates/{template_id}"
    for method, url, body in (
        ("GET", path, None),
        ("PATCH", path, {"name": "x"}),
        ("DELETE", path, None),
        ("POST", f"{path}/run", None),
    ):
        answer = await client.request(method, url, json=body, headers=other)
        assert answer.status_code == 404, (method, url)
    assert (await client.get("/v1/templates", headers=other)).json() == []
    assert (await client.get(path, headers=owner)).status_code == 200


async def test_run_template_is_a_normal_submission_with_overrides(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: Any,
    auth_headers: Headers,
) -> None:
    headers = auth_headers(await user_factory())
    template_id = (await _create(client, headers)).json()["id"]
    run = f"/v1/templates/{template_id}/run"
    overrides = {"start_date": "2019-01-01", "initial_capital": 50_000}
    keyed = {**headers, "Idempotency-Key": "nightly-1"}
    first = await client.post(run, json=overrides, headers=keyed)
    assert first.status_code == 200, first.text
    replay = await client.post(run, json=overrides, headers=keyed)
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    job = await session.get(Job, first.json()["task_id"])
    assert job is not None and job.kind == "backtest" and job.name == "five"
    assert job.config["start_date"] == "2019-01-01"
    assert job.config["initial_capital"] == 50_000
    assert job.config["symbols"] == CONFIG["symbols"]

    bad = await client.post(run, json={"end_date": "2010-01-01"}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["details"][0]["field"] == "body.end_date"


async def test_run_template_counts_against_the_quota(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    # free tier: 10 submissions an hour (over the 2 running, runs wait as queued)
    headers = auth_headers(await user_factory())
    template_id = (await _create(client, headers)).json()["id"]
    codes = [
        (
            await client.post(f"/v1/templates/{template_id}/run", headers=headers)
        ).status_code
        for _ in range(11)
    ]
    assert codes == [200] * 10 + [429]
