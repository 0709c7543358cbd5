"""Point-in-time universe: the pure mask and coverage (app/engine/universe.py) and the
engine's use of the mask (eligibility at decision rows), on hand-made and real data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from app.data.membership import BUNDLED_DIR, MEMBERSHIP_FILE, membership_mask_for
from app.data.store import load_dataset
from app.engine.backtest import BacktestResult, check_config, run_backtest
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies import resolve_strategy
from app.engine.universe import (
    OPEN_END,
    Spells,
    coverage,
    membership_mask,
    survivorship_grade,
)

DAYS = np.array(
    ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07", "2021-01-08"],
    dtype="datetime64[D]",
)


def spells(rows: list[tuple[str, str, str | None]]) -> Spells:
    labels = tuple(sorted({r[0] for r in rows}))
    return Spells(
        labels=labels,
        label=np.array([labels.index(r[0]) for r in rows], dtype=np.int64),
        start=np.array([r[1] for r in rows], dtype="datetime64[D]"),
        end=np.array([r[2] or OPEN_END for r in rows], dtype="datetime64[D]"),
    )


# ----------------------------------------------------------------- pure functions
def test_membership_mask_start_inclusive_end_exclusive() -> None:
    got = membership_mask(
        spells(
            [
                ("A", "2021-01-05", "2021-01-07"),
                ("B", "2021-01-02", None),  # starts before the first session
                ("C", "2021-01-03", "2021-01-05"),
                ("C", "2021-01-07", "2021-01-09"),  # ends after the last session
            ]
        ),
        DAYS,
        ["B", "A", "C", "D"],
    )
    want = np.array(
        [
            [1, 0, 1, 0],
            [1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 0, 1, 0],
            [1, 0, 1, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(got, want)


def test_membership_mask_ignores_labels_outside_the_matrix_and_unions_overlaps() -> (
    None
):
    got = membership_mask(
        spells(
            [
                ("A", "2021-01-04", "2021-01-06"),
                ("A", "2021-01-05", "2021-01-08"),
                ("ZZ", "2021-01-04", None),
            ]
        ),
        DAYS,
        ["A"],
    )
    np.testing.assert_array_equal(got[:, 0], [True, True, True, True, False])


def test_spells_reject_an_empty_spell() -> None:
    with pytest.raises(InvalidInputError, match="end after it starts"):
        spells([("A", "2021-01-05", "2021-01-05")])


def test_coverage_counts_member_days_by_hand() -> None:
    # A: member all 5 days, priced on 4. B: member on 3 days, priced on none.
    # Z: a member without a column, 2 days. Covered 4 of 10.
    s = spells(
        [
            ("A", "2021-01-01", None),
            ("B", "2021-01-06", None),
            ("Z", "2021-01-04", "2021-01-06"),
        ]
    )
    has_price = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [1, 0]], dtype=bool)
    got = coverage(s, DAYS, ["A", "B"], has_price)
    assert (got.member_days, got.covered_member_days) == (10, 4)
    assert got.share == pytest.approx(0.4)
    assert (got.members, got.members_without_prices) == (3, 2)
    assert got.by_year == {2021: pytest.approx(0.4)}
    assert got.survivorship_bias == "high"
    part = coverage(
        s,
        DAYS,
        ["A", "B"],
        has_price,
        start=dt.date(2021, 1, 7),
        end=dt.date(2021, 1, 8),
    )
    assert (part.member_days, part.covered_member_days, part.members) == (4, 2, 2)


def test_survivorship_grade_thresholds() -> None:
    assert survivorship_grade(1.0) == survivorship_grade(0.95) == "low"
    assert survivorship_grade(0.949) == survivorship_grade(0.80) == "moderate"
    assert survivorship_grade(0.799) == survivorship_grade(float("nan")) == "high"


# ------------------------------------------------------------- eligibility (hand)
def hand_market() -> MarketData:
    close = np.array(
        [[10, 10, 10], [12, 11, 10], [14, 12, 10], [16, 13, 10], [18, 14, 10]], float
    )
    return MarketData(
        name="hand",
        dates=DAYS,
        symbols=("A", "B", "C"),
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.full_like(close, 1e6),
        adj_close=close,
    )


def test_pipeline_ranks_only_eligible_symbols() -> None:
    data, rows = hand_market(), np.array([4], dtype=np.int64)
    best = {"rank_by": {"factor": "return", "window": 3}, "top_n": 1}
    momentum = resolve_strategy(None, None, best)  # the screen language
    assert momentum.target_weights(data, rows).tolist() == [[1.0, 0.0, 0.0]]
    not_a = np.array([[False, True, True]])
    assert momentum.target_weights(data, rows, not_a).tolist() == [[0.0, 1.0, 0.0]]
    equal = resolve_strategy(1, None, None)
    assert equal.target_weights(data, rows, not_a).tolist() == [[0.0, 0.5, 0.5]]


def test_pipeline_rejects_a_misshaped_eligible_mask() -> None:
    strategy = resolve_strategy(1, None, None)
    with pytest.raises(InvalidInputError, match="eligible has shape"):
        strategy.target_weights(hand_market(), np.array([1]), np.ones((1, 2), bool))


def _daily(universe: str) -> BacktestConfig:
    return BacktestConfig(
        start_date=dt.date(2021, 1, 4),
        end_date=dt.date(2021, 1, 8),
        rebalancing="daily",
        execution="close",
        commission_rate=0.0,
        slippage_rate=0.0,
        universe=universe,  # type: ignore[arg-type]
    )


def test_holding_that_leaves_the_index_is_sold_at_the_next_rebalance() -> None:
    data = hand_market()
    members = np.ones((5, 3), dtype=bool)
    members[2:, 1] = False  # B leaves the index on the third session
    result = run_backtest(_daily("sp500_pit"), data, membership=members)
    held_b = result.simulation.positions[:, 1]
    assert held_b[1] > 0 and (held_b[2:] == 0).all()
    assert (result.simulation.positions[2:, [0, 2]] > 0).all()


def test_universe_all_ignores_the_mask_and_pit_requires_one() -> None:
    data, members = hand_market(), np.zeros((5, 3), dtype=bool)
    plain = run_backtest(_daily("all"), data)
    with_mask = run_backtest(_daily("all"), data, membership=members)
    np.testing.assert_array_equal(plain.equity, with_mask.equity)
    with pytest.raises(InvalidInputError, match="needs index membership") as err:
        run_backtest(_daily("sp500_pit"), data)
    assert err.value.field == "universe"
    with pytest.raises(InvalidInputError, match="membership has shape"):
        check_config(_daily("sp500_pit"), data, membership=np.ones((5, 2), bool))
    with pytest.raises(InvalidInputError, match="universe must be one of"):
        check_config(_daily("sp600"), data)


# ------------------------------------------------------------- real bundled data
@pytest.fixture(scope="module")
def sp500() -> MarketData:
    return load_dataset()


def _momentum(
    data: MarketData, universe: str, start: dt.date, end: dt.date
) -> BacktestResult:
    config = BacktestConfig(
        start_date=start,
        end_date=end,
        strategy_id=2,
        strategy_params={"top_n": 20},
        universe=universe,  # type: ignore[arg-type]
    )
    return run_backtest(config, data, membership=membership_mask_for(data))


def _addition_day(symbol: str, year: int) -> np.datetime64:
    """The start of ``symbol``'s spell that begins in ``year``, read from the CSV."""
    frame = pd.read_csv(BUNDLED_DIR / MEMBERSHIP_FILE, keep_default_na=False)
    starts = pd.to_datetime(frame.loc[frame["ticker"] == symbol, "start_date"])
    (day,) = starts[starts.dt.year == year]
    return np.datetime64(day.date(), "D")


