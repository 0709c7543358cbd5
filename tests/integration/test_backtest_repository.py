"""Backtest/trade repositories on PostgreSQL: ownership scoping, listing, and the
guarded state transitions that make task redelivery safe."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import repository as users_repo
from app.backtests import repository as trades
from app.db.models import Job, JobStatus
from app.jobs import repository as backtests
from tests.integration.conftest import UserFactory

pytestmark = pytest.mark.integration

CONFIG = {"start_date": "2020-01-01", "end_date": "2020-12-31"}


async def _job(session: AsyncSession, user_factory: UserFactory) -> Job:
    user = await user_factory()
    return await backtests.create(
        session, kind="backtest", user_id=user.id, config=CONFIG, name="t"
    )


async def _reload(session: AsyncSession, job: Job) -> Job:
    await session.refresh(job)
    return job


async def test_create_sets_pending_defaults(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _reload(session, await _job(session, user_factory))

    assert job.status == JobStatus.PENDING
    assert (job.progress, job.trades_executed, job.attempts) == (0.0, 0, 0)
    assert job.cancel_requested is False
    assert job.created_at.tzinfo is not None
    assert job.config == CONFIG


async def test_get_for_owner_hides_other_users_jobs(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    stranger = await user_factory()
    admin = await user_factory(is_admin=True)
    owner = await users_repo.get(session, job.user_id)
    assert owner is not None

    assert await backtests.get_for_owner(session, job.id, owner, kind="backtest") is job
    assert (
        await backtests.get_for_owner(session, job.id, stranger, kind="backtest")
        is None
    )
    assert await backtests.get_for_owner(session, job.id, admin, kind="backtest") is job
    assert (
        await backtests.get_for_owner(session, uuid.uuid4(), owner, kind="backtest")
        is None
    )


async def test_mark_running_claims_once(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)

    first = await backtests.mark_running(session, job.id, claim_token="w1")
    second = await backtests.mark_running(session, job.id, claim_token="w2")

    job = await _reload(session, job)
    assert (first, second) == (True, False)
    assert job.status == JobStatus.RUNNING
    assert job.claim_token == "w1"
    assert job.attempts == 1
    assert job.started_at is not None and job.heartbeat_at is not None


async def test_mark_running_refuses_cancel_requested_job(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    assert await backtests.request_cancel(session, job.id)

    assert not await backtests.mark_running(session, job.id, claim_token="w1")


async def test_update_progress_requires_running_and_claim(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    day = dt.date(2020, 6, 30)

    before_claim = await backtests.update_progress(
        session, job.id, claim_token="w1", progress=10
    )
    await backtests.mark_running(session, job.id, claim_token="w1")
    wrong_claim = await backtests.update_progress(
        session, job.id, claim_token="w2", progress=20
    )
    ok = await backtests.update_progress(
        session, job.id, claim_token="w1", progress=150, current_date=day,
        trades_executed=7,
    )  # fmt: skip

    job = await _reload(session, job)
    assert (before_claim, wrong_claim, ok) == (False, False, True)
    assert (job.progress, job.current_date, job.trades_executed) == (100.0, day, 7)


async def test_mark_completed_is_final(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    await backtests.mark_running(session, job.id, claim_token="w1")

    done = await backtests.mark_completed(
        session, job.id, claim_token="w1", metrics={"sharpe_ratio": 1.2},
        total_return=0.1, sharpe_ratio=1.2,
    )  # fmt: skip
    failed_after = await backtests.mark_failed(session, job.id, error="late")
    cancelled_after = await backtests.mark_cancelled(session, job.id)
    progress_after = await backtests.update_progress(
        session, job.id, claim_token="w1", progress=5
    )

    job = await _reload(session, job)
    assert done is True
    assert (failed_after, cancelled_after, progress_after) == (False, False, False)
    assert job.status == JobStatus.COMPLETED
    assert (job.progress, job.total_return, job.error) == (100.0, 0.1, None)


async def test_mark_completed_with_stale_claim_is_refused(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    await backtests.mark_running(session, job.id, claim_token="w1")

    done = await backtests.mark_completed(
        session, job.id, claim_token="old", metrics={}, total_return=None,
        sharpe_ratio=None,
    )  # fmt: skip

    assert done is False
    assert (await _reload(session, job)).status == JobStatus.RUNNING


async def test_mark_failed_and_cancelled_from_pending(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    failing = await _job(session, user_factory)
    cancelling = await _job(session, user_factory)

    assert await backtests.mark_failed(session, failing.id, error="boom")
    assert await backtests.mark_cancelled(session, cancelling.id)

    failing, cancelling = (
        await _reload(session, failing),
        await _reload(session, cancelling),
    )
    assert (failing.status, failing.error) == (JobStatus.FAILED, "boom")
    assert cancelling.status == JobStatus.CANCELLED
    assert cancelling.completed_at is not None


async def test_list_for_owner_filters_sorts_and_counts(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    user = await user_factory()
    returns = [0.3, None, -0.1, 0.5]
    for i, value in enumerate(returns):
        job = await backtests.create(
            session, kind="backtest", user_id=user.id, config=CONFIG, name=f"j{i}"
        )
        job.total_return = value
    await _job(session, user_factory)  # someone else's
    await session.flush()

    page, total = await backtests.list_for_owner(
        session, user, kind="backtest", sort="-total_return", limit=3
    )
    pending, n_pending = await backtests.list_for_owner(
        session, user, kind="backtest", status=JobStatus.PENDING
    )
    running, n_running = await backtests.list_for_owner(
        session, user, kind="backtest", status=JobStatus.RUNNING
    )

    assert total == 4
    assert [j.total_return for j in page] == [0.5, 0.3, -0.1]
    assert (len(pending), n_pending, running, n_running) == (4, 4, [], 0)
    assert await backtests.count_active(session, user.id) == 4


async def test_delete_cascades_to_trades_and_series(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    await trades.bulk_insert(
        session,
        job.id,
        [
            {"symbol": "AAA", "entry_date": dt.date(2020, 1, 2), "entry_price": 10.0,
             "quantity": 5, "is_open": True},
        ],
    )  # fmt: skip
    await trades.save_series(session, job.id, {"equity": [1, 2]})

    deleted = await backtests.delete(session, job.id)

    session.expunge_all()
    assert deleted is True
    assert await trades.get_series(session, job.id) is None
    assert (await trades.page(session, job.id))[1] == 0


async def test_trades_page_filters_and_orders(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    job = await _job(session, user_factory)
    rows = [
        {"symbol": s, "entry_date": dt.date(2020, 1, d), "entry_price": 1.0,
         "quantity": 1.5, "is_open": d == 9, "exit_date": None}
        for s, d in [("BBB", 3), ("AAA", 3), ("AAA", 2), ("CCC", 9)]
    ]  # fmt: skip
    inserted = await trades.bulk_insert(session, job.id, rows)

    everything, total = await trades.page(session, job.id, limit=2)
    aaa, n_aaa = await trades.page(session, job.id, symbol="AAA")
    open_, n_open = await trades.page(session, job.id, is_open=True)
    ranged, n_ranged = await trades.page(
        session, job.id, entry_from=dt.date(2020, 1, 3), entry_to=dt.date(2020, 1, 3)
    )

    assert (inserted, total) == (4, 4)
    assert [(t.symbol, t.entry_date.day) for t in everything] == [
        ("AAA", 2),
        ("AAA", 3),
    ]
    assert (n_aaa, n_open, n_ranged) == (2, 1, 2)
    assert open_[0].symbol == "CCC" and aaa[0].quantity == 1.5
    assert {t.symbol for t in ranged} == {"AAA", "BBB"}


async def test_count_pending_stops_counting_a_job_whose_message_is_stale(
    session: AsyncSession, user_factory: UserFactory
) -> None:
    """The dispatcher's dispatch-ahead counts only pending jobs sent since
    ``sent_after``: one whose message was sent long ago and never claimed has lost
    it (the sweeper re-sends it) and must not hold back every other job."""
    now = dt.datetime.now(dt.UTC)
    fresh_since = now - dt.timedelta(seconds=60)
    before_all = await backtests.count_pending(session)
    before_fresh = await backtests.count_pending(session, sent_after=fresh_since)
    stale, recent = await _job(session, user_factory), await _job(session, user_factory)
    await backtests.mark_enqueued(session, stale.id, now=now - dt.timedelta(hours=1))
    await backtests.mark_enqueued(session, recent.id, now=now)
    await session.flush()

    assert await backtests.count_pending(session) == before_all + 2
    assert (
        await backtests.count_pending(session, sent_after=fresh_since)
        == before_fresh + 1
    )
    # once claimed, neither counts
    assert await backtests.mark_running(session, recent.id, claim_token="w")
    assert (
        await backtests.count_pending(session, sent_after=fresh_since) == before_fresh
    )
