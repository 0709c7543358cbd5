"""Point-in-time index membership: the mask the engine trades through, and how much
of the index a price matrix covers. Pure numpy, no I/O: the spells come from
:mod:`app.data.membership` (or from any caller that has them as arrays).

Conventions:

* A spell is ``(label, start, end)``: the instrument is an index member on session
  ``D`` when ``start <= D < end`` (``end`` exclusive, :data:`OPEN_END` for a spell that
  has not ended). Dates are ``datetime64[D]``.
* Labels are the price matrix's own symbols for the instruments it holds; index
  members it has no prices for keep their own label (an old ticker), so coverage can
  count them.
* The membership mask has the price matrix's shape ``(n_days, n_symbols)``: time is
  axis 0, columns are the price matrix's symbols, ``True`` where the symbol was an
  index member on that session. It is computed once per dataset and may be cached.
* Coverage counts *member-days*: one per index member per session of the price
  matrix. A member-day is covered when that member has a close on that session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError

BoolMatrix = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]
IntArray = npt.NDArray[np.int64]
Grade = Literal["high", "moderate", "low"]

#: End date of a spell that is still running.
OPEN_END = np.datetime64("9999-12-31", "D")

#: Survivorship-bias grades by covered share of the index's member-days over the
#: period: ``low`` from 95 % (a few members missing, results close to the index's
#: own), ``moderate`` from 80 %, ``high`` below (a fifth or more of the index is
#: invisible to the backtest: the missing members are mostly the ones that failed,
#: shrank or were taken over, so returns are flattered).
GRADE_LOW_FROM = 0.95
GRADE_MODERATE_FROM = 0.80


@dataclass(frozen=True)
class Spells:
    """Membership spells as parallel arrays (one entry per spell).

    ``labels``: the distinct instrument labels; ``label``: index into ``labels`` per
    spell; ``start``/``end``: ``datetime64[D]``, ``end`` exclusive (:data:`OPEN_END`
    when the spell is still running).
    """

    labels: tuple[str, ...]
    label: IntArray
    start: DateArray
    end: DateArray

    def __post_init__(self) -> None:
        n = len(self.label)
        if len(self.start) != n or len(self.end) != n:
            raise InvalidInputError(
                "label, start and end must have one entry per spell", field="spells"
            )
        if n and (self.label.min() < 0 or self.label.max() >= len(self.labels)):
            raise InvalidInputError("spell label index out of range", field="spells")
        if np.any(self.end <= self.start):
            raise InvalidInputError(
                "every spell must end after it starts", field="spells"
            )

    def __len__(self) -> int:
        return len(self.label)


def membership_mask(
    spells: Spells, dates: DateArray, symbols: Sequence[str]
) -> BoolMatrix:
    """Index membership aligned to a price matrix, shape ``(n_days, n_symbols)``.

    ``dates``: the price matrix's sessions (ascending ``datetime64[D]``); ``symbols``:
    its columns. ``True`` at ``(t, j)`` when ``symbols[j]`` is a member on
    ``dates[t]``. Spells of labels that are not in ``symbols`` are ignored. Overlapping
    spells of one label are fine (the union counts). O(n_spells + n_days·n_symbols).
    """
    days = np.asarray(dates, dtype="datetime64[D]")
    column = {s: j for j, s in enumerate(symbols)}
    col_of_label = np.array([column.get(s, -1) for s in spells.labels], dtype=np.int64)
    cols = col_of_label[spells.label] if len(spells) else np.empty(0, np.int64)
    keep = cols >= 0
    first = np.searchsorted(days, spells.start[keep], side="left")
    stop = np.searchsorted(days, spells.end[keep], side="left")
    # +1 at each spell's first row, -1 after its last; a running sum > 0 is "member".
    delta = np.zeros((len(days) + 1, len(column)), dtype=np.int32)
    np.add.at(delta, (first, cols[keep]), 1)
    np.add.at(delta, (stop, cols[keep]), -1)
    mask: BoolMatrix = np.cumsum(delta[:-1], axis=0) > 0
    return mask


@dataclass(frozen=True)
class Coverage:
    """How much of the index a price matrix covers over a period.

    ``member_days``: index member-days in the period (sessions of the price matrix);
    ``covered_member_days``: those with a close; ``share``: their ratio (NaN when
    there are no member-days); ``members``: distinct members in the period;
    ``members_without_prices``: members with no close on any of their member-days in
    the period; ``by_year``: share per calendar year; ``survivorship_bias``: the grade
    of ``share`` (see :func:`survivorship_grade`).
    """

    start: dt.date
    end: dt.date
    member_days: int
    covered_member_days: int
    share: float
    members: int
    members_without_prices: int
    by_year: dict[int, float]
    survivorship_bias: Grade


def survivorship_grade(share: float) -> Grade:
    """``low`` when ``share >= 0.95``, ``moderate`` when ``>= 0.80``, else ``high``
    (NaN, i.e. nothing to cover, grades ``high``: nothing is known)."""
    if share >= GRADE_LOW_FROM:
        return "low"
    if share >= GRADE_MODERATE_FROM:
        return "moderate"
    return "high"


def coverage(
    spells: Spells,
    dates: DateArray,
    symbols: Sequence[str],
    has_price: BoolMatrix,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Coverage:
    """Coverage of the index by a price matrix over ``start..end`` (inclusive; default:
    the whole matrix).

    ``has_price``: ``(n_days, n_symbols)``, True where the price matrix has a close
    (``~np.isnan(close)``). Members the matrix has no column for count as never
    covered. Member-days are counted on the matrix's sessions only.
    """
    days = np.asarray(dates, dtype="datetime64[D]")
    if has_price.shape != (len(days), len(symbols)):
        raise InvalidInputError(
            f"has_price has shape {has_price.shape}, expected "
            f"{(len(days), len(symbols))}",
            field="has_price",
        )
    lo = 0 if start is None else int(np.searchsorted(days, np.datetime64(start, "D")))
    hi = len(days)
    if end is not None:
        hi = int(np.searchsorted(days, np.datetime64(end, "D"), side="right"))
    if hi <= lo:
        raise InvalidInputError("the period holds no session", field="start_date")
    # Every label as a column: ours first (their prices), then the others (none).
    ours = set(symbols)
    labels = list(symbols) + [s for s in spells.labels if s not in ours]
    member = membership_mask(spells, days[lo:hi], labels)
    priced = np.zeros_like(member)
    priced[:, : len(symbols)] = has_price[lo:hi]
    covered = member & priced
    member_days, covered_days = int(member.sum()), int(covered.sum())
    share = covered_days / member_days if member_days else float("nan")
    in_period = member.any(axis=0)
    years = days[lo:hi].astype("datetime64[Y]").astype(np.int64) + 1970
    by_year = {}
    for year in np.unique(years):
        rows = years == year
        total = int(member[rows].sum())
        if total:
            by_year[int(year)] = int(covered[rows].sum()) / total
    return Coverage(
        start=_to_date(days[lo]),
        end=_to_date(days[hi - 1]),
        member_days=member_days,
        covered_member_days=covered_days,
        share=share,
        members=int(in_period.sum()),
        members_without_prices=int((in_period & ~covered.any(axis=0)).sum()),
        by_year=by_year,
        survivorship_bias=survivorship_grade(share),
    )


def _to_date(day: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(day.astype("datetime64[D]")))


__all__ = [
    "GRADE_LOW_FROM",
    "GRADE_MODERATE_FROM",
    "OPEN_END",
    "Coverage",
    "Spells",
    "coverage",
    "membership_mask",
    "survivorship_grade",
]
