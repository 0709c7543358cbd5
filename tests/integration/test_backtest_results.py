"""Analysis, positions, holdings, exposure and exports of completed backtests, on real
PostgreSQL through the ASGI app.

Jobs are completed the way the worker completes them: the backtest kind's own
``run`` (engine, positions, analysis, book) and the runner's completing transaction
(``_save``: guarded status update + ``Completion.save``), without Celery.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
import uuid
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.backtests import run as backtest_run
from app.backtests.schemas import BacktestRequest
from app.core.config import Settings
from app.data.membership import membership_mask_for
from app.data.store import load_dataset
from app.db.models import Job, User
from app.engine.backtest import BacktestResult, run_backtest
from app.jobs import repository as jobs_repo
from app.jobs.registry import Completion, RunContext
from app.jobs.runner import _save
from tests.integration.conftest import UserFactory

pytestmark = pytest.mark.integration

Headers = Callable[[User], dict[str, str]]
SMALL: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
}
MOMENTUM: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "benchmark": "SPY",
    "commission": 0.002,
    "slippage": 0.001,
}
SCREEN: dict[str, Any] = {
    "filter_criteria": {
        "universe": ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO", "PFE", "INTC"],
        "filters": [{"factor": "return", "window": 63, "op": ">", "value": 0}],
        "rank_by": {"factor": "return", "window": 126},
        "ascending": False,
        "top_n": 3,
        "weighting": "equal",
    },
    "start_date": "2016-01-01",
    "end_date": "2020-12-31",
    "rebalancing": "weekly",
    "execution": "close",
}
NO_DIVIDENDS: dict[str, Any] = {**SMALL, "dividends": False, "benchmark": None}
STRATEGIES = {"small": SMALL, "momentum": MOMENTUM, "screen": SCREEN}


class _Reporter:
    def progress(self, fraction: float, current_date: Any, work_done: int) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    def plan(self, phases: Any) -> None:
        return None

    def phase(self, name: str) -> None:
        return None


#: The job id every cached run is seeded with (saved under each test's own row).
RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000017")


@functools.cache
def _run(name: str, job_id: uuid.UUID = RUN_ID) -> Completion:
    body = {**STRATEGIES, "nodiv": NO_DIVIDENDS}[name]
    context = RunContext(
        job_id=job_id,
        config=BacktestRequest.model_validate(body).model_dump(mode="json"),
        name=name,
        settings=Settings(environment="test"),
        reporter=_Reporter(),
    )
    return backtest_run.run(context)


@functools.cache
def _engine(name: str) -> BacktestResult:
    body = {**STRATEGIES, "nodiv": NO_DIVIDENDS}[name]
    config = BacktestRequest.model_validate(body).to_config()
    data = load_dataset(None)
    # As the worker runs it: whole-universe requests default to sp500_pit.
    pit = config.universe == "sp500_pit"
    return run_backtest(
        config, data, membership=membership_mask_for(data) if pit else None
    )


async def _completed(session: AsyncSession, user: User, name: str = "small") -> Job:
    """A job completed by the worker's own code path (one engine run per strategy,
    cached: its analysis is seeded with ``RUN_ID``, not the row's id)."""
    completion = _run(name)
    row = await jobs_repo.create(
        session, kind="backtest", user_id=user.id, config=SMALL, name=name
    )
    assert await jobs_repo.mark_running(session, row.id, claim_token="t")
    saved = await _save(session, row.id, "t", completion, Settings(environment="test"))
    assert saved is not None  # still ours: written
    await session.refresh(row)
    return row


