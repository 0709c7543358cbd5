"""The Sweep page end to end: real server (embedded mode), real engine, headless
Chromium. Every test fails on a console error (``conftest.page``).

The page's numbers are compared with the API's answers for the same sweep, never
with hard-coded values.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api, ConsoleLog
from tests.browser.test_web_app import (
    HTTP_ERROR_IN_CONSOLE,
    login_ui,
    task_id_from_url,
    wait_results,
)

pytestmark = pytest.mark.browser

BASE: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 2},
    "symbols": ["AAPL", "MSFT", "JPM", "XOM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("sweeper")


def sweep_id_from_url(page: Any) -> str:
    match = re.search(r"#/sweep/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def table_indexes(page: Any) -> list[int]:
    return [
        int(i)
        for i in page.eval_on_selector_all(
            "#sweep-results tbody tr[data-index]",
            "els => els.map(e => e.dataset.index)",
        )
    ]


def api_indexes(api: Api, account: Account, sweep_id: str, sort: str) -> list[int]:
    rows = api.get(account, f"/v1/sweeps/{sweep_id}/results", sort=sort, limit=25)
    assert rows.status_code == 200, rows.text
    return [r["index"] for r in rows.json()]


def wait_sorted(page: Any, expected: list[int]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and table_indexes(page) != expected:
        time.sleep(0.05)
    assert table_indexes(page) == expected


def fill_base(page: Any) -> None:
    """Momentum, top 2 of four chosen symbols, 2019."""
    page.get_by_label("Strategy", exact=True).select_option(label="Momentum")
    page.get_by_label("Top N", exact=True).fill("2")
    page.get_by_label("Chosen symbols").check()
    combo = page.get_by_role("combobox", name="Symbols")
    combo.fill("aapl, msft, jpm, xom")
    combo.press("Enter")
    page.get_by_label("Start date").fill("2019-01-01")
    page.get_by_label("End date").fill("2019-12-31")


def fill_grid(page: Any) -> None:
    """lookback 20..60 step 20 × skip {0, 30}: 6 raw, skip 30 ≥ lookback 20 dropped."""
    first = page.locator(".sweep-row").nth(0)
    first.get_by_label("Parameter").select_option("strategy_params.lookback")
    first.get_by_label("Range").check()
    first.get_by_label("Start", exact=True).fill("20")
    first.get_by_label("Stop", exact=True).fill("60")
    first.get_by_label("Step", exact=True).fill("20")
    page.get_by_role("button", name="Add a parameter").click()
    second = page.locator(".sweep-row").nth(1)
    second.get_by_label("Parameter").select_option("strategy_params.skip")
    second.get_by_label("Values", exact=True).fill("0, 30")


def test_submit_a_grid_watch_it_sort_heatmap_overfitting_and_open_a_row(
    page: Any, api: Api, account: Account, screenshots: Path
) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    login_ui(page, account, "sweeps")
    page.wait_for_selector("#sweep-form")
    limits = api.get(account, "/v1/sweeps/limits").json()
    fill_base(page)
    fill_grid(page)
    count = page.locator("#sweep-count")
    cap = f"{limits['max_combinations']:,}"
    assert count.inner_text() == (
        f"6 combinations · the {limits['tier']} tier allows up to {cap} per sweep"
    )
    page.get_by_label("Name (optional)").fill("Lookback x skip")
    page.screenshot(path=screenshots / "20-sweep-form.png", full_page=True)
    page.get_by_role("button", name="Run sweep").click()

    page.wait_for_url(re.compile(r"#/sweep/"))
    sweep_id = sweep_id_from_url(page)
    page.wait_for_selector("#sweep-results tbody tr[data-index]", timeout=120_000)
    assert any(f"/v1/sweeps/{sweep_id}/progress" in url for url in sockets), sockets
    status = api.get(account, f"/v1/sweeps/{sweep_id}").json()
    assert status["status"] == "completed"
    assert (status["combinations"], status["skipped_combinations"]) == (5, 1)
    assert status["request"]["grid"] == {
        "strategy_params.lookback": {"start": 20, "stop": 60, "step": 20},
        "strategy_params.skip": [0, 30],
    }
    assert status["request"]["base"]["symbols"] == BASE["symbols"]

    # The table: best first by the objective, then any column, both ways.
    wait_sorted(page, api_indexes(api, account, sweep_id, "-sharpe_ratio"))
    page.get_by_role("button", name="Volatility").click()
    wait_sorted(page, api_indexes(api, account, sweep_id, "volatility"))
    head = page.locator("#sweep-results th[data-sort-key=volatility]")
    assert head.get_attribute("aria-sort") == "ascending"
    page.get_by_role("button", name="Volatility").click()
    wait_sorted(page, api_indexes(api, account, sweep_id, "-volatility"))
    assert head.get_attribute("aria-sort") == "descending"
    shown = page.locator("#sweep-results tbody tr").first.locator(
        "[data-metric=volatility]"
    )
    top = api.get(
        account, f"/v1/sweeps/{sweep_id}/results", sort="-volatility", limit=1
    ).json()[0]
    assert float(shown.get_attribute("data-value")) == pytest.approx(
        top["metrics"]["volatility"], rel=1e-12
    )
    assert (
        page.locator("#results-range").inner_text() == "Showing 1–5 of 5 combinations"
    )

    # The heatmap: skip (x) by lookback (y), the cells the API's.
    heat = api.get(
        account,
        f"/v1/sweeps/{sweep_id}/heatmap",
        x="strategy_params.skip",
        y="strategy_params.lookback",
        metric="sharpe_ratio",
    ).json()
    page.wait_for_selector("#sweep-heatmap-table")
    cells = page.eval_on_selector_all(
        "#sweep-heatmap-table .hm-cell",
        "els => els.map(e => [Number(e.dataset.index), Number(e.dataset.value)])",
    )
    expected = [
        (i, v)
        for row_i, row_v in zip(heat["indexes"], heat["values"], strict=True)
        for i, v in zip(row_i, row_v, strict=True)
        if i is not None
    ]
    assert [c[0] for c in cells] == [e[0] for e in expected]
    assert [c[1] for c in cells] == pytest.approx([e[1] for e in expected], rel=1e-12)
    assert page.locator("#sweep-heatmap-table td.empty").count() == 1  # 20 x 30

    # The overfitting panel: the API's verdict and figures.
    over = status["overfitting"]
    verdict = page.locator("#overfitting-verdict").inner_text()
    assert over["verdict"] and over["verdict"].lower() in verdict.lower()
    pbo = page.locator("#overfitting [data-figure=pbo]").get_attribute("data-value")
    assert float(pbo) == pytest.approx(over["pbo"], rel=1e-12)
    dsr = page.locator("#overfitting [data-figure=dsr]").get_attribute("data-value")
    assert float(dsr) == pytest.approx(over["dsr"], rel=1e-12)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshots / "21-sweep-results.png", full_page=True)

    # Open a row as a full backtest: its page, with that row's parameters.
    row = page.locator("#sweep-results tbody tr").first
    index = int(row.get_attribute("data-index"))
    row.get_by_role("button", name=f"Open combination {index} as a backtest").click()
    page.wait_for_url(re.compile(r"#/backtest/"))
    wait_results(page)
    config = api.status(account, task_id_from_url(page)).json()["config"]
    params = api.get(
        account, f"/v1/sweeps/{sweep_id}/results", sort="index", limit=10
    ).json()[index]["params"]
    assert config["strategy_params"]["lookback"] == params["strategy_params.lookback"]
    assert config["strategy_params"]["skip"] == params["strategy_params.skip"]

    # History points to the Sweep page, which lists the sweep.
    page.goto("/#/history")
    page.locator("#history-sweeps-link").click()
    page.wait_for_selector("#sweep-form")
    listed = page.locator(f"#sweep-list tr[data-sweep-id='{sweep_id}']")
    listed.wait_for()
    assert "Lookback x skip" in listed.inner_text()


def test_the_cap_and_the_apis_messages_show_on_their_fields(
    page: Any, account: Account, console: ConsoleLog
) -> None:
    console.allow(HTTP_ERROR_IN_CONSOLE.format(400))
    login_ui(page, account, "sweeps")
    page.wait_for_selector("#sweep-form")
    fill_base(page)
    first = page.locator(".sweep-row").nth(0)
    first.get_by_label("Parameter").select_option("strategy_params.lookback")
    first.get_by_label("Range").check()
    first.get_by_label("Start", exact=True).fill("20")
    first.get_by_label("Stop", exact=True).fill("520")
    first.get_by_label("Step", exact=True).fill("1")
    count = page.locator("#sweep-count")
    assert "501 combinations: over the free tier's cap of 100" in count.inner_text()
    page.get_by_role("button", name="Run sweep").click()
    assert "over the free tier's cap" in page.locator("#grid-error").inner_text()

    # Within the cap, but a base the API refuses: its message lands on Top N.
    first.get_by_label("Stop", exact=True).fill("60")
    first.get_by_label("Step", exact=True).fill("20")
    page.get_by_label("Top N", exact=True).fill("0")
    page.get_by_role("button", name="Run sweep").click()
    top_n = page.locator("[data-field='strategy_params.top_n'] .field-error")
    top_n.wait_for(state="visible")
    assert "#/sweeps" in page.url
    assert (
        page.get_by_label("Top N", exact=True).get_attribute("aria-invalid") == "true"
    )


def test_walk_forward_windows_and_stitched_chart(
    page: Any, api: Api, account: Account
) -> None:
    body = {
        "name": "walk-forward",
        "base": {**BASE, "start_date": "2017-01-01", "end_date": "2019-12-31"},
        "grid": {"strategy_params.lookback": [20, 60]},
        "walk_forward": {"train_months": 12, "test_months": 12},
    }
    created = api.client.post("/v1/sweeps", json=body, headers=account.headers)
    assert created.status_code == 200, created.text
    sweep_id = created.json()["sweep_id"]
    login_ui(page, account, f"sweep/{sweep_id}")
    page.wait_for_selector("#wf-chart canvas", timeout=120_000)
    status = api.get(account, f"/v1/sweeps/{sweep_id}").json()
    windows = status["walk_forward"]["windows"]
    assert page.locator("#wf-windows tbody tr").count() == len(windows) == 2
    first = page.locator("#wf-windows tbody tr").first.inner_text()
    assert (
        windows[0]["test_start"] in first
        and f"#{windows[0]['chosen']['index']}" in first
    )
    chart = api.get(account, f"/v1/sweeps/{sweep_id}/chart").json()
    assert page.locator("#wf-chart").get_attribute("data-points") == str(
        len(chart["equity_curve"])
    )
    # One grid key: no heatmap, a note instead.
    assert page.locator("#sweep-heatmap-table").count() == 0


def test_every_sweep_form_control_has_a_label(page: Any, account: Account) -> None:
    login_ui(page, account, "sweeps")
    page.wait_for_selector("#sweep-form")
    page.get_by_role("button", name="Add a parameter").click()
    page.locator(".sweep-row").nth(1).get_by_label("Range").check()
    page.get_by_label("Walk-forward", exact=False).check()
    unlabeled = page.evaluate(
        """() => [...document.querySelector("#sweep-form")
                .querySelectorAll("input, select, textarea, button")]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length)
                && !el.getAttribute("aria-label")
                && !el.getAttribute("aria-labelledby")
                && !(el.tagName === "BUTTON" && el.textContent.trim()))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabeled == []
    assert page.locator(".sweep-row").count() == 2
    assert page.locator("#wf-train").is_visible()


