"""Cron expressions (croniter): validation, the minimum interval, next run times.

Times are computed in the schedule's IANA time zone (so "0 6 * * 1-5" is 06:00 local
across daylight-saving changes) and stored in UTC."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter

# Intervals are checked over this many consecutive runs (covers every minute/hour
# pattern of a day and the DST changes of a year's worth of daily runs).
CHECKED_RUNS = 400


class CronError(ValueError):
    """``str(exc)`` is shown to the user."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r} (use an IANA name)") from exc


def next_run(cron: str, tz: str, after: dt.datetime) -> dt.datetime:
    """The first run strictly after ``after`` (aware), in UTC."""
    local = after.astimezone(zone(tz))
    following: dt.datetime = croniter(cron, local).get_next(dt.datetime)
    return following.astimezone(dt.UTC)


def check(cron: str, tz: str, *, min_interval_seconds: int, now: dt.datetime) -> None:
    """Raise :class:`CronError` unless ``cron`` is a valid five-field expression
    whose runs are at least ``min_interval_seconds`` apart."""
    zone(tz)
    if len(cron.split()) != 5:
        raise CronError("use a five-field cron expression (minute hour day month dow)")
    try:
        runs = croniter(cron, now.astimezone(zone(tz)))
        times = [runs.get_next(dt.datetime) for _ in range(CHECKED_RUNS)]
    except (CroniterBadCronError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise CronError(f"invalid cron expression: {exc}") from exc
    for earlier, later in itertools.pairwise(times):
        gap = (later - earlier).total_seconds()
        if gap < min_interval_seconds:
            raise CronError(
                f"runs must be at least {min_interval_seconds // 60} minutes apart "
                f"({earlier:%Y-%m-%d %H:%M} and {later:%H:%M} are not)"
            )
