"""Point-in-time S&P 500 membership: reads the shipped CSVs, resolves tickers to the
price data's symbols and hands the engine arrays (the pure part is
:mod:`app.engine.universe`).

Files (in ``app/data/bundled``, see its README for source and licence):

* ``sp500_membership.csv`` ``ticker,start_date,end_date``: one row per continuous
  spell in the index, ``end_date`` exclusive, empty while still a member. A spell
  carries the ticker **of its time** (``FB`` until 2022-06-09).
* ``sp500_ticker_renames.csv`` ``old_ticker,new_ticker,date,source``: membership
  recorded under ``old_ticker`` on days before ``date`` belongs to the company that
  trades as ``new_ticker`` from ``date`` on. Chains are followed forward in time
  (``CBS`` → ``VIAC`` 2019 → ``PARA`` 2022); days on or after ``date`` stay with
  ``old_ticker`` (a ticker can pass to another company: ``IR`` in 2020).

Renames are applied once, when the spells are loaded; spellings (``BRK.B``,
``BRK-B``, ``BRK/B``) are matched to the dataset's own symbols at the same time.
"""

from __future__ import annotations

import csv
import datetime as dt
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.engine.data import MarketData
from app.engine.errors import DataError, InvalidInputError
from app.engine.universe import (
    OPEN_END,
    BoolMatrix,
    Coverage,
    Spells,
    survivorship_grade,
)
from app.engine.universe import membership_mask as build_mask

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
MEMBERSHIP_FILE = "sp500_membership.csv"
RENAMES_FILE = "sp500_ticker_renames.csv"

Spell = tuple[str, dt.date, dt.date | None]  # ticker, start, end (exclusive) or None

#: The dataset the membership files describe (the bundled one, see
#: :func:`has_membership`).
MEMBERSHIP_DATASET = "sp500"
INDEX_NAME = "S&P 500"

_lock = threading.Lock()
_mask_cache: weakref.WeakKeyDictionary[MarketData, BoolMatrix] = (
    weakref.WeakKeyDictionary()
)
_spells_cache: weakref.WeakKeyDictionary[MarketData, Spells] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class YearCoverage:
    """One calendar year of :func:`coverage_by_year`."""

    year: int
    member_days: int
    covered_member_days: int
    share: float
    members: int
    members_without_prices: int


@dataclass(frozen=True)
class Rename:
    """``old`` became ``new`` on ``date`` (see the module docstring)."""

    old: str
    new: str
    date: dt.date


def spelling_key(symbol: str) -> str:
    """One spelling per share class: upper case, class separator as a dot
    (``brk-b``, ``BRK/B``, ``BRK_B`` → ``BRK.B``)."""
    key = symbol.strip().upper()
    for sep in ("-", "/", "_", " "):
        key = key.replace(sep, ".")
    return key


def read_spells(path: Path) -> list[Spell]:
    """``sp500_membership.csv`` as ``(ticker, start, end or None)`` tuples."""
    rows = _read_csv(path, ("ticker", "start_date", "end_date"))
    out: list[Spell] = []
    for i, row in enumerate(rows, start=2):
        try:
            start = dt.date.fromisoformat(row["start_date"])
            end = dt.date.fromisoformat(row["end_date"]) if row["end_date"] else None
        except ValueError as exc:
            message = f"{path.name} line {i}: {exc}"
            raise DataError(message, field="membership") from None
        out.append((row["ticker"].strip(), start, end))
    return out


def read_renames(path: Path) -> list[Rename]:
    """``sp500_ticker_renames.csv`` as :class:`Rename` s (the source column is
    documentation only)."""
    rows = _read_csv(path, ("old_ticker", "new_ticker", "date"))
    return [
        Rename(r["old_ticker"].strip(), r["new_ticker"].strip(), _date(r["date"]))
        for r in rows
    ]


