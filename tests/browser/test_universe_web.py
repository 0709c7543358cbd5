"""The point-in-time universe in the web app: the form's membership choice and the
result page's survivorship-bias note (README "Data and its limits")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("pit")


def _login(page: Any, account: Account, route: str) -> None:
    page.goto(f"/#/login?next={route}")
    page.wait_for_selector("#auth-title")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_selector("#nav:not([hidden])")


def test_form_offers_both_universes_and_the_result_notes_high_bias(
    page: Any, api: Api, account: Account, screenshots: Path
) -> None:
    _login(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    choice = page.get_by_label("Index membership")
    options = choice.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["sp500_pit", "all"]
    # The API's default: point in time for the whole universe, all for a list.
    assert choice.input_value() == "sp500_pit"
    assert "survivorship" in page.locator("#universe-select-hint").inner_text()
    page.get_by_label("Chosen symbols").check()
    assert choice.input_value() == "all"
    page.get_by_label("All stocks").check()
    assert choice.input_value() == "sp500_pit"

    page.get_by_label("Start date").fill("2010-01-01")
    page.get_by_label("End date").fill("2011-12-31")
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_url(re.compile(r"#/backtest/"))
    page.wait_for_selector("#metric-cards", timeout=120_000)

    task_id = re.search(r"#/backtest/([0-9a-f-]{36})", page.url)
    assert task_id
    status = api.status(account, task_id.group(1)).json()
    coverage = status["metrics"]["data_coverage"]
    assert status["config"]["universe"] == "sp500_pit"
    assert coverage["survivorship_bias"] == "high"
    note = page.locator("#coverage-note")
    assert note.is_visible()
    assert note.get_attribute("data-bias") == "high"
    text = note.inner_text()
    assert f"{coverage['share'] * 100:.1f}%" in text
    assert f"{coverage['members_without_prices']} of its" in text
    page.wait_for_selector("#config-summary:has-text('S&P 500 members on each date')")
    page.screenshot(path=screenshots / "12-survivorship-note.png")


def test_result_with_low_bias_has_no_note(
    page: Any, api: Api, account: Account
) -> None:
    task_id = api.submit(
        account, start_date="2023-01-01", end_date="2024-08-26", strategy_id=1
    )
    done = api.wait_terminal(account, task_id)
    assert done["metrics"]["data_coverage"]["survivorship_bias"] == "low"
    _login(page, account, f"backtest/{task_id}")
    page.wait_for_selector("#metric-cards", timeout=120_000)
    assert page.locator("#coverage-note").count() == 0