def test_cancel_a_running_sweep_keeps_its_finished_rows(
    page: Any, api: Api, account: Account
) -> None:
    # 100 combinations, each walked forward over 36 windows: minutes of work at the
    # test server's per-combination delay, so it is still running when cancelled.
    body = {
        "name": "to be cancelled",
        "base": {**BASE, "start_date": "2010-01-01", "end_date": "2019-12-31"},
        "grid": {"strategy_params.lookback": {"start": 30, "stop": 129, "step": 1}},
        "walk_forward": {"train_months": 12, "test_months": 3},
    }
    created = api.client.post("/v1/sweeps", json=body, headers=account.headers)
    assert created.status_code == 200, created.text
    sweep_id = created.json()["sweep_id"]
    login_ui(page, account, f"sweep/{sweep_id}")
    page.wait_for_selector("#sweep-progress")
    assert "of 100" in page.locator("[data-stat=done]").inner_text()
    page.get_by_role("button", name="Cancel sweep").click()
    page.wait_for_selector("#sweep-results", timeout=60_000)
    status = api.get(account, f"/v1/sweeps/{sweep_id}").json()
    assert status["status"] == "cancelled"
    assert "Cancelled after" in page.locator(".alert-warn").first.inner_text()
    assert page.locator("#overfitting").count() == 0
