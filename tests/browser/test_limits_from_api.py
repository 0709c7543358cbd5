"""The new-backtest form takes its bounds from the API (GET /v1/symbols: ``limits``),
not from constants of its own: with the real server the form shows the published
limits, and with a /v1/symbols answer whose limits are changed (routed) the form's
hints, input bounds and local checks change with them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import Account, Api
from tests.browser.test_web_app import login_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("limits")


def _field_hint(page: Any, name: str) -> str:
    return str(page.locator(f"[data-field='{name}'] .hint").inner_text())


def test_form_bounds_are_the_published_limits(
    page: Any, api: Api, account: Account
) -> None:
    limits = api.get(account, "/v1/symbols").json()["limits"]
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")

    assert f"span ≤ {limits['max_span_years']} years" in _field_hint(page, "end_date")
    capital = page.get_by_label("Initial capital ($)")
    assert float(capital.get_attribute("min")) == limits["min_capital"]
    assert float(capital.get_attribute("max")) == limits["max_capital"]
    for label, key in [
        ("Commission (%)", "max_commission"),
        ("Slippage (%)", "max_slippage"),
        ("Risk-free rate (%/year)", "max_risk_free_rate"),
    ]:
        bound = float(page.get_by_label(label).get_attribute("max"))
        assert bound == pytest.approx(limits[key] * 100), label


def test_changed_limits_change_the_form(page: Any, account: Account) -> None:
    changed = {"max_span_years": 3, "max_commission": 0.02, "max_capital": 50_000}
    posts: list[str] = []

    def tighter(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        body["limits"].update(changed)
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/v1/symbols*", tighter)
    page.on(
        "request",
        lambda r: (
            posts.append(r.url)
            if r.method == "POST" and "/v1/backtest" in r.url
            else None
        ),
    )
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")

    assert "span ≤ 3 years" in _field_hint(page, "end_date")
    assert "50,000" in _field_hint(page, "initial_capital")
    assert page.get_by_label("Commission (%)").get_attribute("max") == "2"

    page.get_by_label("Commission (%)").fill("3")
    page.get_by_role("button", name="Run backtest").click()
    error = page.locator("[data-field='commission'] .field-error")
    error.wait_for()
    assert error.inner_text() == "Commission must be between 0% and 2%."
    assert posts == []  # refused locally: nothing was submitted
