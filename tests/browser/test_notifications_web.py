"""The notification screens in Chromium against the real embedded server: "Save as
template" on the new-backtest form (and a taken name refused in the form and on the
result page), the webhooks screen (create with the secret shown once, rotate,
deliveries, delete) and the schedules screen (create from a template with cron and
time zone, next run shown, pause / resume, delete). Running a template from the
list and saving from a result: ``test_share_link_revoke_and_save_as_template`` in
``test_web_app``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Account, Api, ConsoleLog
from tests.browser.test_web_app import HTTP_ERROR_IN_CONSOLE, login_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("notify")


def _templates(api: Api, account: Account) -> list[dict[str, Any]]:
    return list(api.get(account, "/v1/templates").json())


def test_save_the_form_as_a_template_and_a_taken_name_is_refused(
    page: Any, api: Api, account: Account, console: ConsoleLog
) -> None:
    console.allow(HTTP_ERROR_IN_CONSOLE.format(409))
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Strategy", exact=True).select_option(label="Momentum")
    page.once("dialog", lambda dialog: dialog.accept("From the form"))
    page.get_by_role("button", name="Save as template").click()
    page.wait_for_selector("#form-template-note:has-text('Saved as template')")
    (saved,) = [t for t in _templates(api, account) if t["name"] == "From the form"]
    assert saved["config"]["strategy_id"] == 2  # what the form would submit
    assert "name" not in saved["config"]

    page.once("dialog", lambda dialog: dialog.accept("From the form"))
    page.get_by_role("button", name="Save as template").click()
    summary = page.locator("#form-errors")
    summary.locator("text=already have a template named").wait_for()
    assert "not saved" in summary.inner_text()
    assert [t["name"] for t in _templates(api, account)].count("From the form") == 1
    assert "#/new" in page.url  # nothing was submitted


def test_a_taken_name_is_refused_on_the_result_page(
    page: Any, api: Api, account: Account, console: ConsoleLog
) -> None:
    console.allow(HTTP_ERROR_IN_CONSOLE.format(409))
    task_id = api.submit(account, name="for a template", strategy_id=3)
    assert api.wait_terminal(account, task_id)["status"] == "completed"
    login_ui(page, account, f"backtest/{task_id}")
    for expected in ("Saved as template", "already have a template named"):
        page.once("dialog", lambda dialog: dialog.accept("From the result"))
        page.get_by_role("button", name="Save as template").click()
        page.wait_for_selector(f"#template-note:has-text('{expected}')")
    names = [t["name"] for t in _templates(api, account)]
    assert names.count("From the result") == 1


def test_webhooks_screen_creates_lists_rotates_and_deletes(
    page: Any, api: Api, account: Account
) -> None:
    login_ui(page, account, "webhooks")
    page.wait_for_selector("#webhook-form")
    page.locator("#webhook-url").fill("http://127.0.0.1:9/hooks")
    page.get_by_label("schedule.refused").check()
    page.locator("#webhook-description").fill("from the browser")
    page.get_by_role("button", name="Create webhook").click()
    secret = page.locator("#webhook-secret")
    secret.wait_for()
    first = secret.input_value()
    assert first.startswith("whsec_")

    (hook,) = api.get(account, "/v1/webhooks").json()
    assert "secret" not in hook  # the list never shows it
    assert set(hook["events"]) == {
        "backtest.completed",
        "backtest.failed",
        "schedule.refused",
    }
    row = page.locator(f"tr[data-webhook-id='{hook['id']}']")
    assert "http://127.0.0.1:9/hooks" in row.inner_text()
    assert "schedule.refused" in row.inner_text()

    row.get_by_role("button", name="Deliveries").click()
    page.get_by_text("No deliveries yet.").wait_for()

    row.get_by_role("button", name="Rotate secret").click()
    page.locator("dialog [data-confirm]").click()
    page.wait_for_function(
        "s => document.querySelector('#webhook-secret').value !== s", arg=first
    )
    assert secret.input_value().startswith("whsec_")

    row.get_by_role("button", name="Delete").click()
    page.locator("dialog [data-confirm]").click()
    row.wait_for(state="detached")
    assert api.get(account, "/v1/webhooks").json() == []


def test_schedules_screen_creates_from_a_template_pauses_and_deletes(
    page: Any, api: Api, account: Account
) -> None:
    created = api.client.post(
        "/v1/templates",
        json={
            "name": "Nightly momentum",
            "config": {
                "strategy_id": 2,
                "start_date": "2016-01-01",
                "end_date": "2019-12-31",
            },
        },
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    login_ui(page, account, "schedules")
    page.wait_for_selector("#schedule-form")
    page.locator("#schedule-template").select_option(label="Nightly momentum")
    page.locator("#schedule-cron").fill("30 6 * * 1-5")
    page.locator("#schedule-timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create schedule").click()
    row = page.locator("#schedules-table tbody tr[data-schedule-id]")
    row.wait_for()

    (schedule,) = api.get(account, "/v1/schedules").json()
    assert schedule["cron"] == "30 6 * * 1-5"
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["template_id"] == created.json()["id"]
    text = row.inner_text()
    assert "Nightly momentum" in text and "active" in text
    assert row.locator(".next-run").inner_text().strip() not in {"", "—"}

    row.get_by_role("button", name="Pause Nightly momentum").click()
    row.get_by_role("button", name="Resume Nightly momentum").wait_for()
    assert api.get(account, "/v1/schedules").json()[0]["status"] == "paused"
    row.get_by_role("button", name="Resume Nightly momentum").click()
    row.get_by_role("button", name="Pause Nightly momentum").wait_for()
    assert api.get(account, "/v1/schedules").json()[0]["status"] == "active"

    row.get_by_role("button", name="Delete schedule of Nightly momentum").click()
    page.locator("dialog [data-confirm]").click()
    page.get_by_text("No schedules yet.").wait_for()
    assert api.get(account, "/v1/schedules").json() == []