def apply_renames(spells: Iterable[Spell], renames: Iterable[Rename]) -> list[Spell]:
    """Relabel every spell with the ticker its company trades under after its last
    rename, splitting a spell at a rename date when the old ticker stays in the index
    afterwards (a reused ticker). Spells are returned unmerged."""
    by_old: dict[str, list[Rename]] = defaultdict(list)
    for r in sorted(renames, key=lambda r: r.date):
        by_old[r.old].append(r)
    out: list[Spell] = []
    # (ticker, start, end, as_of): the company traded as `ticker` as of `as_of`.
    todo = [(t, s, e, s) for t, s, e in spells]
    while todo:
        ticker, start, end, as_of = todo.pop()
        nxt = next((r for r in by_old.get(ticker, ()) if r.date > as_of), None)
        if nxt is None:
            out.append((ticker, start, end))
            continue
        cut = nxt.date if end is None else min(end, nxt.date)
        todo.append((nxt.new, start, cut, nxt.date))
        if end is None or end > nxt.date:
            todo.append((ticker, nxt.date, end, nxt.date))
    return out


def to_spells(spells: Iterable[Spell], symbols: Sequence[str]) -> Spells:
    """Spells as arrays, labels spelled as in ``symbols`` where the share class
    matches (others keep the membership file's spelling), overlapping or touching
    spells of one label merged."""
    ours = {spelling_key(s): s for s in symbols}
    intervals: dict[str, list[tuple[np.datetime64, np.datetime64]]] = defaultdict(list)
    for ticker, start, end in spells:
        label = ours.get(spelling_key(ticker), ticker)
        stop = OPEN_END if end is None else np.datetime64(end, "D")
        intervals[label].append((np.datetime64(start, "D"), stop))
    labels = sorted(intervals)
    rows: list[tuple[int, np.datetime64, np.datetime64]] = []
    for i, label in enumerate(labels):
        for start_day, stop_day in _merge(intervals[label]):
            rows.append((i, start_day, stop_day))
    return Spells(
        labels=tuple(labels),
        label=np.array([r[0] for r in rows], dtype=np.int64),
        start=np.array([r[1] for r in rows], dtype="datetime64[D]"),
        end=np.array([r[2] for r in rows], dtype="datetime64[D]"),
    )


def load_spells(symbols: Sequence[str], *, directory: Path | None = None) -> Spells:
    """The shipped membership, renames applied, labels matched to ``symbols``."""
    folder = directory or BUNDLED_DIR
    raw = read_spells(folder / MEMBERSHIP_FILE)
    renamed = apply_renames(raw, read_renames(folder / RENAMES_FILE))
    return to_spells(renamed, symbols)


def has_membership(dataset: str | None) -> bool:
    """Whether point-in-time membership is known for ``dataset`` (``None``: the
    bundled one). Only the bundled dataset has it: an imported dataset's tickers may
    come from any market, and matching them to S&P 500 tickers would be a guess."""
    return (dataset or MEMBERSHIP_DATASET) == MEMBERSHIP_DATASET


def spells_for(data: MarketData) -> Spells:
    """:func:`load_spells` for ``data``'s symbols, cached while ``data`` lives."""
    with _lock:
        cached = _spells_cache.get(data)
    if cached is not None:
        return cached
    spells = load_spells(data.symbols)
    with _lock:
        _spells_cache[data] = spells
    return spells


def membership_mask_for(data: MarketData) -> BoolMatrix:
    """S&P 500 membership aligned to ``data``, ``(n_days, n_symbols)``, read-only.
    Computed once per dataset object (cached while ``data`` lives)."""
    with _lock:
        cached = _mask_cache.get(data)
    if cached is not None:
        return cached
    mask = build_mask(spells_for(data), data.dates, data.symbols)
    mask.flags.writeable = False
    with _lock:
        _mask_cache[data] = mask
    return mask


