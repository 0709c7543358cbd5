"""Row-level validation of an imported price table (used by :mod:`app.data.importer`).

Checks are vectorised; each one reports its first offending rows with the location
(CSV: ``line N``, the 1-based line in the file, header = line 1; Parquet: ``row N``,
0-based) and what to fix. All problems are collected, then raised together as one
:class:`DataError` whose ``field`` is ``"row N, column C"`` of the first one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.data import dataset_io
from app.engine.errors import DataError

SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9.\-_^=/]{0,31}"
SYMBOL_TYPES = ("stock", "etf")
MAX_VOLUME = 1e15
_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Problem:
    """One validation failure; ``position`` is the 0-based data row (for sorting)."""

    position: int
    location: str  # "line 17" (CSV) or "row 15" (Parquet)
    column: str
    message: str

    @property
    def field(self) -> str:
        return f"row {self.location.split()[-1]}, column {self.column}"

    def __str__(self) -> str:
        return f"{self.location}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class ValidFrame:
    """A validated table: aligned 1-D arrays plus one description row per symbol."""

    dates: npt.NDArray[np.datetime64]
    symbols: npt.NDArray[np.object_]
    prices: dict[str, npt.NDArray[np.float64]]
    volume: npt.NDArray[np.int64]
    symbol_rows: list[dict[str, str]]


@dataclass
class _Collector:
    index: npt.NDArray[np.int64]
    is_csv: bool
    limit: int
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def location(self, pos: int) -> str:
        i = int(self.index[pos])
        return f"line {i + 2}" if self.is_csv else f"row {i}"

    def add(
        self, mask: npt.NDArray[np.bool_], column: str, message: Callable[[int], str]
    ) -> None:
        """Record the rows where ``mask`` is True; ``message(pos)`` explains one."""
        positions = np.flatnonzero(mask)
        self.total += len(positions)
        for pos in positions[: self.limit]:
            p = int(pos)
            self.problems.append(Problem(p, self.location(p), column, message(p)))

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        shown = sorted(self.problems, key=lambda p: p.position)[: self.limit]
        head = f"the file has {self.total} problem(s)"
        if self.total > len(shown):
            head += f"; the first {len(shown)} are"
        lines = "\n".join(f"  {p}" for p in shown)
        raise DataError(f"{head}:\n{lines}", field=shown[0].field)


def validate(frame: pd.DataFrame, *, is_csv: bool, max_problems: int) -> ValidFrame:
    """Check every row of ``frame`` (normalised column names, see the importer)."""
    check = _Collector(frame.index.to_numpy(dtype=np.int64), is_csv, max_problems)
    dates = _dates(frame["date"], check)
    symbols = _symbols(frame["symbol"], check)
    present = [c for c in (*_OHLC, "adj_close") if c in frame.columns]
    prices = {c: _prices(frame[c], c, check) for c in present}
    volume = _volume(frame["volume"], check)
    _ohlc(prices, check)
    _duplicates(dates, symbols, check)
    if "type" in frame.columns:
        _types(frame["type"], check)
    check.raise_if_any()
    prices.setdefault("adj_close", prices["close"])
    return ValidFrame(
        dates=dates,
        symbols=symbols,
        prices=prices,
        volume=np.rint(volume).astype(np.int64),
        symbol_rows=_symbol_rows(frame, dates, symbols),
    )


def _text(column: pd.Series) -> pd.Series:
    return column.astype("string").str.strip().fillna("")


def _dates(column: pd.Series, check: _Collector) -> npt.NDArray[np.datetime64]:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column)
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_localize(None)
        parsed = parsed.where(parsed == parsed.dt.normalize())
    else:
        parsed = pd.to_datetime(_text(column), format="%Y-%m-%d", errors="coerce")
    raw = column.astype("string").fillna("")
    check.add(
        parsed.isna().to_numpy(),
        "date",
        lambda p: f"{raw.iloc[p]!r} is not a date; write dates as YYYY-MM-DD",
    )
    return parsed.to_numpy().astype("datetime64[D]")


def _symbols(column: pd.Series, check: _Collector) -> npt.NDArray[np.object_]:
    text = _text(column)
    bad = ~text.str.fullmatch(SYMBOL_PATTERN).fillna(False).astype(bool)
    check.add(
        bad.to_numpy(),
        "symbol",
        lambda p: (
            f"{text.iloc[p]!r} is not a valid symbol; use 1-32 letters, digits "
            "or . - _ ^ = /, starting with a letter or digit (e.g. AAPL, BRK.B)"
        ),
    )
    return text.to_numpy(dtype=object)


def _numbers(
    column: pd.Series, name: str, check: _Collector
) -> npt.NDArray[np.float64]:
    """Parse a numeric column, reporting missing and non-numeric cells (-> NaN)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    missing = column.isna().to_numpy()
    check.add(missing, name, lambda p: f"{name} is missing; every row needs a number")
    check.add(
        np.isnan(values) & ~missing,
        name,
        lambda p: (
            f"{column.iloc[p]!r} is not a number; write plain decimals "
            "(no currency signs or thousands separators)"
        ),
    )
    return values


