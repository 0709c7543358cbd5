"""The /v1/sweeps API on real PostgreSQL through the ASGI app (no worker: submitted
sweeps stay pending). Validation, caps, idempotency, paging and BOLA; the runs
themselves are in ``test_sweeps_flow``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.queue import get_celery
from app.core.security import Tier
from app.db.models import Job, User
from app.main import create_app
from tests.integration.conftest import UserFactory
from tests.integration.limits_support import (
    app_on_session,
    client_for,
    limit_settings,
)
from tests.integration.session_override import use_test_session

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]

BASE: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 2},
    "symbols": ["AAPL", "MSFT", "AMZN", "JPM", "XOM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}
# lookback 20, 40, 60 x skip 0, 30: skip 30 >= lookback 20 is invalid -> 5 of 6.
SWEEP: dict[str, Any] = {
    "name": "lookback x skip",
    "base": BASE,
    "grid": {
        "strategy_params.lookback": {"start": 20, "stop": 60, "step": 20},
        "strategy_params.skip": [0, 30],
    },
}


@pytest.fixture
def app(test_settings: Settings, session: AsyncSession) -> FastAPI:
    assert str(get_celery().conf.broker_url).startswith("memory")
    settings = test_settings.model_copy(
        update={"embedded_worker_concurrency": 0, "rate_limit_enabled": False}
    )
    return use_test_session(create_app(settings), session)


async def _count(session: AsyncSession, user: User) -> int:
    query = select(func.count()).where(Job.user_id == user.id, Job.kind == "sweep")
    return int(await session.scalar(query) or 0)


async def test_submit_counts_valid_and_skipped_combinations(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()
    response = await client.post("/v1/sweeps", json=SWEEP, headers=auth_headers(user))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert (body["combinations"], body["skipped_combinations"]) == (5, 1)
    status = await client.get(
        f"/v1/sweeps/{body['sweep_id']}", headers=auth_headers(user)
    )
    assert status.status_code == 200
    assert status.json()["combinations"] == 5
    assert status.json()["combinations_done"] == 0
    assert status.json()["best"] is None


async def test_no_valid_combination_is_400_naming_the_reason(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    body = {**SWEEP, "grid": {"strategy_params.lookback": [20, 30],
                              "strategy_params.skip": [40, 50]}}  # fmt: skip
    response = await client.post("/v1/sweeps", json=body, headers=auth_headers(user))

    assert response.status_code == 400
    assert "must be smaller than lookback" in response.json()["message"]
    assert response.json()["details"][0]["field"] == "body.grid"
    assert await _count(session, user) == 0


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"strategy_params.window": [5]}, "body.grid.strategy_params.window"),
        ({"initial_capital": [1000]}, "body.grid.initial_capital"),
        ({"filter_criteria.top_n": [5]}, "body.grid.filter_criteria.top_n"),
        ({"commission": {"start": 1, "stop": 0, "step": 1}}, "body.grid.commission"),
        ({"commission": []}, "body.grid.commission"),
    ],
)
async def test_bad_grid_is_400_naming_the_key(
    client: httpx.AsyncClient,
    user_factory: UserFactory,
    auth_headers: Headers,
    grid: dict[str, Any],
    field: str,
) -> None:
    user = await user_factory()
    body = {**SWEEP, "grid": grid}
    response = await client.post("/v1/sweeps", json=body, headers=auth_headers(user))

    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == field


async def test_invalid_base_is_400_under_body_base(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()
    base = {**BASE, "symbols": ["AAPL", "NOPE"]}
    response = await client.post(
        "/v1/sweeps", json={**SWEEP, "base": base}, headers=auth_headers(user)
    )
    typo = await client.post(
        "/v1/sweeps",
        json={**SWEEP, "base": {**BASE, "comission": 0.1}},
        headers=auth_headers(user),
    )

    assert response.status_code == 400
    assert response.json()["details"][0]["field"].startswith("body.base")
    assert typo.status_code == 400
    assert typo.json()["details"][0]["field"] == "body.base.comission"


async def test_invalid_scalar_values_are_skipped(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()
    body = {**SWEEP, "grid": {"commission": [0.0, 0.001, 0.5], "execution": ["close"]}}
    response = await client.post("/v1/sweeps", json=body, headers=auth_headers(user))

    assert response.status_code == 200, response.text
    assert (response.json()["combinations"], response.json()["skipped_combinations"]) \
        == (2, 1)  # fmt: skip


async def test_combination_cap_by_tier(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    free, pro = await user_factory(), await user_factory(tier=Tier.PRO)
    grid = {  # 101 combinations (every one valid): one over the free cap of 100
        "strategy_params.lookback": {"start": 100, "stop": 200, "step": 1},
    }
    body = {**SWEEP, "grid": grid}
    refused = await client.post("/v1/sweeps", json=body, headers=auth_headers(free))
    accepted = await client.post("/v1/sweeps", json=body, headers=auth_headers(pro))
    at_cap = await client.post(
        "/v1/sweeps",
        json={**SWEEP, "grid": {"strategy_params.lookback": list(range(100, 200))}},
        headers=auth_headers(free),
    )

    assert refused.status_code == 400
    assert "at most 100" in refused.json()["message"]
    assert accepted.status_code == 200
    assert accepted.json()["combinations"] == 101
    assert at_cap.status_code == 200


async def test_limits_publish_the_callers_tier_cap(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    free, pro = await user_factory(), await user_factory(tier=Tier.PRO)
    free_limits = await client.get("/v1/sweeps/limits", headers=auth_headers(free))
    pro_limits = await client.get("/v1/sweeps/limits", headers=auth_headers(pro))
    anonymous = await client.get("/v1/sweeps/limits")

    assert free_limits.status_code == 200
    body = free_limits.json()
    assert (body["tier"], body["max_combinations"]) == ("free", 100)
    assert pro_limits.json()["max_combinations"] == 5000
    assert "sharpe_ratio" in body["objectives"]
    assert "rebalancing" in body["grid_keys"]
    assert anonymous.status_code == 401


async def test_idempotency_key_replays_and_mismatches(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    headers = {**auth_headers(user), "Idempotency-Key": "sweep-1"}
    first = await client.post("/v1/sweeps", json=SWEEP, headers=headers)
    again = await client.post("/v1/sweeps", json=SWEEP, headers=headers)
    other = await client.post(
        "/v1/sweeps", json={**SWEEP, "name": "other"}, headers=headers
    )
    as_backtest = await client.post("/v1/backtest", json=BASE, headers=headers)

    assert first.status_code == 200
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert as_backtest.status_code == 422  # one key, two kinds: a mismatch
    assert await _count(session, user) == 1


async def test_list_is_paged_and_own_only(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user, other = await user_factory(), await user_factory()
    ids = []
    for i in range(3):
        body = {**SWEEP, "name": f"s{i}"}
        response = await client.post(
            "/v1/sweeps", json=body, headers=auth_headers(user)
        )
        ids.append(response.json()["sweep_id"])
    await client.post("/v1/sweeps", json=SWEEP, headers=auth_headers(other))

    page = await client.get(
        "/v1/sweeps", params={"limit": 2}, headers=auth_headers(user)
    )
    listed = [item["sweep_id"] for item in page.json()]

    assert page.status_code == 200
    assert page.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in page.headers["Link"]
    assert listed == ids[::-1][:2]  # newest first


async def test_every_sweep_endpoint_hides_other_users_sweeps(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    owner, intruder = await user_factory(), await user_factory()
    created = await client.post("/v1/sweeps", json=SWEEP, headers=auth_headers(owner))
    sid = created.json()["sweep_id"]
    h = auth_headers(intruder)
    calls = [
        client.get(f"/v1/sweeps/{sid}", headers=h),
        client.get(f"/v1/sweeps/{sid}/results", headers=h),
        client.get(
            f"/v1/sweeps/{sid}/heatmap",
            params={"x": "strategy_params.lookback", "y": "strategy_params.skip"},
            headers=h,
        ),
        client.get(f"/v1/sweeps/{sid}/returns", headers=h),
        client.post(f"/v1/sweeps/{sid}/results/0/backtest", headers=h),
        client.delete(f"/v1/sweeps/{sid}", headers=h),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, response.request.url
    # a backtest id is not a sweep either, and the owner still sees it intact
    assert (
        await client.get(f"/v1/sweeps/{uuid.uuid4()}", headers=h)
    ).status_code == 404
    mine = await client.get(f"/v1/sweeps/{sid}", headers=auth_headers(owner))
    assert mine.json()["status"] == "pending"
    backtest = await client.post("/v1/backtest", json=BASE, headers=auth_headers(owner))
    tid = backtest.json()["task_id"]
    as_sweep = await client.get(f"/v1/sweeps/{tid}", headers=auth_headers(owner))
    assert as_sweep.status_code == 404


async def test_cancel_pending_then_delete(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()
    sid = (
        await client.post("/v1/sweeps", json=SWEEP, headers=auth_headers(user))
    ).json()["sweep_id"]
    cancelled = await client.delete(f"/v1/sweeps/{sid}", headers=auth_headers(user))
    deleted = await client.delete(f"/v1/sweeps/{sid}", headers=auth_headers(user))
    gone = await client.get(f"/v1/sweeps/{sid}", headers=auth_headers(user))

    assert cancelled.json()["status"] == "cancelled"
    assert deleted.status_code == 200
    assert gone.status_code == 404


async def test_results_sort_must_be_known(
    client: httpx.AsyncClient, user_factory: UserFactory, auth_headers: Headers
) -> None:
    user = await user_factory()
    sid = (
        await client.post("/v1/sweeps", json=SWEEP, headers=auth_headers(user))
    ).json()["sweep_id"]
    bad = await client.get(
        f"/v1/sweeps/{sid}/results",
        params={"sort": "-nope"},
        headers=auth_headers(user),
    )
    empty = await client.get(
        f"/v1/sweeps/{sid}/results",
        params={"sort": "-sharpe_ratio"},
        headers=auth_headers(user),
    )

    assert bad.status_code == 400
    assert empty.status_code == 200
    assert empty.json() == []
    assert empty.headers["X-Total-Count"] == "0"


async def test_a_sweep_is_one_submission_whatever_its_size(
    test_settings: Settings, session: AsyncSession, user_factory: UserFactory,
    auth_headers: Headers,
) -> None:  # fmt: skip
    settings = limit_settings(
        test_settings,
        rules={"submit": {"free": "2/hour"}, "active_jobs": {"free": 5}},
    )
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as c:
        answers = [
            await c.post("/v1/sweeps", json=SWEEP, headers=auth_headers(user))
            for _ in range(3)
        ]

    assert [a.status_code for a in answers] == [200, 200, 429]  # 5 rows each
    assert answers[0].headers["X-RateLimit-Limit"] == "2"
    assert await _count(session, user) == 2


async def test_a_pending_sweep_is_one_active_job_the_next_waits(
    test_settings: Settings, session: AsyncSession, user_factory: UserFactory,
    auth_headers: Headers,
) -> None:  # fmt: skip
    settings = limit_settings(test_settings, rules={"active_jobs": {"free": 1}})
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as c:
        first = await c.post("/v1/sweeps", json=SWEEP, headers=auth_headers(user))
        backtest = await c.post("/v1/backtest", json=BASE, headers=auth_headers(user))

    # The sweep holds the one slot: the backtest is accepted and waits its turn.
    assert first.status_code == 200
    assert backtest.status_code == 200, backtest.text
    assert backtest.json()["status"] == "queued"
