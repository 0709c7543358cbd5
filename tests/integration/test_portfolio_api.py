"""Investor portfolios through POST /v1/backtest in embedded mode (issue 16): the
validation 400s, and a 60/40 allocation with monthly contributions end to end."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.integration.stack import EmbeddedServer, watch_progress

pytestmark = pytest.mark.integration

SIXTY_FORTY: dict[str, Any] = {
    "name": "60/40 adding 1,000 a month",
    "allocation": {"SPY": 0.6, "AGG": 0.4},
    "rebalancing": "quarterly",
    "rebalance_band": 0.05,
    "cash_flows": {"amount": 1000, "frequency": "monthly"},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "benchmarks": [
        "SPY",
        {"name": "SPY/AGG 80/20", "allocation": {"SPY": 0.8, "AGG": 0.2}},
    ],
}  # fmt: skip


def _body(**changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in SIXTY_FORTY.items() if k != "benchmarks"}
    return {**body, **changes}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"strategy_id": 2}, "body.allocation", "not both"),
        ({"allocation": {"SPY": 0.7, "AGG": 0.4}}, "body.allocation", "at most 1"),
        ({"allocation": {"SPY": 0.0}}, "body.allocation", "(0, 1]"),
        ({"allocation": {"SPY": 0.5, "NOPE": 0.5}}, "body.allocation", "NOPE"),
        ({"symbols": ["SPY"]}, "body.symbols", "allocation"),
        ({"rebalance_band": 0}, "body.rebalance_band", "greater than 0"),
        ({"cash_flows": {"amount": 0}}, "body.cash_flows.amount", "not be 0"),
        ({"cash_flows": {"amount": 10, "frequency": "weekly"}},
         "body.cash_flows.frequency", "monthly"),
        ({"benchmarks": ["SPY", "AGG", "IWM", "QQQ"]}, "body.benchmarks", "3"),
        ({"benchmark": "SPY", "benchmarks": ["AGG"]}, "body.benchmarks", "not both"),
        ({"benchmarks": ["NOPE"]}, "body.benchmarks[0]", "NOPE"),
        ({"benchmarks": [{"name": "x", "allocation": {"SPY": 1.2}}]},
         "body.benchmarks[0].portfolio.allocation", "(0, 1]"),
    ],
)  # fmt: skip
async def test_portfolio_validation_names_the_field(
    embedded_server: EmbeddedServer, changes: dict[str, Any], field: str, fragment: str
) -> None:
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        response = await http.post("/v1/backtest", json=_body(**changes))
        history = (await http.get("/v1/backtest/history")).json()
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "ValidationError"
    assert [d["field"] for d in body["details"]] == [field]
    assert fragment in body["details"][0]["message"]
    assert history == []  # refused requests leave nothing behind


async def test_sixty_forty_with_contributions_end_to_end(
    embedded_server: EmbeddedServer,
) -> None:
    body = {**SIXTY_FORTY}
    body["benchmarks"] = [
        "SPY",
        {"name": "80/20", "allocation": {"SPY": 0.8, "AGG": 0.2},
         "rebalancing": "never"},
    ]  # fmt: skip
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        created = await http.post("/v1/backtest", json=body)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        watched = await watch_progress(
            embedded_server.ws_url, task_id, token=user.token
        )
        assert watched.statuses[-1] == "completed"
        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
        chart = (await http.get(f"/v1/backtest/{task_id}/chart")).json()
        table = (
            await http.get(f"/v1/backtest/{task_id}/equity", params={"format": "json"})
        ).json()
        trades = (await http.get(f"/v1/backtest/{task_id}/trades?limit=500")).json()

    assert detail["config"]["reinvest_dividends"] is True
    assert detail["config"]["universe"] == "all"
    m = detail["metrics"]
    n_flows = 59  # the first session of each month after January 2015
    assert m["total_contributions"] == 1000.0 * n_flows
    assert m["total_withdrawals"] == 0.0
    assert m["portfolio_depleted"] is False
    assert m["rebalance_count"] >= n_flows  # every contribution rebalances
    assert m["final_value"] == pytest.approx(m["final_equity"])
    assert m["final_value"] > 100_000 + 1000.0 * n_flows  # it grew
    assert -0.5 < m["money_weighted_return"] < 0.5
    # the first benchmark feeds the single-benchmark fields, as before
    assert chart["benchmark_symbol"] == "SPY"
    assert [b["name"] for b in chart["benchmarks"]] == ["SPY", "80/20"]
    for bench in chart["benchmarks"]:
        assert len(bench["equity"]) == len(chart["equity_curve"])
        assert set(bench["metrics"]) >= {
            "alpha", "beta", "information_ratio", "tracking_error",
            "up_capture", "down_capture", "correlation",
        }  # fmt: skip
    assert chart["benchmarks"][1]["allocation"] == {"SPY": 0.8, "AGG": 0.2}
    assert [p["benchmark"] for p in chart["equity_curve"]] == chart["benchmarks"][0][
        "equity"
    ]
    assert m["beta"] == pytest.approx(chart["benchmarks"][0]["metrics"]["beta"])
    # the flows: one dated entry each on the chart, one net_flow row each in the
    # daily ledger table, on the first session of each month
    flows = chart["flows"]
    assert len(flows) == n_flows and {f["amount"] for f in flows} == {1000.0}
    ledger = {r["date"]: r["net_flow"] for r in table if r["net_flow"] != 0.0}
    assert ledger == {f["date"]: f["amount"] for f in flows}
    months = [dt.date.fromisoformat(f["date"]).month for f in flows]
    assert len(set(zip(months, [f["date"][:4] for f in flows], strict=True))) == (
        n_flows
    )
    assert "benchmark_80/20" in table[0]
    # lots of both ETFs, reinvested dividends included
    assert {t["symbol"] for t in trades} == {"SPY", "AGG"}


async def test_every_result_route_of_an_emptied_portfolio_answers(
    embedded_server: EmbeddedServer,
) -> None:
    """Withdrawals that empty the portfolio leave zero equity for the rest of the
    run: no route may divide by it into a 500 or a non-JSON number."""
    body = {
        "name": "withdrawing too much",
        "allocation": {"SPY": 0.5, "AGG": 0.5},
        "start_date": "2015-01-01",
        "end_date": "2016-12-31",
        "initial_capital": 10_000,
        "cash_flows": {"amount": -2_000, "frequency": "monthly"},
    }
    user = embedded_server.make_user()
    async with embedded_server.client(user) as http:
        created = await http.post("/v1/backtest", json=body)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        watched = await watch_progress(
            embedded_server.ws_url, task_id, token=user.token
        )
        assert watched.statuses[-1] == "completed"
        detail = (await http.get(f"/v1/backtest/{task_id}")).json()
        assert detail["metrics"]["portfolio_depleted"] is True
        base = f"/v1/backtest/{task_id}"
        paths = [
            base, f"{base}/chart", f"{base}/trades", f"{base}/trades?format=csv",
            f"{base}/analysis", f"{base}/positions", f"{base}/holdings",
            f"{base}/holdings?date=2015-02-10", f"{base}/exposure",
            f"{base}/equity?format=json", f"{base}/equity?format=csv",
            f"{base}/equity?format=parquet", f"{base}/report",
        ]  # fmt: skip
        for path in paths:
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text[:300])
        holdings = (await http.get(f"{base}/holdings")).json()
    assert holdings["equity"] == 0.0
    assert holdings["holdings"] == []
    assert holdings["cash_weight"] is None  # no weight of nothing
