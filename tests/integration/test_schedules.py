"""Schedules: cron validation (croniter), the hourly minimum, the active cap, BOLA,
pause/resume, and firing — exactly once with two concurrent sweeps against the same
PostgreSQL database (committed data, two connections), a refused run recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.security import hash_password
from app.db.base import utcnow
from app.db.models import Job, Schedule, ScheduleFiring, Template, User
from app.jobs import sweeper
from app.main import create_app
from tests.integration.session_override import use_test_session

pytestmark = pytest.mark.integration
Headers = Callable[[User], dict[str, str]]
CONFIG: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture
def settings(test_settings: Settings) -> Settings:
    return test_settings.model_copy(
        update={"embedded_worker_concurrency": 0, "schedule_max_active_per_user": 2}
    )


@pytest.fixture
def app(settings: Settings, session: AsyncSession) -> FastAPI:
    return use_test_session(create_app(settings), session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _template(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    answer = await client.post(
        "/v1/templates", json={"name": "nightly", "config": CONFIG}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _schedule(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    template_id: str,
    cron: str = "0 6 * * 1-5",
    timezone: str = "Europe/Berlin",
) -> httpx.Response:
    body = {"template_id": template_id, "cron": cron, "timezone": timezone}
    return await client.post("/v1/schedules", json=body, headers=headers)


async def test_schedule_next_run_is_in_its_time_zone(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    created = await _schedule(client, headers, await _template(client, headers))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active" and body["last_run"] is None
    next_run = dt.datetime.fromisoformat(body["next_run"])
    local = next_run.astimezone(dt.timezone(dt.timedelta(hours=1)))  # CET (Dec)
    assert (local.hour, local.minute) == (6, 0) and local.weekday() < 5
    assert next_run > utcnow()


@pytest.mark.parametrize(
    ("cron", "timezone", "field"),
    [
        ("*/30 * * * *", "UTC", "body.cron"),  # every 30 minutes: too often
        ("0,30 9 * * *", "UTC", "body.cron"),  # twice within the hour
        ("* * * * *", "UTC", "body.cron"),
        ("not a cron", "UTC", "body.cron"),
        ("0 6 * * * *", "UTC", "body.cron"),  # six fields
        ("61 6 * * *", "UTC", "body.cron"),
        ("0 6 * * *", "Mars/Olympus", "body.timezone"),
    ],
)
async def test_schedule_refuses_bad_cron_and_zones(
    client: httpx.AsyncClient,
    user_factory: Any,
    auth_headers: Headers,
    cron: str,
    timezone: str,
    field: str,
) -> None:
    headers = auth_headers(await user_factory())
    answer = await _schedule(
        client, headers, await _template(client, headers), cron, timezone
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["field"] == field


async def test_active_schedules_are_capped_and_pause_frees_a_slot(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    headers = auth_headers(await user_factory())
    template_id = await _template(client, headers)
    first = (await _schedule(client, headers, template_id)).json()
    assert (await _schedule(client, headers, template_id)).status_code == 201
    assert (await _schedule(client, headers, template_id)).status_code == 409  # cap 2
    paused = await client.post(f"/v1/schedules/{first['id']}/pause", headers=headers)
    assert paused.json()["status"] == "paused" and paused.json()["next_run"] is None
    assert (await _schedule(client, headers, template_id)).status_code == 201
    resumed = await client.post(f"/v1/schedules/{first['id']}/resume", headers=headers)
    assert resumed.status_code == 409  # two active again
    listed = (await client.get("/v1/schedules", headers=headers)).json()
    assert sorted(s["status"] for s in listed) == ["active", "active", "paused"]


async def test_schedules_are_private_to_their_owner(
    client: httpx.AsyncClient, user_factory: Any, auth_headers: Headers
) -> None:
    owner, other = (
        auth_headers(await user_factory()),
        auth_headers(await user_factory()),
    )
    template_id = await _template(client, owner)
    schedule_id = (await _schedule(client, owner, template_id)).json()["id"]
    path = f"/v1/schedules/{schedule_id}"
    for method, url in (
        ("GET", path),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/resume"),
        ("DELETE", path),
    ):
        answer = await client.request(method, url, headers=other)
        assert answer.status_code == 404, (method, url)
    foreign = await _schedule(client, other, template_id)  # someone else's template
    assert foreign.status_code == 400
    assert foreign.json()["details"][0]["field"] == "body.template_id"
    assert (await client.get("/v1/schedules", headers=other)).json() == []
    assert (await client.delete(path, headers=owner)).status_code == 204


# --- firing: committed data on the real database, two connections ------------------
@pytest.fixture
async def due_schedule(engine: AsyncEngine) -> AsyncIterator[tuple[Schedule, User]]:
    """A committed user, template and schedule due a minute ago; removed after."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as s:
        user = User(
            username=f"sched_{utcnow().timestamp():.0f}_{id(s) % 10_000}",
            password_hash=hash_password("correct-horse-battery"),
        )
        s.add(user)
        await s.flush()
        template = Template(user_id=user.id, kind="backtest", name="t", config=CONFIG)
        s.add(template)
        await s.flush()
        schedule = Schedule(
            user_id=user.id,
            template_id=template.id,
            cron="0 * * * *",
            timezone="UTC",
            status="active",
            next_run_at=utcnow() - dt.timedelta(minutes=1),
        )
        s.add(schedule)
        await s.commit()
    try:
        yield schedule, user
    finally:
        async with maker() as s:
            await s.execute(delete(User).where(User.id == user.id))
            await s.commit()