@pytest.mark.parametrize(
    ("symbol", "year", "start", "end"),
    [
        ("MNST", 2012, dt.date(2011, 1, 1), dt.date(2013, 12, 31)),
        ("AMD", 2017, dt.date(2016, 1, 1), dt.date(2018, 12, 31)),
        ("ENPH", 2021, dt.date(2020, 1, 1), dt.date(2022, 12, 31)),
    ],
)
def test_momentum_never_holds_an_index_addition_before_it_joins(
    sp500: MarketData, symbol: str, year: int, start: dt.date, end: dt.date
) -> None:
    added = _addition_day(symbol, year)
    for universe in ("all", "sp500_pit"):
        result = _momentum(sp500, universe, start, end)
        held = result.simulation.positions[:, result.symbols.index(symbol)] > 0
        before = result.dates.astype("datetime64[D]") < added
        if universe == "all":  # the stock was a momentum pick before it joined...
            assert held[before].any()
        else:  # ...which the point-in-time universe forbids, but not afterwards
            assert not held[before].any()
            assert held[~before].any()


def test_momentum_top20_2008_2012_differs_between_universes(sp500: MarketData) -> None:
    start, end = dt.date(2008, 1, 1), dt.date(2012, 12, 31)
    everything = _momentum(sp500, "all", start, end)
    members = _momentum(sp500, "sp500_pit", start, end)
    assert everything.final_equity != members.final_equity
    mask = membership_mask_for(sp500)
    first = sp500.row_of(np.datetime64(start))
    # Every position the point-in-time run opened was in the index on its decision day
    # (next_open: the fill at row t was decided at row t-1).
    fills = members.fills
    buys = fills.quantity > 0
    cols = sp500.columns([members.symbols[c] for c in fills.col[buys]])
    assert mask[first + fills.row[buys] - 1, cols].all()
    # ...and the "all" run bought some stock outside the index.
    fills = everything.fills
    buys = fills.quantity > 0
    cols = sp500.columns([everything.symbols[c] for c in fills.col[buys]])
    assert not mask[first + fills.row[buys] - 1, cols].all()