def coverage_for(
    data: MarketData, *, start: dt.date | None = None, end: dt.date | None = None
) -> Coverage:
    """How much of the S&P 500 ``data`` has prices for over ``start..end``
    (inclusive; default: all of ``data``). Equal to
    :func:`app.engine.universe.coverage` of ``data``, answered from running totals
    built once per dataset, so that every result can carry it at little cost."""
    index = _coverage_index(data)
    days = data.dates
    lo = 0 if start is None else int(np.searchsorted(days, np.datetime64(start, "D")))
    hi = len(days)
    if end is not None:
        hi = int(np.searchsorted(days, np.datetime64(end, "D"), side="right"))
    if hi <= lo:
        raise InvalidInputError("the period holds no session", field="start_date")
    member = index.member[hi].astype(np.int64) - index.member[lo]
    covered = index.covered[hi].astype(np.int64) - index.covered[lo]
    member_days, covered_days = int(member.sum()), int(covered.sum())
    share = covered_days / member_days if member_days else float("nan")
    return Coverage(
        start=_to_date(days[lo]),
        end=_to_date(days[hi - 1]),
        member_days=member_days,
        covered_member_days=covered_days,
        share=share,
        members=int((member > 0).sum()),
        members_without_prices=int(((member > 0) & (covered == 0)).sum()),
        by_year=_shares_by_year(index, days, lo, hi),
        survivorship_bias=survivorship_grade(share),
    )


def coverage_by_year(data: MarketData) -> list[YearCoverage]:
    """:func:`coverage_for` of each calendar year ``data`` has sessions in."""
    years = data.dates.astype("datetime64[Y]").astype(np.int64) + 1970
    out = []
    for year in (int(y) for y in np.unique(years)):
        got = coverage_for(data, start=dt.date(year, 1, 1), end=dt.date(year, 12, 31))
        if got.member_days:
            out.append(
                YearCoverage(
                    year=year,
                    member_days=got.member_days,
                    covered_member_days=got.covered_member_days,
                    share=got.share,
                    members=got.members,
                    members_without_prices=got.members_without_prices,
                )
            )
    return out


@dataclass(frozen=True)
class _CoverageIndex:
    """Running totals over sessions, ``(n_days + 1, n_labels)``: row ``t`` counts the
    member-days (``member``) and covered member-days (``covered``) of each label on
    sessions ``0..t-1``. Labels are ``data``'s symbols, then index members it has no
    column for (never covered). int16 holds them: a dataset has < 32,768 sessions."""

    member: npt.NDArray[np.int16]
    covered: npt.NDArray[np.int16]


_index_cache: weakref.WeakKeyDictionary[MarketData, _CoverageIndex] = (
    weakref.WeakKeyDictionary()
)


def _coverage_index(data: MarketData) -> _CoverageIndex:
    with _lock:
        cached = _index_cache.get(data)
    if cached is not None:
        return cached
    spells = spells_for(data)
    ours = set(data.symbols)
    labels = list(data.symbols) + [s for s in spells.labels if s not in ours]
    member = build_mask(spells, data.dates, labels)
    covered = member.copy()
    covered[:, : data.n_symbols] &= ~np.isnan(data.close)
    covered[:, data.n_symbols :] = False
    index = _CoverageIndex(member=_running(member), covered=_running(covered))
    with _lock:
        _index_cache[data] = index
    return index


def _running(mask: BoolMatrix) -> npt.NDArray[np.int16]:
    if mask.shape[0] > np.iinfo(np.int16).max:
        raise DataError("too many sessions for the coverage index", field="dates")
    out = np.zeros((mask.shape[0] + 1, mask.shape[1]), dtype=np.int16)
    np.cumsum(mask, axis=0, dtype=np.int16, out=out[1:])
    out.flags.writeable = False
    return out


def _shares_by_year(
    index: _CoverageIndex, days: npt.NDArray[np.datetime64], lo: int, hi: int
) -> dict[int, float]:
    years = days[lo:hi].astype("datetime64[Y]").astype(np.int64) + 1970
    out: dict[int, float] = {}
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        a, b = lo + int(rows[0]), lo + int(rows[-1]) + 1
        total = int(index.member[b].astype(np.int64).sum() - index.member[a].sum())
        if total:
            done = int(index.covered[b].astype(np.int64).sum() - index.covered[a].sum())
            out[int(year)] = done / total
    return out


def _to_date(day: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(day.astype("datetime64[D]")))


def _merge(
    spans: list[tuple[np.datetime64, np.datetime64]],
) -> list[tuple[np.datetime64, np.datetime64]]:
    merged: list[tuple[np.datetime64, np.datetime64]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"membership file missing: {path}", field="membership")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(
                f"{path.name} lacks column(s) {', '.join(missing)}", field="membership"
            )
        return list(reader)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DataError(f"not an ISO date: {text!r}", field="membership") from None
