"""The queue's fair order and cost model (app.jobs.scheduler), without a database."""

from __future__ import annotations

import datetime as dt
import uuid

from app.core.config import RateLimitRules, Settings
from app.jobs.repository import QueueUser
from app.jobs.scheduler import estimate_cost, pick_order

NOW = dt.datetime(2026, 12, 6, 5, 0, tzinfo=dt.UTC)


def _settings() -> Settings:
    return Settings(
        environment="test",
        rate_limits=RateLimitRules(active_jobs={"free": 2, "pro": 10}),
    )


def _user(
    tier: str = "free",
    *,
    queued: int,
    active: int = 0,
    last: dt.datetime | None = None,
    admin: bool = False,
) -> QueueUser:
    return QueueUser(uuid.uuid4(), tier, admin, queued, active, last)


def test_a_single_job_goes_before_a_backlog() -> None:
    flood = _user("pro", queued=100, active=1, last=NOW - dt.timedelta(seconds=1))
    single = _user("free", queued=1)
    order = pick_order([flood, single], _settings(), 3, NOW)
    assert order[0] == single.user_id
    assert order[1:] == [flood.user_id, flood.user_id]  # then the backlog


def test_round_robin_between_equal_users() -> None:
    a = _user(queued=5, last=NOW - dt.timedelta(seconds=10))
    b = _user(queued=5, last=NOW - dt.timedelta(seconds=5))
    order = pick_order([a, b], _settings(), 4, NOW)
    # Each gets one turn per round; the least recently served starts.
    assert order == [a.user_id, b.user_id, a.user_id, b.user_id]


def test_the_per_user_cap_is_never_passed() -> None:
    capped = _user("free", queued=10, active=2)
    other = _user("free", queued=1, active=1)
    order = pick_order([capped, other], _settings(), 5, NOW)
    assert order == [other.user_id]  # capped has 2 running: it waits


def test_pro_gets_twice_the_share_of_free() -> None:
    free = _user("free", queued=50, active=0, last=NOW - dt.timedelta(seconds=9))
    pro = _user("pro", queued=50, active=0, last=NOW - dt.timedelta(seconds=8))
    # Free capped at 2: over 6 slots pro gets 4 (weight 2), free its cap of 2.
    order = pick_order([free, pro], _settings(), 6, NOW)
    assert order.count(free.user_id) == 2
    assert order.count(pro.user_id) == 4


def test_admins_have_no_cap() -> None:
    admin = _user("free", queued=20, active=5, admin=True)
    assert pick_order([admin], _settings(), 7, NOW) == [admin.user_id] * 7


def test_cost_grows_with_symbols_sessions_and_decisions() -> None:
    base = {"start_date": "2015-01-01", "end_date": "2019-12-31", "symbols": ["A"] * 10}
    longer = {**base, "start_date": "2010-01-01"}
    wider = {**base, "symbols": ["A"] * 20}
    daily = {**base, "rebalancing": "daily"}
    assert estimate_cost(longer) > estimate_cost(base)
    assert estimate_cost(wider) == 2 * estimate_cost(base)
    assert estimate_cost(daily) > estimate_cost(base)


def test_a_sweep_costs_its_combinations() -> None:
    base = {"start_date": "2015-01-01", "end_date": "2019-12-31"}
    sweep = {"base": base, "combinations": 12}
    assert estimate_cost(sweep) == 12 * estimate_cost(base)
    assert estimate_cost({"nonsense": True}) == 1.0
