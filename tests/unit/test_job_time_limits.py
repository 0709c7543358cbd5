"""Per-job time limits from the owner's tier and the job's kind
(:mod:`app.jobs.limits`)."""

from __future__ import annotations

import pytest

import app.kinds  # noqa: F401 - registers the backtest and sweep kinds
from app.core.config import Settings
from app.jobs.limits import (
    CELERY_SOFT_MARGIN_SECONDS,
    celery_limits,
    describe,
    time_limits,
)


def _settings(**values: object) -> Settings:
    return Settings(environment="test", jwt_secret="x" * 48, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tier", "is_admin", "kind", "soft"),
    [
        ("free", False, "backtest", 600),
        ("enterprise", False, "backtest", 600),  # the default: 10 minutes
        ("free", False, "sweep", 600),  # a sweep asks for an hour; free allows 10 min
        ("pro", False, "sweep", 600),
        ("enterprise", False, "sweep", 3600),
        ("free", True, "sweep", 3600),  # admins: the admin ceiling, whatever the tier
        ("free", False, "unknown-kind", 600),
    ],
)
def test_time_limits_by_tier_and_kind(
    tier: str, is_admin: bool, kind: str, soft: int
) -> None:
    limits = time_limits(_settings(), tier=tier, is_admin=is_admin, kind=kind)
    assert limits.soft_seconds == soft
    assert limits.hard_seconds == soft + 60


def test_time_limits_follow_the_settings() -> None:
    settings = _settings(
        job_time_limit_seconds=5,
        job_time_limit_max_seconds={"free": 3, "enterprise": 900},
        job_time_limit_grace_seconds=7,
    )
    free = time_limits(settings, tier="free", is_admin=False, kind="backtest")
    assert (free.soft_seconds, free.hard_seconds) == (3, 10)
    sweep = time_limits(settings, tier="enterprise", is_admin=False, kind="sweep")
    assert sweep.soft_seconds == 900
    assert settings.longest_job_seconds == 907


@pytest.mark.parametrize(("tier", "hard"), [("free", 660), ("enterprise", 3660)])
def test_celery_limits_of_a_sweep_and_its_helpers_follow_the_tier(
    tier: str, hard: int
) -> None:
    """The sweep's message and its ``sweeps.chunks`` helpers carry these (an
    enterprise sweep's helpers are no longer cut at the generic 600/660 s)."""
    limits = time_limits(_settings(), tier=tier, is_admin=False, kind="sweep")
    soft = hard - 60 + CELERY_SOFT_MARGIN_SECONDS
    assert celery_limits(limits) == (soft, hard)


def test_time_limit_settings_refuse_unknown_tiers() -> None:
    with pytest.raises(ValueError, match="unknown tiers"):
        _settings(job_time_limit_max_seconds={"gold": 60})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600, "10 minutes"), (60, "1 minute"), (3600, "60 minutes"), (90, "90 seconds"),
     (1, "1 second"), (10, "10 seconds")],
)  # fmt: skip
def test_describe_reads_as_the_error_message_says(seconds: int, text: str) -> None:
    assert describe(seconds) == text