async def _all(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        r = await client.get(
            url, headers=headers, params={"limit": 500, "offset": offset}
        )
        assert r.status_code == 200, r.text
        out += r.json()
        offset += 500
        if offset >= int(r.headers["X-Total-Count"]):
            return out


# ------------------------------------------------------------------ vocabulary
@pytest.mark.parametrize("name", ["small", "momentum", "screen", "nodiv"])
async def test_positions_reconcile_with_lots_and_equity(
    name: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    """Σ position P&L = Σ lot P&L = final equity - initial capital (not - E_0: with
    close execution, day one's costs are already in E_0); per position pnl (cash
    flows) = realised + unrealised (its lots); the metrics' counts match the rows."""
    user = await user_factory()
    job = await _completed(session, user, name)
    headers = auth_headers(user)
    positions = await _all(client, f"/v1/backtest/{job.id}/positions", headers)
    lots = await _all(client, f"/v1/backtest/{job.id}/trades", headers)
    result = _engine(name)
    change = result.equity[-1] - result.config.initial_capital
    scale = result.config.initial_capital * 1e-9
    assert sum(p["pnl"] for p in positions) == pytest.approx(change, abs=scale)
    assert sum(t["pnl"] for t in lots) == pytest.approx(change, abs=scale)
    for p in positions:
        parts = p["realised_pnl"] + p["unrealised_pnl"]
        assert p["pnl"] == pytest.approx(parts, abs=1e-6)
        assert p["is_open"] == (p["closed"] is None) == (p["shares"] > 0)
        assert p["return_pct"] == pytest.approx(p["pnl"] / p["cost"])
    metrics = (await client.get(f"/v1/backtest/{job.id}", headers=headers)).json()
    m = metrics["metrics"]
    assert m["total_positions"] == len(positions)
    assert m["total_lots"] == m["total_trades"] == len(lots)
    assert m["total_fills"] == len(result.fills) == metrics["fills_executed"]
    assert sum(p["fills"] for p in positions) == len(result.fills)
    assert sum(p["lots"] for p in positions) == len(lots)
    closed = [p for p in positions if not p["is_open"]]
    assert m["closed_positions"] == len(closed)
    if closed:
        wins = sum(p["pnl"] > 0 for p in closed)
        assert m["position_win_rate"] == pytest.approx(wins / len(closed))
        assert m["avg_holding_days"] == pytest.approx(
            np.mean([p["holding_days"] for p in closed])
        )
    assert m["lot_win_rate"] == m["win_rate"]


async def test_position_pnl_equals_cash_flows_of_its_fills(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    """Independent of the lots: per symbol, from the simulator's fills and dividend
    income, Σ sells - Σ buys - commissions + dividends + final value."""
    user = await user_factory()
    job = await _completed(session, user, "momentum")
    positions = await _all(
        client, f"/v1/backtest/{job.id}/positions", auth_headers(user)
    )
    result = _engine("momentum")
    f, sim = result.fills, result.simulation
    flows = np.bincount(
        f.col,
        weights=-f.quantity * f.price - f.commission,
        minlength=len(result.symbols),
    )
    held_before = np.vstack([np.zeros(len(result.symbols)), sim.positions[:-1]])
    data = load_dataset(None)
    start = data.row_of(result.dates[0])
    divs = np.nan_to_num(
        data.dividends_per_share[start : start + len(result.dates)][
            :, data.columns(result.symbols)
        ]
    )
    per_symbol = flows + (held_before * divs).sum(axis=0)
    per_symbol += sim.positions[-1] * sim.mark[-1]
    by_symbol: dict[str, float] = {}
    for p in positions:
        by_symbol[p["symbol"]] = by_symbol.get(p["symbol"], 0.0) + p["pnl"]
    for c, symbol in enumerate(result.symbols):
        assert by_symbol.get(symbol, 0.0) == pytest.approx(per_symbol[c], abs=1e-6)


# ---------------------------------------------------------------------- holdings
@pytest.mark.parametrize("name", ["small", "screen"])
async def test_holdings_equal_the_simulators_book(
    name: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, name)
    result = _engine(name)
    sim = result.simulation
    rng = np.random.default_rng(17)
    rows = [0, len(result.dates) - 1, *rng.integers(0, len(result.dates), 5)]
    for i in rows:
        day = result.dates[i].astype("datetime64[D]").item()
        r = await client.get(
            f"/v1/backtest/{job.id}/holdings",
            params={"date": day.isoformat()},
            headers=auth_headers(user),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["date"] == day.isoformat()
        held = {h["symbol"]: h for h in body["holdings"]}
        expected = {
            result.symbols[c]: (sim.positions[i, c], sim.mark[i, c])
            for c in np.flatnonzero(sim.positions[i] > 0)
        }
        assert set(held) == set(expected)
        for symbol, (shares, price) in expected.items():
            assert held[symbol]["shares"] == shares
            assert held[symbol]["price"] == price
        total = sum(h["shares"] * h["price"] for h in body["holdings"]) + body["cash"]
        assert total == pytest.approx(result.equity[i], rel=1e-12)
        assert body["equity"] == result.equity[i]
        assert body["cash"] == sim.cash[i]
        weights = sum(h["weight"] for h in body["holdings"]) + body["cash_weight"]
        assert weights == pytest.approx(1.0)


async def test_holdings_on_a_non_session_use_the_previous_close(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user)
    headers = auth_headers(user)
    url = f"/v1/backtest/{job.id}/holdings"
    # 2018-07-04 is a holiday, 2018-07-07 a Saturday
    cases = (("2018-07-04", "2018-07-03"), ("2018-07-07", "2018-07-06"))
    for day, session_day in cases:
        body = (await client.get(url, params={"date": day}, headers=headers)).json()
        assert (body["date"], body["requested_date"]) == (session_day, day)
    latest = (await client.get(url, headers=headers)).json()
    assert latest["date"] == "2019-12-31"
    early = await client.get(url, params={"date": "2017-12-29"}, headers=headers)
    assert early.status_code == 400
    assert early.json()["details"][0]["field"] == "query.date"


# ---------------------------------------------------------------------- exposure
async def test_exposure_matches_the_daily_book_at_chart_dates(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, "momentum")
    headers = auth_headers(user)
    r = await client.get(
        f"/v1/backtest/{job.id}/exposure", params={"max_points": 50}, headers=headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    chart = (
        await client.get(
            f"/v1/backtest/{job.id}/chart", params={"max_points": 50}, headers=headers
        )
    ).json()
    assert body["dates"] == [p["date"] for p in chart["equity_curve"]]
    assert len(body["dates"]) <= 50
    result = _engine("momentum")
    sim = result.simulation
    index = {d: i for i, d in enumerate(result.dates.astype(str))}
    for k, day in enumerate(body["dates"]):
        i = index[day]
        assert body["holdings"][k] == int((sim.positions[i] > 0).sum())
        invested = sim.invested[i] / result.equity[i]
        assert body["invested"][k] == pytest.approx(invested, rel=1e-12)
        sectors = sum(w[k] for w in body["sector_weights"].values())
        assert sectors == pytest.approx(invested, rel=1e-9)
    rebalances = body["rebalances"]
    assert sum(r["fills"] for r in rebalances) == len(result.fills)
    first = rebalances[0]
    # from cash: the first rebalance only buys, turnover = bought / 2 / capital
    assert first["sold"] == 0.0
    assert first["turnover"] == pytest.approx(
        first["bought"] / 2 / result.config.initial_capital
    )


# ---------------------------------------------------------------------- analysis
async def test_analysis_is_stored_seeded_from_the_task_id(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    from app.backtests.results import seed_of  # noqa: PLC0415
    from app.engine.analysis import analyse_backtest  # noqa: PLC0415

    user = await user_factory()
    job = await _completed(session, user, "small")
    r = await client.get(f"/v1/backtest/{job.id}/analysis", headers=auth_headers(user))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bootstrap"]["seed"] == seed_of(RUN_ID)
    result = _engine("small")
    assert result.benchmark_equity is not None
    expected = analyse_backtest(
        dates=result.dates,
        equity=result.equity,
        benchmarks={"SPY": result.benchmark_equity},
        seed=seed_of(RUN_ID),
    )
    assert body == expected
    assert r.headers["ETag"]
    again = await client.get(
        f"/v1/backtest/{job.id}/analysis",
        headers={**auth_headers(user), "If-None-Match": r.headers["ETag"]},
    )
    assert again.status_code == 304


# ----------------------------------------------------------------------- exports
async def test_equity_export_in_three_formats_agrees(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, "small")
    url = f"/v1/backtest/{job.id}/equity"
    headers = auth_headers(user)
    result = _engine("small")
    as_csv = await client.get(url, headers=headers)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert list(rows[0]) == [
        "date", "equity", "return", "drawdown", "cash", "net_flow", "dividends",
        "benchmark_SPY",
    ]  # fmt: skip
    assert len(rows) == len(result.dates)
    equity = np.array([float(r["equity"]) for r in rows])
    np.testing.assert_array_equal(equity, result.equity)  # repr round-trips
    assert rows[0]["return"] == ""
    assert float(rows[5]["return"]) == result.equity[5] / result.equity[4] - 1
    np.testing.assert_array_equal([float(r["cash"]) for r in rows], result.cash)
    assert result.benchmark_equity is not None
    bench = [float(r["benchmark_SPY"]) for r in rows]
    np.testing.assert_array_equal(bench, result.benchmark_equity)
    as_json = (await client.get(url, params={"format": "json"}, headers=headers)).json()
    assert [r["equity"] for r in as_json] == result.equity.tolist()
    assert as_json[0]["return"] is None
    parquet = await client.get(url, params={"format": "parquet"}, headers=headers)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("date")[0].as_py() == dt.date(2018, 1, 2)
    np.testing.assert_array_equal(table.column("drawdown").to_numpy(), result.drawdown)
    # cash + invested = equity, and the day's cash change is its fills + dividends
    dividends = np.array([float(r["dividends"]) for r in rows])
    assert dividends.sum() == pytest.approx(result.simulation.dividend_income.sum())


async def test_trades_csv_has_the_json_filters_and_order(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, "small")
    url = f"/v1/backtest/{job.id}/trades"
    params = {"symbol": "aapl", "sort": "-pnl", "start_date": "2018-06-01"}
    headers = auth_headers(user)
    as_json = await client.get(url, params={**params, "limit": 500}, headers=headers)
    as_csv = await client.get(url, params={**params, "format": "csv"}, headers=headers)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    expected = as_json.json()
    assert as_csv.headers["X-Total-Count"] == as_json.headers["X-Total-Count"]
    assert len(rows) == len(expected) > 0
    for row, lot in zip(rows, expected, strict=True):
        assert row["symbol"] == lot["symbol"] == "AAPL"
        assert row["entry_date"] == lot["entry_date"] >= "2018-06-01"
        assert float(row["pnl"]) == lot["pnl"]
        assert row["is_open"] == ("true" if lot["is_open"] else "false")


# ------------------------------------------------------------ paging and access
async def test_positions_filters_sorts_and_pages(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, "momentum")
    headers = auth_headers(user)
    url = f"/v1/backtest/{job.id}/positions"
    everything = await _all(client, url, headers)
    r = await client.get(url, params={"sort": "-pnl", "limit": 7}, headers=headers)
    assert r.status_code == 200
    assert int(r.headers["X-Total-Count"]) == len(everything)
    assert 'rel="next"' in r.headers["Link"]
    pnls = [p["pnl"] for p in r.json()]
    assert pnls == sorted((p["pnl"] for p in everything), reverse=True)[:7]
    still_open = await client.get(url, params={"is_open": True}, headers=headers)
    assert all(p["closed"] is None for p in still_open.json())
    assert int(still_open.headers["X-Total-Count"]) == sum(
        p["is_open"] for p in everything
    )
    symbol = everything[0]["symbol"]
    mine = await client.get(url, params={"symbol": symbol.lower()}, headers=headers)
    assert {p["symbol"] for p in mine.json()} == {symbol}
    window = await client.get(
        url, params={"start_date": "2016-01-01", "end_date": "2016-12-31"},
        headers=headers,
    )  # fmt: skip
    assert all("2016" <= p["opened"] <= "2016-12-31" for p in window.json())
    sector = everything[0]["sector"]
    by_sector = await client.get(url, params={"sector": sector}, headers=headers)
    assert {p["sector"] for p in by_sector.json()} == {sector}
    bad = await client.get(url, params={"sort": "bogus"}, headers=headers)
    assert bad.status_code == 400


RESULT_ROUTES = ("analysis", "positions", "holdings", "exposure", "equity", "report")


async def test_other_users_results_are_404_and_unfinished_are_409(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    owner, other = await user_factory(), await user_factory()
    job = await _completed(session, owner)
    pending = await jobs_repo.create(
        session, kind="backtest", user_id=owner.id, config=SMALL, name="p"
    )
    for route in RESULT_ROUTES:
        mine = await client.get(
            f"/v1/backtest/{job.id}/{route}", headers=auth_headers(owner)
        )
        assert mine.status_code == 200, (route, mine.text)
        theirs = await client.get(
            f"/v1/backtest/{job.id}/{route}", headers=auth_headers(other)
        )
        assert theirs.status_code == 404, route
        unknown = await client.get(
            f"/v1/backtest/{uuid.uuid4()}/{route}", headers=auth_headers(owner)
        )
        assert unknown.status_code == 404, route
        early = await client.get(
            f"/v1/backtest/{pending.id}/{route}", headers=auth_headers(owner)
        )
        assert early.status_code == 409, route
        anonymous = await client.get(f"/v1/backtest/{job.id}/{route}")
        assert anonymous.status_code == 401, route


async def test_deleting_a_job_deletes_its_stored_results(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    from sqlalchemy import func, select  # noqa: PLC0415

    from app.db.models import BacktestResult, Position  # noqa: PLC0415

    user = await user_factory()
    job = await _completed(session, user)
    r = await client.delete(f"/v1/backtest/{job.id}", headers=auth_headers(user))
    assert r.status_code == 200
    for model in (BacktestResult, Position):
        count = await session.scalar(
            select(func.count()).select_from(model).where(model.backtest_id == job.id)
        )
        assert count == 0


# ------------------------------------------------------------------------ report
class _Collector(HTMLParser):
    """Tags, attribute values and text of a document, and whether it is balanced."""

    VOID = frozenset({"meta", "input", "br", "img", "link", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("name", ["momentum", "nodiv"])
async def test_report_is_one_self_contained_html_file(
    name: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    job = await _completed(session, user, name)
    r = await client.get(
        f"/v1/backtest/{job.id}/report",
        params={"download": True},
        headers=auth_headers(user),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "attachment" in r.headers["content-disposition"]
    assert len(r.content) <= 1_500_000
    doc = _Collector()
    doc.feed(r.text)
    doc.close()
    assert doc.open == []  # every element closed, in order
    # nothing is fetched: no external reference anywhere, no src/href at all
    assert not re.search(r"(?i)https?://", r.text)
    assert not {"script", "link", "img", "iframe", "object"} & set(doc.tags)
    assert not any(a.startswith(("//", "data:")) for a in doc.attrs)
    assert "@media print" in r.text and "size:A4" in r.text
    text = " ".join(doc.text)
    for heading in (
        "Configuration", "Headline metrics", "Equity", "Drawdown", "Monthly returns",
        "Annual returns", "Deepest drawdowns", "Rolling 252-session statistics",
        "Crisis windows", "Bootstrap", "Fills, lots and positions",
    ):  # fmt: skip
        assert heading in text, heading
    assert doc.tags.count("svg") >= 5  # equity (lin + log), drawdown, annual, rolling
    # the bootstrap as whole distributions: one histogram per statistic, each with
    # the observed value and the 5th/50th/95th percentiles marked
    assert doc.attrs.count("hist") == 3
    for mark in ("observed", "p5", "p50", "p95"):
        assert doc.attrs.count(mark) == 3, mark
    result = _engine(name)
    # the numbers shown are the stored ones
    assert f"{result.metrics['total_return'] * 100:.1f}%" in text
    assert f"{len(result.fills):,}" in text
    years = {str(d)[:4] for d in result.dates}
    assert all(year in text for year in years)