def _prices(column: pd.Series, name: str, check: _Collector) -> npt.NDArray[np.float64]:
    values = _numbers(column, name, check)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ~((values > 0) & (values <= dataset_io.MAX_PRICE))
    check.add(
        bad,
        name,
        lambda p: (
            f"{name} is {values[p]:g}; prices must be positive and at most "
            f"{dataset_io.MAX_PRICE:.0e}"
        ),
    )
    return values


def _volume(column: pd.Series, check: _Collector) -> npt.NDArray[np.float64]:
    values = _numbers(column, "volume", check)
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ~((values >= 0) & (values <= MAX_VOLUME))
    check.add(
        bad,
        "volume",
        lambda p: (
            f"volume is {values[p]:g}; it must be a share count between 0 and "
            f"{MAX_VOLUME:.0e}"
        ),
    )
    return values


def _ohlc(prices: dict[str, npt.NDArray[np.float64]], check: _Collector) -> None:
    """high >= low, open and close within [low, high]; compared as stored (micro)."""
    ok = np.ones(len(prices["close"]), dtype=bool)
    for c in _OHLC:
        ok &= np.isfinite(prices[c]) & (prices[c] > 0)
    micro = {c: dataset_io.to_micro(np.where(ok, prices[c], 0.0)) for c in _OHLC}
    high, low = micro["high"], micro["low"]
    check.add(
        ok & (high < low),
        "high",
        lambda p: (
            f"high {prices['high'][p]} is below low {prices['low'][p]}; "
            "check that the two columns are not swapped"
        ),
    )
    for c in ("open", "close"):
        outside = ok & (high >= low) & ((micro[c] < low) | (micro[c] > high))
        check.add(outside, c, _outside_message(prices, c))


def _outside_message(
    prices: dict[str, npt.NDArray[np.float64]], c: str
) -> Callable[[int], str]:
    def message(p: int) -> str:
        low, high = prices["low"][p], prices["high"][p]
        return (
            f"{c} {prices[c][p]} is outside the day's range [low {low}, high {high}]; "
            f"fix high/low or {c}"
        )

    return message


def _duplicates(
    dates: npt.NDArray[np.datetime64],
    symbols: npt.NDArray[np.object_],
    check: _Collector,
) -> None:
    codes, _ = pd.factorize(symbols)
    days = dates.astype(np.int64)
    order = np.lexsort((np.arange(len(days)), days, codes))
    same = (codes[order][1:] == codes[order][:-1]) & (
        days[order][1:] == days[order][:-1]
    )
    same &= ~np.isnat(dates[order][1:])
    first = order[:-1]
    second = np.zeros(len(days), dtype=bool)
    second[order[1:][same]] = True
    earlier = dict(zip(order[1:][same].tolist(), first[same].tolist(), strict=True))
    check.add(
        second,
        "date",
        lambda p: (
            f"duplicate bar for {symbols[p]} on {dates[p]} (also at "
            f"{check.location(earlier[p])}); keep one row per date and symbol"
        ),
    )


def _types(column: pd.Series, check: _Collector) -> None:
    text = _text(column).str.lower()
    bad = (text != "") & ~text.isin(SYMBOL_TYPES)
    check.add(
        bad.to_numpy(),
        "type",
        lambda p: (
            f"type {text.iloc[p]!r} is unknown; use 'stock' or 'etf' (or leave "
            "it empty)"
        ),
    )


def _symbol_rows(
    frame: pd.DataFrame,
    dates: npt.NDArray[np.datetime64],
    symbols: npt.NDArray[np.object_],
) -> list[dict[str, str]]:
    """One row per symbol: first non-empty name/sector/type, date range, row count."""
    table = pd.DataFrame({"symbol": symbols, "date": dates})
    for c in ("name", "sector", "type"):
        text = (
            _text(frame[c]) if c in frame.columns else pd.Series("", index=frame.index)
        )
        table[c] = text.str.lower().to_numpy() if c == "type" else text.to_numpy()
        table[c] = table[c].replace("", None)
    grouped = table.groupby("symbol", sort=True)
    summary = grouped.agg(
        name=("name", "first"),
        sector=("sector", "first"),
        type=("type", "first"),
        first_date=("date", "min"),
        last_date=("date", "max"),
        rows=("date", "size"),
    )
    summary["type"] = summary["type"].fillna("stock")
    summary = summary.fillna("")
    summary["first_date"] = summary["first_date"].dt.strftime("%Y-%m-%d")
    summary["last_date"] = summary["last_date"].dt.strftime("%Y-%m-%d")
    records = summary.reset_index().astype(str).to_dict("records")
    return [{str(k): str(v) for k, v in r.items()} for r in records]
