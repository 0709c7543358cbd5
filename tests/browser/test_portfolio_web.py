"""Investor portfolios in the web app (issue 16): the allocation builder, cash flows,
dividend reinvestment and several benchmarks on the new-backtest form; the result page
with every benchmark's curve and relative metrics and the flows marked on the chart.

Real server (embedded mode), real engine, headless Chromium (``conftest.page`` fails a
test on any console error). What the page shows is checked against the API's answer for
the same run, never against numbers written here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api, ConsoleLog
from tests.browser.test_web_app import (
    login_ui,
    parse_display,
    task_id_from_url,
)

pytestmark = pytest.mark.browser

START, END = "2016-01-04", "2018-12-31"  # ~750 sessions: the chart keeps every point


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("portfolio")


def request_json(page: Any) -> dict[str, Any]:
    """The request the form would post (its "Show the request as JSON" preview)."""
    text = page.locator("pre[aria-label='Request JSON']").text_content()
    body: dict[str, Any] = json.loads(text)
    return body


def alloc_row(page: Any, index: int) -> tuple[Any, Any]:
    row = page.locator("[data-pane='allocation'] .alloc-row").nth(index)
    return row.locator(".alloc-symbol"), row.locator(".alloc-weight")


def fill_sixty_forty_with_contributions(page: Any) -> None:
    """The form: 60/40 SPY/AGG, monthly rebalancing, 1,000 added each month."""
    page.get_by_label("Fixed allocation").check()
    symbol, weight = alloc_row(page, 0)
    symbol.fill("SPY")
    weight.fill("60")
    page.locator("[data-pane='allocation'] .alloc-add").click()
    symbol, weight = alloc_row(page, 1)
    symbol.fill("AGG")
    weight.fill("40")
    page.get_by_label("Start date").fill(START)
    page.get_by_label("End date").fill(END)
    page.get_by_label("Rebalancing", exact=True).select_option("monthly")
    page.get_by_label("Cash flow ($ per period)").fill("1000")
    page.get_by_label("Frequency").select_option("monthly")
    page.get_by_label("Name (optional)").fill("60/40 with 1,000 a month")


def test_allocation_builder_live_sum_messages_and_request(
    page: Any, account: Account, screenshots: Path
) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Fixed allocation").check()
    assert page.locator("section.card:has(h2:text-is('Universe'))").is_hidden()

    symbol, weight = alloc_row(page, 0)
    symbol.fill("SPY")
    weight.fill("70")
    page.locator("[data-pane='allocation'] .alloc-add").click()
    symbol, weight = alloc_row(page, 1)
    symbol.fill("AGG")
    weight.fill("40")
    total = page.locator("[data-pane='allocation'] .alloc-sum")
    assert total.get_attribute("data-state") == "over"
    assert "110%" in total.inner_text()

    # Refused by the form itself: nothing is posted, the message sits on the builder.
    page.get_by_role("button", name="Run backtest").click()
    error = page.locator(
        "[data-pane='allocation'] [data-field='allocation'] > .field-error"
    )
    error.wait_for()
    assert "add up to 110%" in error.inner_text()
    assert "#/new" in page.url

    alloc_row(page, 0)[1].fill("50")
    assert total.get_attribute("data-state") == "cash"
    assert "10% stays in cash" in total.inner_text()
    alloc_row(page, 0)[1].fill("60")
    assert total.inner_text().startswith("Total 100%")

    page.get_by_label("Cash flow ($ per period)").fill("1000")
    page.get_by_label("Frequency").select_option("quarterly")
    # A flow date outside the backtest's period is refused before posting.
    first_flow = page.get_by_label("First flow (optional)")
    first_flow.fill("2010-01-04")
    page.get_by_role("button", name="Run backtest").click()
    flow_error = page.locator("[data-field='cash_flows.start_date'] .field-error")
    flow_error.wait_for()
    assert "inside the backtest's period" in flow_error.inner_text()
    assert first_flow.get_attribute("aria-invalid") == "true"
    assert "#/new" in page.url
    first_flow.fill("")
    page.get_by_role("button", name="Add a benchmark").click()
    entry = page.locator(".bench-entry").nth(0)
    entry.locator(".bench-kind").select_option("allocation")
    entry.locator(".bench-name").fill("All bonds")
    entry.locator(".alloc-symbol").first.fill("AGG")
    entry.locator(".alloc-weight").first.fill("100")
    page.get_by_role("button", name="Add a benchmark").click()
    page.locator(".bench-entry").nth(1).locator(".bench-symbol").select_option("QQQ")
    # The Benchmark select (SPY by default) and two more: the limit of 3 is reached.
    assert page.get_by_role("button", name="Add a benchmark").is_disabled()

    body = request_json(page)
    assert body["allocation"] == {"SPY": 0.6, "AGG": 0.4}
    assert body["cash_flows"] == {"amount": 1000, "frequency": "quarterly"}
    assert body["reinvest_dividends"] is True
    assert body["benchmarks"] == [
        "SPY",
        {"name": "All bonds", "allocation": {"AGG": 1.0}, "rebalancing": "monthly"},
        "QQQ",
    ]
    for absent in (
        "strategy_id",
        "filter_criteria",
        "symbols",
        "universe",
        "benchmark",
    ):
        assert absent not in body, absent

    page.get_by_label("Reinvest dividends", exact=False).uncheck()
    page.get_by_label("Rebalance band (%)").fill("5")
    body = request_json(page)
    assert body["reinvest_dividends"] is False
    assert body["rebalance_band"] == 0.05
    page.screenshot(path=screenshots / "30-allocation-form.png", full_page=True)


def test_sixty_forty_with_monthly_contributions_from_form_to_results(
    page: Any, api: Api, account: Account, screenshots: Path
) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    fill_sixty_forty_with_contributions(page)
    page.get_by_role("button", name="Add a benchmark").click()
    entry = page.locator(".bench-entry").nth(0)
    entry.locator(".bench-kind").select_option("allocation")
    entry.locator(".bench-name").fill("60/40 quarterly")
    entry.locator(".alloc-symbol").first.fill("SPY")
    entry.locator(".alloc-weight").first.fill("60")
    entry.locator(".alloc-add").click()
    entry.locator(".alloc-symbol").nth(1).fill("AGG")
    entry.locator(".alloc-weight").nth(1).fill("40")
    entry.locator(".bench-rebalancing").select_option("quarterly")
    page.get_by_role("button", name="Run backtest").click()

    page.wait_for_url(re.compile(r"#/backtest/"))
    task_id = task_id_from_url(page)
    status = api.wait_terminal(account, task_id)
    assert status["status"] == "completed", status.get("error")
    page.wait_for_selector("#metric-cards", timeout=60_000)
    page.wait_for_selector("#equity-chart canvas")
    metrics = status["metrics"]
    chart = api.get(account, f"/v1/backtest/{task_id}/chart", max_points=1000).json()

    # The run is the form's: allocation and flows as typed.
    config = status["config"]
    assert config["allocation"] == {"SPY": 0.6, "AGG": 0.4}
    assert config["cash_flows"]["amount"] == 1000
    summary = page.locator("#config-summary")
    summary.wait_for()
    assert "SPY 60%, AGG 40%" in summary.inner_text()

    # Every benchmark's curve on the equity chart, and the contributions marked on it.
    equity = page.locator("#equity-chart")
    assert equity.get_attribute("data-benchmarks") == "2"
    flows = [f for f in chart["flows"] if f["amount"]]
    assert len(flows) >= 30  # about one a month over three years
    assert equity.get_attribute("data-flow-marks") == str(len(flows))
    # strategy, 2 benchmarks, contributions
    assert equity.get_attribute("data-series-count") == "4"

    # The portfolio metrics as the API gives them.
    for key in (
        "final_value",
        "total_contributions",
        "money_weighted_return",
        "rebalance_count",
    ):
        row = page.locator(f"#portfolio-metrics [data-metric='{key}']")
        assert float(row.get_attribute("data-value")) == pytest.approx(metrics[key]), (
            key
        )
        shown = row.locator("dd").inner_text()
        if shown.endswith("%"):
            assert parse_display(shown) == pytest.approx(metrics[key] * 100, abs=0.0051)
        else:
            assert parse_display(shown) == pytest.approx(metrics[key], abs=0.51), key
    assert metrics["total_contributions"] == pytest.approx(
        sum(f["amount"] for f in flows)
    )
    assert page.locator("#portfolio-emptied").count() == 0

    # One row of relative metrics per benchmark, each cell the API's number.
    rows = page.locator("#benchmark-table tbody tr")
    assert rows.count() == len(chart["benchmarks"]) == 2
    for i, bench in enumerate(chart["benchmarks"]):
        assert rows.nth(i).get_attribute("data-benchmark") == bench["name"]
        cells = rows.nth(i).locator("td[data-rel]")
        assert cells.count() >= 8
        for j in range(cells.count()):
            key = cells.nth(j).get_attribute("data-rel")
            raw = cells.nth(j).get_attribute("data-value")
            expected = bench["metrics"].get(key)
            if expected is None:
                assert raw == "" and cells.nth(j).inner_text() == "—", (key, raw)
            else:
                assert float(raw) == pytest.approx(expected, rel=1e-12, abs=1e-12), key
    assert [b["name"] for b in chart["benchmarks"]] == ["SPY", "60/40 quarterly"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshots / "31-allocation-results.png", full_page=True)

    # "Run again with changes" starts from the same portfolio.
    page.get_by_role("link", name="Run again with changes").click()
    page.wait_for_selector("#new-backtest-form")
    again = request_json(page)
    assert again["allocation"] == {"SPY": 0.6, "AGG": 0.4}
    assert again["cash_flows"] == {"amount": 1000, "frequency": "monthly"}
    assert again["benchmarks"][0] == "SPY"
    assert again["benchmarks"][1]["name"] == "60/40 quarterly"
    assert again["benchmarks"][1]["allocation"] == {"SPY": 0.6, "AGG": 0.4}
    assert again["benchmarks"][1]["rebalancing"] == "quarterly"


@pytest.fixture(scope="module")
def depleted(api: Api, account: Account) -> str:
    """A 50/50 run from 10,000 withdrawing 2,000 a month: emptied within months."""
    return api.submit(
        account,
        strategy_id=None,
        allocation={"SPY": 0.5, "AGG": 0.5},
        start_date=START,
        end_date=END,
        initial_capital=10_000,
        cash_flows={"amount": -2_000, "frequency": "monthly"},
        name="Withdrawing too much",
    )


def test_withdrawals_that_empty_the_portfolio_are_marked_and_flagged(
    page: Any, api: Api, account: Account, depleted: str, console: ConsoleLog
) -> None:
    task_id = depleted
    status = api.wait_terminal(account, task_id)
    assert status["status"] == "completed", status.get("error")
    metrics = status["metrics"]
    assert metrics["portfolio_depleted"] is True
    chart = api.get(account, f"/v1/backtest/{task_id}/chart", max_points=1000).json()
    flows = [f for f in chart["flows"] if f["amount"]]
    assert flows and all(f["amount"] < 0 for f in flows)

    login_ui(page, account, f"backtest/{task_id}")
    page.wait_for_selector("#equity-chart canvas")
    notice = page.locator("#portfolio-emptied")
    notice.wait_for()
    day = chart["depleted_on"]
    assert day and day[:4] in notice.inner_text()
    equity = page.locator("#equity-chart")
    assert equity.get_attribute("data-flow-marks") == str(len(flows))
    # strategy, benchmark (SPY), withdrawals
    assert equity.get_attribute("data-series-count") == "3"
    legend = page.locator("#equity-chart .u-legend").inner_text()
    assert "Withdrawals" in legend and "Contributions" not in legend
    row = page.locator("#portfolio-metrics [data-metric='total_withdrawals']")
    raw = row.get_attribute("data-value")
    assert float(raw) == pytest.approx(metrics["total_withdrawals"])
    withdrawn = -sum(f["amount"] for f in flows)
    assert abs(metrics["total_withdrawals"]) == pytest.approx(withdrawn)


def test_holdings_of_an_emptied_portfolio_answer(
    api: Api, account: Account, depleted: str
) -> None:
    assert api.wait_terminal(account, depleted)["status"] == "completed"
    resp = api.get(account, f"/v1/backtest/{depleted}/holdings")
    assert resp.status_code < 500, resp.text
