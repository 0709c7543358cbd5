"""The shipped S&P 500 membership files and their loader (app/data/membership.py).

Counts and coverage are checked against the raw CSV read with plain pandas, so the
loader's rename chains and the engine's mask are compared with a second, simpler
implementation (renames applied row by row in date order).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from app.data.membership import (
    BUNDLED_DIR,
    MEMBERSHIP_FILE,
    RENAMES_FILE,
    Rename,
    apply_renames,
    coverage_by_year,
    coverage_for,
    load_spells,
    membership_mask_for,
    read_renames,
    spelling_key,
    to_spells,
)
from app.data.store import load_dataset
from app.engine.data import MarketData
from app.engine.universe import coverage, membership_mask

COUNT_DAYS = ["2005-01-03", "2010-01-04", "2015-01-02", "2020-01-02", "2024-08-26"]


@pytest.fixture(scope="module")
def sp500() -> MarketData:
    return load_dataset()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    frame = pd.read_csv(BUNDLED_DIR / MEMBERSHIP_FILE, keep_default_na=False)
    frame["start"] = pd.to_datetime(frame["start_date"])
    frame["end"] = pd.to_datetime(frame["end_date"].replace("", "2262-01-01"))
    return frame


@pytest.fixture(scope="module")
def renames() -> pd.DataFrame:
    frame = pd.read_csv(BUNDLED_DIR / RENAMES_FILE, parse_dates=["date"])
    return frame.sort_values("date", kind="stable")


def _members_on(spells_frame: pd.DataFrame, day: str) -> set[str]:
    on = (spells_frame["start"] <= day) & (day < spells_frame["end"])
    return set(spells_frame.loc[on, "ticker"])


@pytest.mark.parametrize("day", COUNT_DAYS)
def test_membership_about_500_members_on_each_date(
    sp500: MarketData, raw: pd.DataFrame, day: str
) -> None:
    spells = load_spells(sp500.symbols)
    full = membership_mask(
        spells, np.array([day], dtype="datetime64[D]"), spells.labels
    )
    assert 490 <= int(full.sum()) <= 510
    # Renames relabel members, they never add or drop one.
    assert int(full.sum()) == len(_members_on(raw, day))


def test_membership_renamed_company_is_member_across_its_rename(
    sp500: MarketData,
) -> None:
    mask = membership_mask_for(sp500)
    for symbol, first_member, rename_day in (
        ("META", "2013-12-23", "2022-06-09"),
        ("ELV", "2005-01-03", "2022-06-28"),
        ("PARA", "2006-01-03", "2022-02-17"),  # CBS -> VIAC (2019) -> PARA (2022)
    ):
        col = sp500.column_of[symbol]
        lo = sp500.row_of(np.datetime64(first_member))
        hi = sp500.row_of(np.datetime64(rename_day))
        assert mask[lo : hi + 30, col].all(), symbol
        # Prices exist under today's ticker, so the old ticker's spell matters.
        assert np.isfinite(sp500.close[lo:hi, col]).all(), symbol


def test_membership_reused_ticker_goes_to_the_right_company(sp500: MarketData) -> None:
    # Ingersoll-Rand (IR until 2020-03-03, now TT) was a member from 2010; Gardner
    # Denver took the IR ticker and joined the index on 2020-03-03.
    mask = membership_mask_for(sp500)
    tt, ir = sp500.column_of["TT"], sp500.column_of["IR"]
    rows = [sp500.row_of(np.datetime64(d)) for d in ("2012-06-01", "2019-06-03")]
    assert mask[rows, tt].all()
    assert not mask[rows, ir].any()
    assert mask[sp500.row_of(np.datetime64("2020-03-03")) :, ir].all()


def test_spelling_key_maps_share_class_separators() -> None:
    assert {spelling_key(s) for s in ("BRK.B", "brk-b", "BRK/B", "BRK_B")} == {"BRK.B"}
    assert spelling_key("AAPL") == "AAPL"


def test_membership_spelling_matches_the_dataset_symbols() -> None:
    dotted = load_spells(["BRK.B", "AAPL"])
    dashed = load_spells(["BRK-B", "AAPL"])
    assert "BRK-B" in dashed.labels and "BRK.B" not in dashed.labels
    days = np.arange("2005-01-03", "2024-08-27", dtype="datetime64[D]")
    np.testing.assert_array_equal(
        membership_mask(dotted, days, ["BRK.B"]),
        membership_mask(dashed, days, ["BRK-B"]),
    )
    assert membership_mask(dashed, days, ["BRK-B"]).any()


def test_apply_renames_follows_chains_and_splits_reused_tickers() -> None:
    d = dt.date
    spells = [
        ("CBS", d(2000, 1, 3), d(2019, 12, 5)),
        ("VIAC", d(2019, 12, 5), d(2022, 2, 17)),
        ("PARA", d(2022, 2, 17), None),
        ("IR", d(2010, 11, 17), None),
        ("TT", d(2020, 3, 3), None),
    ]
    renames = [
        Rename("VIAC", "PARA", d(2022, 2, 17)),
        Rename("CBS", "VIAC", d(2019, 12, 5)),
        Rename("IR", "TT", d(2020, 3, 3)),
    ]
    got = to_spells(apply_renames(spells, renames), ["PARA", "TT", "IR"])
    spans = {
        (got.labels[i], str(s), str(e))
        for i, s, e in zip(got.label, got.start, got.end, strict=True)
    }
    assert spans == {
        ("PARA", "2000-01-03", "9999-12-31"),
        ("TT", "2010-11-17", "9999-12-31"),
        ("IR", "2020-03-03", "9999-12-31"),
    }


def test_rename_map_rows_sit_on_spell_boundaries(raw: pd.DataFrame) -> None:
    """Each real rename ends (or, for a reused ticker, crosses) a spell of the old
    ticker on its date, and a spell of the new ticker starts there (or within a
    week)."""
    for r in read_renames(BUNDLED_DIR / RENAMES_FILE):
        if r.new == "ASD":  # the one ticker-reuse correction, not a rename
            continue
        day = pd.Timestamp(r.date)
        old = raw[raw["ticker"] == r.old]
        assert ((old["end"] == day) | ((old["start"] < day) & (old["end"] > day))).any()
        # The file leaves a few days' gap at Praxair -> Linde (2018-10-31/11-06).
        gap = raw.loc[raw["ticker"] == r.new, "start"] - day
        assert ((gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(days=7))).any(), r


def test_rename_map_targets_are_dataset_symbols(sp500: MarketData) -> None:
    renames = read_renames(BUNDLED_DIR / RENAMES_FILE)
    olds = {r.old for r in renames}
    finals = {r.new for r in renames if r.new not in olds}
    assert finals - set(sp500.symbols) == {"ASD"}


def _independent_member_days(
    raw: pd.DataFrame, renames: pd.DataFrame, days: pd.DatetimeIndex
) -> pd.DataFrame:
    """(label, day) of every member-day, renames applied row by row in date order."""
    sessions = pd.DataFrame({"day": days})
    rows = raw[["ticker", "start", "end"]].merge(sessions, how="cross")
    rows = rows[(rows["start"] <= rows["day"]) & (rows["day"] < rows["end"])]
    label = rows["ticker"].copy()
    for r in renames.itertuples():
        label[(label == r.old_ticker) & (rows["day"] < r.date)] = r.new_ticker
    return pd.DataFrame({"label": label, "day": rows["day"]}).drop_duplicates()


def test_coverage_equals_an_independent_pandas_count(
    sp500: MarketData, raw: pd.DataFrame, renames: pd.DataFrame
) -> None:
    start, end = dt.date(2008, 1, 1), dt.date(2012, 12, 31)
    prices = pd.read_parquet(BUNDLED_DIR / "prices.parquet", columns=["date", "symbol"])
    prices["date"] = pd.to_datetime(prices["date"])
    prices["symbol"] = prices["symbol"].astype(str)
    days = pd.DatetimeIndex(sorted(prices["date"].unique()))
    days = days[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
    member_days = _independent_member_days(raw, renames, days)
    priced = member_days.merge(
        prices, left_on=["label", "day"], right_on=["symbol", "date"], how="left"
    )
    covered = priced["symbol"].notna()

    got = coverage_for(sp500, start=start, end=end)

    assert got.member_days == len(member_days)
    assert got.covered_member_days == int(covered.sum())
    assert got.share == pytest.approx(covered.mean(), rel=1e-12)
    per_label = priced.assign(covered=covered).groupby("label")["covered"].any()
    assert got.members == len(per_label)
    assert got.members_without_prices == int((~per_label).sum())
    assert 0.55 < got.share < 0.65  # the survivorship bias the README describes
    assert got.survivorship_bias == "high"


def test_coverage_by_year_rises_to_almost_all_by_2024(sp500: MarketData) -> None:
    by_year = coverage_for(sp500).by_year
    assert list(by_year) == list(range(2005, 2025))
    assert all(
        a < b
        for a, b in zip(
            list(by_year.values()), list(by_year.values())[1:], strict=False
        )
    )
    assert by_year[2005] < 0.5 < 0.95 < by_year[2024]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, None),
        (dt.date(2008, 1, 1), dt.date(2012, 12, 31)),
        (dt.date(2010, 1, 4), dt.date(2010, 1, 4)),  # one session
        (dt.date(2016, 2, 29), dt.date(2024, 12, 31)),  # ends after the data
        (dt.date(2000, 1, 1), dt.date(2005, 1, 3)),  # starts before the data
    ],
)
def test_coverage_for_equals_the_engine_coverage(
    sp500: MarketData, start: dt.date | None, end: dt.date | None
) -> None:
    """The running totals answer exactly what the engine's one-shot count does."""
    expected = coverage(
        load_spells(sp500.symbols),
        sp500.dates,
        sp500.symbols,
        ~np.isnan(sp500.close),
        start=start,
        end=end,
    )
    assert coverage_for(sp500, start=start, end=end) == expected


def test_coverage_by_year_rows_equal_single_year_coverage(sp500: MarketData) -> None:
    rows = {r.year: r for r in coverage_by_year(sp500)}
    assert list(rows) == list(range(2005, 2025))
    one = coverage_for(sp500, start=dt.date(2009, 1, 1), end=dt.date(2009, 12, 31))
    assert rows[2009].member_days == one.member_days
    assert rows[2009].covered_member_days == one.covered_member_days
    assert rows[2009].members_without_prices == one.members_without_prices
    assert rows[2009].share == pytest.approx(coverage_for(sp500).by_year[2009])


def test_membership_mask_for_is_cached_and_read_only(sp500: MarketData) -> None:
    mask = membership_mask_for(sp500)
    assert membership_mask_for(sp500) is mask
    assert mask.shape == (sp500.n_days, sp500.n_symbols)
    assert not mask.flags.writeable
    # ETFs are not index members.
    assert not mask[:, [sp500.column_of[s] for s in ("SPY", "QQQ")]].any()