async def _sweep(engine: AsyncEngine, settings: Settings) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        await sweeper.sweep(
            s, settings=settings, enqueue=lambda job_id, limits: "resent"
        )


async def test_two_concurrent_sweeps_fire_a_due_time_exactly_once(
    engine: AsyncEngine,
    settings: Settings,
    due_schedule: tuple[Schedule, User],
) -> None:
    schedule, user = due_schedule
    due_at = schedule.next_run_at
    await asyncio.gather(_sweep(engine, settings), _sweep(engine, settings))
    await _sweep(engine, settings)  # a third pass later: nothing more is due

    async with AsyncSession(engine) as s:
        jobs = list(await s.scalars(select(Job).where(Job.user_id == user.id)))
        firings = list(
            await s.scalars(
                select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule.id)
            )
        )
        row = await s.get(Schedule, schedule.id)
    assert len(jobs) == 1 and jobs[0].kind == "backtest" and jobs[0].name == "t"
    assert len(firings) == 1 and firings[0].due_at == due_at
    assert firings[0].job_id == jobs[0].id
    assert row is not None and row.last_job_id == jobs[0].id
    assert row.last_run_at == due_at and row.last_error is None
    assert row.next_run_at is not None and row.next_run_at > utcnow()
    assert row.next_run_at.minute == 0  # "0 * * * *": the next full hour


async def test_a_refused_run_is_recorded_on_the_schedule(
    engine: AsyncEngine,
    settings: Settings,
    due_schedule: tuple[Schedule, User],
) -> None:
    schedule, user = due_schedule
    # The free tier's waiting backstop, full (over the concurrency cap a run would
    # only wait as queued; at the backstop it is refused).
    # (The sweep dispatches the cap's worth first, then fires the schedule.)
    waiting = (
        settings.rate_limits.waiting_jobs["free"]
        + settings.rate_limits.active_jobs["free"]
    )
    async with AsyncSession(engine) as s:
        for _ in range(waiting):
            s.add(  # older than the hourly window: only the backstop refuses
                Job(
                    user_id=user.id,
                    kind="backtest",
                    config=CONFIG,
                    status="queued",
                    created_at=utcnow() - dt.timedelta(hours=2),
                )
            )
        await s.commit()
    await _sweep(engine, settings)
    async with AsyncSession(engine) as s:
        row = await s.get(Schedule, schedule.id)
        count = await s.scalar(
            select(func.count()).where(Job.user_id == user.id)  # no third job
        )
        firing = await s.scalar(
            select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule.id)
        )
    assert count == waiting
    assert row is not None and "Too many waiting jobs" in (row.last_error or "")
    assert row.next_run_at is not None and row.next_run_at > utcnow()
    assert firing is not None and firing.job_id is None and firing.error
