"""The limiter without I/O: in-memory moving windows on a fake clock, Retry-After and
header formats, client-address resolution, the rule table and the request limits."""

from __future__ import annotations

import types
from typing import Any

import pytest
from limits.aio.storage import memory as memory_storage
from pydantic import ValidationError

from app.backtests.schemas import BacktestRequest
from app.backtests.service import check_request_limits
from app.core.config import RateLimitRules, Settings
from app.core.errors import ValidationFailed
from app.core.rate_limit import (
    ConnectionSlots,
    Decision,
    RateLimiter,
    client_ip,
    parse_networks,
)


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(memory_storage, "time", types.SimpleNamespace(time=fake.time))
    return fake


def _limiter(**rules: Any) -> RateLimiter:
    settings = Settings(environment="test", rate_limits=RateLimitRules(**rules))
    return RateLimiter(settings)


def _decision(**overrides: Any) -> Decision:
    values: dict[str, Any] = {
        "allowed": False,
        "limit": 10,
        "remaining": 0,
        "window_seconds": 3600,
        "reset_at": 1_000.0,
    }
    return Decision(**{**values, **overrides})


# --- Decision -------------------------------------------------------------------


def test_retry_after_is_strictly_after_the_slot_frees() -> None:
    assert _decision(reset_at=1_000.0).retry_after(now=990.0) == 11
    assert _decision(reset_at=1_000.5).retry_after(now=990.0) == 11


def test_retry_after_is_never_zero_nor_over_an_hour() -> None:
    assert _decision(reset_at=1_000.0).retry_after(now=1_000.0) == 1
    assert _decision(reset_at=1_000.0).retry_after(now=2_000.0) == 1
    assert _decision(reset_at=10_000.0).retry_after(now=0.0) == 3600


def test_headers_formats() -> None:
    decision = _decision(allowed=True, remaining=3, reset_at=2_234.2)

    headers = decision.headers(now=1_000.0)

    assert headers == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "2235",
        "RateLimit-Policy": "10;w=3600",
        "RateLimit": "limit=10, remaining=3, reset=1235",
    }


def test_headers_of_refusal_include_retry_after() -> None:
    headers = _decision(reset_at=1_100.0).headers(now=1_000.0)

    assert headers["Retry-After"] == "101"
    assert headers["X-RateLimit-Remaining"] == "0"


def test_error_is_429_envelope_with_headers() -> None:
    exc = _decision(reset_at=2_000_000_000.0).error("slow down")

    assert exc.status_code == 429
    assert exc.code == "RateLimited"
    assert exc.headers["Retry-After"] == "3600"
    assert exc.headers["RateLimit-Policy"] == "10;w=3600"


# --- moving window (memory storage, fake clock) ---------------------------------


