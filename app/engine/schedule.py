"""When a backtest decides: the rebalance calendar.

Convention: a decision is taken at the **close** of

* the first trading day of the range (the initial allocation), and
* the last trading day of every week (ISO week) / month / quarter, or every day for
  ``daily``, strictly before the last day of the range (a decision on the last day could
  not be held for even one bar, and bt does not rebalance there either).

"Last trading day of a period" is read off the dataset's own session calendar: row
``t`` ends a period when row ``t + 1`` lies in another period. The calendar of sessions
is known in advance, so this is not look-ahead; the last row of the dataset ends its
period only if the range ends there (and then it is excluded as the last day).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError

IntArray = npt.NDArray[np.int64]

_PERIOD_UNITS = {"monthly": "M", "quarterly": "Q"}


def _period_keys(dates: npt.NDArray[np.datetime64], rebalancing: str) -> IntArray:
    """An integer per session that changes exactly when a new period starts."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    if rebalancing == "daily":
        return days
    if rebalancing == "weekly":
        # 1970-01-01 was a Thursday; shifting by 3 makes Monday the first day of a week.
        return (days + 3) // 7
    months = dates.astype("datetime64[M]").astype(np.int64)
    if rebalancing == "monthly":
        return months
    if rebalancing == "quarterly":
        return months // 3
    raise InvalidInputError(
        f"unknown rebalancing {rebalancing!r}; "
        "allowed: daily, weekly, monthly, quarterly",
        field="rebalancing",
    )


def decision_rows(
    dates: npt.NDArray[np.datetime64],
    *,
    start_row: int,
    end_row: int,
    rebalancing: str,
    rebalances: bool = True,
) -> IntArray:
    """Rows (ascending, int64) at whose close the strategy decides.

    ``dates`` is the whole session calendar, shape ``(n_days,)``; ``start_row`` and
    ``end_row`` (inclusive) bound the backtest. ``rebalances=False`` (buy-and-hold)
    yields only ``start_row``.
    """
    if not 0 <= start_row <= end_row < len(dates):
        raise InvalidInputError(
            "the date range contains no trading day", field="start_date"
        )
    if not rebalances or start_row == end_row:
        return np.array([start_row], dtype=np.int64)
    keys = _period_keys(dates, rebalancing)
    # row t ends its period when row t+1 starts a new one (rows start_row..end_row-1).
    rows = np.arange(start_row, end_row, dtype=np.int64)
    ends = rows[keys[rows + 1] != keys[rows]]
    return np.unique(np.concatenate(([start_row], ends))).astype(np.int64)
