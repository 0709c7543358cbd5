"""The point-in-time universe through the API (embedded server: real HTTP, the
in-process worker, SQLite): the ``universe`` option and its default, the
``data_coverage`` disclosure of every result and ``GET /v1/datasets/{name}/coverage``.

Coverage figures are compared with an independent count: the membership CSV read
with plain pandas, renames applied row by row, joined with the price rows of the
bundled Parquet file (not the engine's mask or matrices).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from app.data.importer import import_dataset
from app.data.membership import BUNDLED_DIR, MEMBERSHIP_FILE, RENAMES_FILE
from tests.integration.stack import EmbeddedServer

pytestmark = pytest.mark.integration

MOMENTUM_2008_2012: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2008-01-01",
    "end_date": "2012-12-31",
}
# AAPL and MSFT were members throughout; TSLA joined on 2020-12-21.
THREE_SYMBOLS: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "TSLA"],
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
}


# --- the independent count -------------------------------------------------------


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    frame = pd.read_parquet(BUNDLED_DIR / "prices.parquet", columns=["date", "symbol"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["symbol"] = frame["symbol"].astype(str)
    return frame


def _member_days(start: str, end: str, sessions: pd.Series) -> pd.DataFrame:
    """(label, day) of every index member-day between ``start`` and ``end``
    (inclusive) on the dataset's sessions, tickers renamed to today's."""
    spells = pd.read_csv(BUNDLED_DIR / MEMBERSHIP_FILE, keep_default_na=False)
    spells["start"] = pd.to_datetime(spells["start_date"])
    spells["end"] = pd.to_datetime(spells["end_date"].replace("", "2262-01-01"))
    renames = pd.read_csv(BUNDLED_DIR / RENAMES_FILE, parse_dates=["date"])
    days = pd.DataFrame({"day": sorted(sessions.unique())})
    days = days[(days["day"] >= start) & (days["day"] <= end)]
    rows = spells[["ticker", "start", "end"]].merge(days, how="cross")
    rows = rows[(rows["start"] <= rows["day"]) & (rows["day"] < rows["end"])]
    label = rows["ticker"].copy()
    for r in renames.sort_values("date", kind="stable").itertuples():
        label[(label == r.old_ticker) & (rows["day"] < r.date)] = r.new_ticker
    member = pd.DataFrame({"label": label, "day": rows["day"]})
    return member.drop_duplicates()


def _independent_coverage(prices: pd.DataFrame, start: str, end: str) -> dict[str, Any]:
    member = _member_days(start, end, prices["date"])
    joined = member.merge(
        prices, left_on=["label", "day"], right_on=["symbol", "date"], how="left"
    )
    covered = joined["symbol"].notna()
    per_member = joined.assign(covered=covered).groupby("label")["covered"].any()
    return {
        "member_days": len(member),
        "covered_member_days": int(covered.sum()),
        "members": len(per_member),
        "members_without_prices": int((~per_member).sum()),
    }


# --- helpers ---------------------------------------------------------------------


async def _run(
    server: EmbeddedServer, http: httpx.AsyncClient, body: dict[str, Any]
) -> dict[str, Any]:
    created = await http.post("/v1/backtest", json=body)
    assert created.status_code == 200, created.text
    done = await server.wait_status(http, created.json()["task_id"], timeout=120)
    assert done["status"] == "completed", done
    return done


async def _trades(http: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = f"/v1/backtest/{task_id}/trades?limit=500"
    while url:
        page = await http.get(url)
        assert page.status_code == 200, page.text
        out.extend(page.json())
        url = page.links.get("next", {}).get("url")
    return out


def _import_small_dataset(server: EmbeddedServer, tmp_path: Path, name: str) -> None:
    """Two stocks and SPY for 2019, from the bundled prices, as a user import."""
    frame = pd.read_parquet(BUNDLED_DIR / "prices.parquet")
    frame["symbol"] = frame["symbol"].astype(str)
    frame["date"] = pd.to_datetime(frame["date"])
    keep = frame["symbol"].isin(["AAPL", "MSFT", "SPY"]) & (
        frame["date"].dt.year == 2019
    )
    columns = ["date", "symbol", "open", "high", "low", "close", "volume"]
    path = tmp_path / f"{name}.csv"
    frame.loc[keep, columns].to_csv(path, index=False, date_format="%Y-%m-%d")
    import_dataset(
        path, name=name, datasets_dir=server.var_dir / "datasets", replace=True
    )


# --- backtests -------------------------------------------------------------------


async def test_momentum_2008_2012_default_is_pit_and_differs_from_all(
    embedded_server: EmbeddedServer, prices: pd.DataFrame
) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        pit = await _run(embedded_server, http, MOMENTUM_2008_2012)
        every = await _run(
            embedded_server, http, {**MOMENTUM_2008_2012, "universe": "all"}
        )
        pit_trades = await _trades(http, pit["task_id"])

    # The default for a whole-universe screen is the point-in-time universe.
    assert pit["config"]["universe"] == "sp500_pit"
    assert every["config"]["universe"] == "all"
    assert pit["metrics"]["total_return"] != pytest.approx(
        every["metrics"]["total_return"], abs=0.01
    )
    # Every position was opened on a member: the fill is at the next open after
    # the decision, so the symbol was a member on the session before entry.
    member = _member_days("2007-12-01", "2012-12-31", prices["date"])
    sessions = pd.DatetimeIndex(sorted(prices["date"].unique()))
    members = set(zip(member["label"], member["day"], strict=True))
    for trade in pit_trades:
        entry = sessions.get_loc(pd.Timestamp(trade["entry_date"]))
        assert (trade["symbol"], sessions[entry - 1]) in members, trade
    # The same disclosure under both universes: it describes the data.
    assert pit["metrics"]["data_coverage"] == {
        **every["metrics"]["data_coverage"],
        "universe": "sp500_pit",
    }


async def test_result_coverage_matches_an_independent_count(
    embedded_server: EmbeddedServer, prices: pd.DataFrame
) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        done = await _run(
            embedded_server,
            http,
            {**MOMENTUM_2008_2012, "strategy_id": 1, "strategy_params": None},
        )
    got = done["metrics"]["data_coverage"]
    expected = _independent_coverage(prices, "2008-01-01", "2012-12-31")

    assert {k: got[k] for k in expected} == expected
    assert got["share"] == pytest.approx(
        expected["covered_member_days"] / expected["member_days"], rel=1e-12
    )
    assert (got["start_date"], got["end_date"]) == ("2008-01-02", "2012-12-31")
    assert got["index"] == "S&P 500" and got["reason"] is None
    assert got["survivorship_bias"] == "high"  # about 60 % < 80 %


async def test_explicit_symbols_default_to_all_and_pit_limits_them(
    embedded_server: EmbeddedServer,
) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        listed = await _run(embedded_server, http, THREE_SYMBOLS)
        listed_all = await _run(
            embedded_server, http, {**THREE_SYMBOLS, "universe": "all"}
        )
        listed_pit = await _run(
            embedded_server, http, {**THREE_SYMBOLS, "universe": "sp500_pit"}
        )
        held = {t["symbol"] for t in await _trades(http, listed["task_id"])}
        held_pit = {t["symbol"] for t in await _trades(http, listed_pit["task_id"])}

    # A list is kept as given: no membership unless asked for.
    assert listed["config"]["universe"] == "all"
    assert listed["metrics"]["total_return"] == listed_all["metrics"]["total_return"]
    assert held == {"AAPL", "MSFT", "TSLA"}
    # Asked for: each listed stock only while a member (TSLA joined in 2020).
    assert held_pit == {"AAPL", "MSFT"}
    assert listed["metrics"]["data_coverage"]["survivorship_bias"] == "high"


async def test_imported_dataset_defaults_to_all_and_refuses_pit(
    embedded_server: EmbeddedServer, tmp_path: Path
) -> None:
    _import_small_dataset(embedded_server, tmp_path, "mine")
    body = {"dataset": "mine", "start_date": "2019-01-02", "end_date": "2019-12-31"}
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        pit = {**body, "universe": "sp500_pit"}
        refused = await http.post("/v1/backtest", json=pit)
        done = await _run(embedded_server, http, body)

    assert refused.status_code == 400
    error = refused.json()
    assert error["details"][0]["field"] == "body.universe"
    assert "imported" in error["message"]
    assert done["config"]["universe"] == "all"
    coverage = done["metrics"]["data_coverage"]
    assert coverage["survivorship_bias"] == "unknown"
    assert "imported" in coverage["reason"]
    assert coverage["share"] is None and coverage["members"] is None


# --- GET /v1/datasets/{name}/coverage ----------------------------------------------


async def test_dataset_coverage_by_year_matches_an_independent_count(
    embedded_server: EmbeddedServer, prices: pd.DataFrame
) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        response = await http.get("/v1/datasets/sp500/coverage")
    assert response.status_code == 200, response.text
    body = response.json()
    years = {y["year"]: y for y in body["years"]}

    assert body["membership_known"] is True and body["index"] == "S&P 500"
    assert list(years) == list(range(2005, 2025))
    for year in (2005, 2010, 2024):
        expected = _independent_coverage(prices, f"{year}-01-01", f"{year}-12-31")
        assert {k: years[year][k] for k in expected} == expected, year
    shares = [y["share"] for y in body["years"]]
    assert shares == sorted(shares)  # coverage only rises towards the download date
    assert years[2005]["survivorship_bias"] == "high"
    assert years[2024]["survivorship_bias"] == "low"


async def test_dataset_coverage_of_imported_and_unknown_datasets(
    embedded_server: EmbeddedServer, tmp_path: Path
) -> None:
    _import_small_dataset(embedded_server, tmp_path, "mine2")
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        imported = await http.get("/v1/datasets/mine2/coverage")
        unknown = await http.get("/v1/datasets/no-such-data/coverage")
        anonymous = await httpx.AsyncClient(base_url=embedded_server.base_url).get(
            "/v1/datasets/sp500/coverage"
        )

    assert imported.status_code == 200
    assert imported.json()["membership_known"] is False
    assert imported.json()["years"] == [] and imported.json()["reason"]
    assert unknown.status_code == 404
    assert anonymous.status_code == 401


def test_independent_count_sanity() -> None:
    """The helper itself: a known day has about 500 members."""
    sessions = pd.Series(pd.to_datetime(["2010-01-04"]))
    assert 495 <= len(_member_days("2010-01-04", "2010-01-04", sessions)) <= 505
