"""What a first user tripped over on the form and the result page: local checks in
the user's terms, one unit (percent) and one date format (ISO) on the form, a
custom screen's rules on its result, no duplicated or mislabelled headings, chart
legends with values, and a trade table usable at phone width."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api
from tests.browser.test_web_app import login_ui, wait_results

pytestmark = pytest.mark.browser

SCREEN = {
    "filters": [
        {"factor": "return", "window": 126, "op": ">", "value": 0.05},
        {"factor": "close", "op": ">", "other": {"factor": "sma", "window": 200}},
    ],
    "rank_by": {"factor": "return", "window": 252},
    "ascending": False,
    "top_n": 5,
    "weighting": "equal",
}


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("rough")


@pytest.fixture(scope="module")
def screen_run(api: Api, account: Account) -> str:
    """A completed custom-screen run with many trades."""
    task_id = api.submit(
        account,
        strategy_id=None,
        filter_criteria=SCREEN,
        name="Screen 2016-2019",
        rebalancing="weekly",
    )
    assert api.wait_terminal(account, task_id)["status"] == "completed"
    return task_id


def _posts(page: Any) -> list[str]:
    posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            posts.append(r.url)
            if r.method == "POST" and "/v1/backtest" in r.url
            else None
        ),
    )
    return posts


def _error(page: Any, field: str) -> str:
    return str(page.locator(f"[data-field='{field}'] .field-error").inner_text())


def _request_json(page: Any) -> dict[str, Any]:
    text = page.locator("pre[aria-label='Request JSON']").text_content()
    return dict(json.loads(text))


# --- the form ---------------------------------------------------------------------


def test_form_refuses_out_of_range_capital_locally_in_dollars(
    page: Any, api: Api, account: Account
) -> None:
    limits = api.get(account, "/v1/symbols").json()["limits"]
    posts = _posts(page)
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Initial capital ($)").fill("500")
    page.get_by_role("button", name="Run backtest").click()

    low, high = f"{limits['min_capital']:,.0f}", f"{limits['max_capital']:,.0f}"
    expected = f"Initial capital must be between ${low} and ${high}."
    assert _error(page, "initial_capital") == expected
    assert "Input should be" not in page.locator("#new-backtest-form").inner_text()
    assert posts == []


def test_form_dates_are_iso_and_checked_before_posting(
    page: Any, api: Api, account: Account
) -> None:
    universe = api.get(account, "/v1/symbols").json()
    posts = _posts(page)
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    start, end = page.get_by_label("Start date"), page.get_by_label("End date")
    for box in (start, end):
        assert box.get_attribute("type") == "text"
        assert box.get_attribute("placeholder") == "YYYY-MM-DD"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", box.input_value())
    assert (
        universe["first_date"] in page.locator("[data-field='start_date']").inner_text()
    )
    assert end.input_value() == universe["last_date"]

    start.fill("01/02/2019")
    page.get_by_role("button", name="Run backtest").click()
    assert "YYYY-MM-DD" in _error(page, "start_date")
    start.fill("2019-01-01")
    end.fill("2018-06-30")
    page.get_by_role("button", name="Run backtest").click()
    assert _error(page, "end_date") == "The end date must be after the start date."
    assert _error(page, "start_date") == ""
    assert posts == []


def test_screen_values_are_percent_and_close_has_no_window_box(
    page: Any, account: Account
) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Custom screen").check()
    rules = page.locator(".rule")
    first, second = rules.nth(0), rules.nth(1)

    first.get_by_label("Value").fill("10")
    page.get_by_label("Keep top N").fill("7")  # an input event refreshes the JSON
    sent = _request_json(page)["filter_criteria"]["filters"]
    assert sent[0]["value"] == pytest.approx(0.10)
    assert "%" in first.locator(".rule-error .hint").inner_text()

    assert second.get_by_label("Factor", exact=True).input_value() == "close"
    window = second.get_by_label("Window (days)", exact=True)
    assert window.is_disabled()
    assert not window.is_visible()
    assert "window" not in sent[1]
    second.get_by_label("Factor", exact=True).select_option("return")
    assert window.is_visible() and window.is_enabled()
    assert window.input_value() == "126"
    # Every rate on the form is entered in percent.
    labels = page.locator("#new-backtest-form label").all_inner_texts()
    for name in ("Commission", "Slippage", "Risk-free rate"):
        assert any(t.startswith(name) and "(%" in t for t in labels), name


def test_start_again_from_a_screen_keeps_its_percent_values(
    page: Any, account: Account, screen_run: str
) -> None:
    login_ui(page, account)
    page.goto(f"/#/new?from={screen_run}")
    page.wait_for_selector(".rule")
    value = page.locator(".rule").nth(0).get_by_label("Value")
    assert float(value.input_value()) == pytest.approx(5.0)
    sent = _request_json(page)["filter_criteria"]
    assert sent["filters"][0]["value"] == pytest.approx(SCREEN["filters"][0]["value"])


# --- the result page -------------------------------------------------------------


def test_result_page_of_a_screen(page: Any, account: Account, screen_run: str) -> None:
    login_ui(page, account, f"backtest/{screen_run}")
    wait_results(page)

    rules = page.locator("#config-summary [data-item='rules']")
    rules.wait_for()
    text = rules.inner_text()
    assert "Return (126 d) > 5%" in text
    assert "Close price > Simple moving average (200 d)" in text
    assert "top 5" in text

    sub = page.locator(".page-head .sub").inner_text()
    assert sub.lower().count("completed") == 1, sub
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", sub)

    current = page.locator("#nav a[aria-current='page']")
    assert current.count() == 0

    heads = page.locator("#monthly-heatmap thead th").all_inner_texts()
    assert len(heads) == len(set(heads)) == 14, heads


def test_chart_legends_show_the_last_values_when_idle(
    page: Any, api: Api, account: Account, screen_run: str
) -> None:
    chart = api.get(account, f"/v1/backtest/{screen_run}/chart", max_points=1000)
    last = chart.json()["equity_curve"][-1]
    login_ui(page, account, f"backtest/{screen_run}")
    wait_results(page)
    page.mouse.move(0, 0)
    for selector in ("#equity-chart", "#drawdown-chart"):
        values = page.locator(f"{selector} .u-legend .u-value").all_inner_texts()
        assert values and all(v.strip() not in {"", "—"} for v in values), values
    equity_legend = page.locator("#equity-chart .u-legend").inner_text()
    assert last["date"] in equity_legend
    assert f"${last['equity']:,.0f}" in equity_legend


def test_trade_table_reaches_pnl_at_phone_width(
    page: Any, account: Account, screen_run: str, screenshots: Path
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    login_ui(page, account, f"backtest/{screen_run}")
    wait_results(page)
    page.wait_for_selector("#trades-table tbody tr[data-symbol]")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, "the page scrolls sideways at phone width"
    row = page.locator("#trades-table tbody tr[data-symbol]").first
    pnl = row.locator("td[data-label='P&L']")
    row.scroll_into_view_if_needed()
    box = pnl.bounding_box()
    assert box is not None
    # Reachable without scrolling sideways: the rows reflow into cards.
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert pnl.is_visible()
    assert page.evaluate("() => document.querySelector('.table-wrap').scrollLeft") == 0
    label = pnl.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"P&L"'
    page.screenshot(path=screenshots / "12-trades-phone.png")