async def test_hit_admits_limit_then_refuses(clock: FakeClock) -> None:
    limiter = _limiter()

    decisions = [await limiter.hit("3 per 10 seconds", "u1") for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after(now=clock.now) == 11
    await limiter.aclose()


async def test_refused_hit_consumes_nothing(clock: FakeClock) -> None:
    limiter = _limiter()
    await limiter.hit("1 per 10 seconds", "u1")
    clock.now += 5
    for _ in range(5):
        assert not (await limiter.hit("1 per 10 seconds", "u1")).allowed

    clock.now += 5.01  # 10 s after the one admitted request

    assert (await limiter.hit("1 per 10 seconds", "u1")).allowed
    await limiter.aclose()


async def test_boundary_burst_admits_no_more_than_limit_in_any_window(
    clock: FakeClock,
) -> None:
    limiter = _limiter()
    clock.now = 3600.0 * 1000 - 1  # one second before a fixed-window boundary
    admitted = []
    for offset in (0.0, 2.0):  # ten just before, ten just after the boundary
        clock.now += offset
        for _ in range(10):
            if (await limiter.hit("10/hour", "u1")).allowed:
                admitted.append(clock.now)

    assert len(admitted) == 10
    await limiter.aclose()


async def test_retry_at_retry_after_is_admitted(clock: FakeClock) -> None:
    limiter = _limiter()
    for _ in range(10):
        await limiter.hit("10/hour", "u1")
        clock.now += 7.3
    refused = await limiter.hit("10/hour", "u1")

    clock.now += refused.retry_after(now=clock.now)

    assert not refused.allowed
    assert (await limiter.hit("10/hour", "u1")).allowed
    await limiter.aclose()


async def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = _limiter()
    await limiter.hit("1/hour", "u1")

    assert (await limiter.hit("1/hour", "u2")).allowed
    assert not (await limiter.hit("1/hour", "u1")).allowed
    await limiter.aclose()


async def test_peek_consumes_nothing(clock: FakeClock) -> None:
    limiter = _limiter()
    for _ in range(3):
        assert (await limiter.peek("1/hour", "u1")).allowed

    assert (await limiter.hit("1/hour", "u1")).allowed
    assert not (await limiter.peek("1/hour", "u1")).allowed
    await limiter.aclose()


async def test_connection_slots_cap_and_release() -> None:
    slots = ConnectionSlots(None, prefix="t", limit=2)

    first, second = await slots.acquire("u"), await slots.acquire("u")
    third = await slots.acquire("u")
    assert first and second and third is None
    await slots.release("u", first)

    assert await slots.acquire("u") is not None
    assert await slots.acquire("other") is not None


# --- client address -------------------------------------------------------------


def test_client_ip_ignores_forwarded_for_from_untrusted_peer() -> None:
    trusted = parse_networks(["10.0.0.0/8"])

    assert client_ip("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"


def test_client_ip_takes_rightmost_untrusted_hop_behind_trusted_proxy() -> None:
    trusted = parse_networks(["10.0.0.0/8"])

    forged_then_real = "1.2.3.4, 198.51.100.7, 10.0.0.2"
    assert client_ip("10.0.0.1", forged_then_real, trusted) == "198.51.100.7"
    assert client_ip("10.0.0.1", None, trusted) == "10.0.0.1"
    assert client_ip("10.0.0.1", "garbage", trusted) == "garbage"


# --- the rule table -------------------------------------------------------------


def test_rule_table_partial_override_keeps_defaults() -> None:
    rules = RateLimitRules(submit={"free": "20/hour"}, active_jobs={"pro": 3})

    assert rules.submit == {
        "free": "20/hour",
        "pro": "100/hour",
        "enterprise": "1000/hour",
    }
    assert rules.active_jobs == {"free": 2, "pro": 3, "enterprise": 50}


def test_rule_table_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMITS", '{"api": "100/minute"}')

    assert Settings(environment="test").rate_limits.api == "100/minute"


@pytest.mark.parametrize(
    "rule", ["ten per hour", "10/day", "0/hour", "1/second;2/hour"]
)
def test_rule_table_refuses_bad_rules(rule: str) -> None:
    with pytest.raises(ValidationError):
        RateLimitRules(api=rule)


# --- request size limits --------------------------------------------------------


def test_request_limits_symbols_and_filters() -> None:
    settings = Settings(
        environment="test", max_symbols_per_request=2, max_filters_per_request=1
    )
    dates = {"start_date": "2015-01-01", "end_date": "2019-12-31"}
    ok = BacktestRequest.model_validate({**dates, "symbols": ["A", "B"]})
    symbols = BacktestRequest.model_validate({**dates, "symbols": ["A", "B", "C"]})
    screen = BacktestRequest.model_validate(
        {**dates, "filter_criteria": {"filters": [{}, {}], "universe": ["A"]}}
    )

    check_request_limits(ok, settings)
    with pytest.raises(ValidationFailed, match="At most 2 symbols"):
        check_request_limits(symbols, settings)
    with pytest.raises(ValidationFailed, match="At most 1 filters"):
        check_request_limits(screen, settings)
