"""The web app end to end: real server (embedded mode), real engine, headless Chromium.

Every test fails on a console error or uncaught exception (see ``conftest.page``).
Screenshots of the main screens go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api, ConsoleLog

pytestmark = pytest.mark.browser

HTTP_ERROR_IN_CONSOLE = (
    r"Failed to load resource: the server responded with a status of {}"
)


# --- helpers ------------------------------------------------------------------------


def login_ui(page: Any, account: Account, route: str = "") -> None:
    """Log in with the keyboard only: the username field has focus on arrival."""
    page.goto(f"/#/login{'?next=' + route if route else ''}")
    page.wait_for_selector("#auth-title")
    page.keyboard.type(account.username)
    page.keyboard.press("Tab")
    page.keyboard.type(account.password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")


def task_id_from_url(page: Any) -> str:
    match = re.search(r"#/backtest/([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def wait_results(page: Any, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector("#metric-cards", timeout=timeout_ms)
    page.wait_for_selector("#equity-chart canvas")
    page.wait_for_selector("#monthly-heatmap")


def painted_pixels(page: Any, selector: str) -> int:
    """Non-transparent pixels on the chart's canvas (uPlot draws series there)."""
    return int(
        page.evaluate(
            """(sel) => {
                const c = document.querySelector(sel + " canvas");
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return n;
            }""",
            selector,
        )
    )


def parse_display(text: str) -> float:
    cleaned = re.sub(r"[^0-9.\-]", "", text.replace("−", "-"))
    return float(cleaned)


def assert_metric_matches(key: str, card: Any, expected: float | None) -> None:
    raw = card.get_attribute("data-value")
    shown = card.locator(".metric-value, dd").first.inner_text().strip()
    if expected is None:
        assert raw == "" and shown == "—", (key, raw, shown)
        return
    assert float(raw) == pytest.approx(expected, rel=1e-12, abs=1e-12), key
    value = parse_display(shown)
    if shown.endswith("%"):
        assert value == pytest.approx(expected * 100, abs=0.0051), (key, shown)
    elif key in {"total_trades", "max_drawdown_duration_days"}:
        assert value == expected, (key, shown)
    elif shown.startswith("$") or key == "avg_holding_days":  # whole dollars, days
        assert value == pytest.approx(expected, abs=0.51), (key, shown)
    else:
        assert value == pytest.approx(expected, abs=0.0051), (key, shown)


def table_symbols(page: Any) -> list[str]:
    symbols: list[str] = page.eval_on_selector_all(
        "#trades-table tbody tr[data-symbol]", "rows => rows.map(r => r.dataset.symbol)"
    )
    return symbols


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def account(api: Api) -> Account:
    return api.register("web")


@pytest.fixture(scope="module")
def finished(api: Api, account: Account) -> list[dict[str, Any]]:
    """Two completed backtests of the module's account, made through the API."""
    ids = [
        api.submit(account, name="Momentum 2016-2019", strategy_id=2),
        api.submit(account, name="Trend 2016-2019", strategy_id=3),
    ]
    results = [api.wait_terminal(account, i) for i in ids]
    assert [r["status"] for r in results] == ["completed", "completed"], results
    return results


# --- the main journey ---------------------------------------------------------------


def test_web_app_register_submit_watch_and_read_results(
    page: Any, api: Api, screenshots: Path
) -> None:
    page.goto("/")
    page.wait_for_selector("#auth-title")
    page.screenshot(path=screenshots / "01-login.png")

    page.get_by_role("link", name="Create account").click()
    page.wait_for_selector("#auth-title:has-text('Create your account')")
    username = f"journey_{int(time.time() * 1000) % 10**9}"
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Create account").click()

    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Strategy", exact=True).select_option(label="Momentum")
    page.get_by_label("Top N", exact=True).fill("15")
    page.get_by_label("Start date").fill("2015-01-01")
    page.get_by_label("End date").fill("2019-12-31")
    page.get_by_label("Name (optional)").fill("Momentum top 15, 2015-2019")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshots / "02-new-backtest.png", full_page=True)
    page.get_by_role("button", name="Run backtest").click()

    progress = page.locator("#progress")
    progress.wait_for()
    seen: list[int] = []
    shot_running = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and page.locator("#metric-cards").count() == 0:
        value = progress.get_attribute("aria-valuenow") if progress.count() else None
        if value is not None:
            seen.append(int(value))
            if not shot_running and 20 <= int(value) <= 80:
                page.screenshot(path=screenshots / "03-running.png")
                shot_running = True
        time.sleep(0.03)
    assert any(0 < v < 100 for v in seen), f"no intermediate progress: {seen[-20:]}"
    assert seen == sorted(seen), "progress went backwards"
    assert seen[-1] == 100, seen[-20:]

    wait_results(page)
    task_id = task_id_from_url(page)
    owner = api.login(username)
    status = api.status(owner, task_id).json()
    assert status["status"] == "completed"
    assert page.locator("#result-title").inner_text() == "Momentum top 15, 2015-2019"

    cards = page.locator("[data-metric]")
    assert cards.count() >= 24
    for i in range(cards.count()):
        card = cards.nth(i)
        key = card.get_attribute("data-metric")
        assert_metric_matches(key, card, status["metrics"][key])

    equity = page.locator("#equity-chart")
    assert equity.get_attribute("data-series-count") == "2"  # strategy + benchmark
    assert page.locator("#drawdown-chart").get_attribute("data-series-count") == "1"
    assert painted_pixels(page, "#equity-chart") > 2000
    assert painted_pixels(page, "#drawdown-chart") > 1000
    chart = api.get(owner, f"/v1/backtest/{task_id}/chart", max_points=1000).json()
    assert equity.get_attribute("data-points") == str(len(chart["equity_curve"]))
    years = sorted({k[:4] for k in chart["monthly_returns"]})
    assert page.locator("#monthly-heatmap tbody tr").count() == len(years)

    page.get_by_role("button", name="Log", exact=True).click()
    assert equity.get_attribute("data-scale") == "log"
    assert painted_pixels(page, "#equity-chart") > 2000
    page.get_by_role("button", name="Linear").click()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshots / "04-results.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(
        "() => document.querySelector('#equity-chart canvas').clientWidth < 400"
    )
    page.screenshot(path=screenshots / "07-results-narrow.png", full_page=True)
    page.screenshot(path=screenshots / "08-results-narrow-top.png")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, "the page scrolls sideways at phone width"


# --- results: trades ----------------------------------------------------------------


def test_trades_paginate_filter_sort_and_export(
    page: Any, api: Api, account: Account, finished: list[dict[str, Any]]
) -> None:
    task_id = str(finished[0]["task_id"])
    trades_path = f"/v1/backtest/{task_id}/trades"
    total = int(api.get(account, trades_path, limit=1).headers["X-Total-Count"])
    assert total > 500, "the export must page through several API pages"

    login_ui(page, account, f"backtest/{task_id}")
    wait_results(page)
    page.wait_for_selector("#trades-table tbody tr[data-symbol]")
    assert page.locator("#trades-table tbody tr").count() == 25
    assert f"Showing 1–25 of {total:,} lots" in page.inner_text("#trades-range")
    first_page = table_symbols(page)
    expected_second = [
        t["symbol"] for t in api.get(account, trades_path, limit=25, offset=25).json()
    ]

    page.click("#trades-next")
    page.wait_for_selector("#trades-range:has-text('Showing 26–50')")
    assert table_symbols(page) == expected_second
    page.click("#trades-prev")
    page.wait_for_selector("#trades-range:has-text('Showing 1–25')")
    assert table_symbols(page) == first_page

    symbol = expected_second[0]
    page.get_by_label("Symbol", exact=True).fill(symbol.lower())
    page.click("#apply-trade-filters")
    symbol_total = int(
        api.get(account, trades_path, symbol=symbol, limit=1).headers["X-Total-Count"]
    )
    assert symbol_total > 0
    page.wait_for_selector(f"#trades-range:has-text('of {symbol_total:,} lots')")
    assert set(table_symbols(page)) == {symbol}

    page.click("#reset-trade-filters")
    page.get_by_label("From", exact=True).fill("2018-01-01")
    page.get_by_label("To", exact=True).fill("2018-06-30")
    page.click("#apply-trade-filters")
    dated = api.get(
        account, trades_path, start_date="2018-01-01", end_date="2018-06-30", limit=500
    )
    page.wait_for_selector(
        f"#trades-range:has-text('of {int(dated.headers['X-Total-Count']):,} lots')"
    )
    assert table_symbols(page) == [t["symbol"] for t in dated.json()[:25]]

    page.click("#reset-trade-filters")
    page.get_by_role("button", name="P&L", exact=True).click()
    worst = api.get(account, trades_path, sort="pnl", limit=1).json()[0]
    page.wait_for_selector("th[aria-sort='ascending'] button[data-sort='pnl']")
    page.wait_for_function(
        "(s) => document.querySelector('#trades-table tbody tr')?.dataset.symbol === s",
        arg=worst["symbol"],
    )

    with page.expect_download() as download_info:
        page.click("#download-trades")
    text = Path(download_info.value.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["symbol", "entry_date", "entry_price"]
    assert len(rows) - 1 == total

    with page.expect_download() as download_info:
        page.click("#download-equity")
    equity_rows = list(
        csv.reader(io.StringIO(Path(download_info.value.path()).read_text()))
    )
    assert equity_rows[0] == ["date", "equity", "benchmark", "drawdown"]
    assert len(equity_rows) > 900  # full resolution: every session of 2016-2019


# --- history and compare --------------------------------------------------------------


def test_history_lists_backtests_and_compares_two(
    page: Any, account: Account, finished: list[dict[str, Any]], screenshots: Path
) -> None:
    ids = [str(r["task_id"]) for r in finished]
    login_ui(page, account, "history")
    for task_id in ids:
        page.wait_for_selector(f"#history-table tr[data-task-id='{task_id}']")
    row = page.locator(f"#history-table tr[data-task-id='{ids[0]}']")
    assert "Momentum 2016-2019" in row.inner_text()
    assert row.get_attribute("data-status") == "completed"

    page.select_option("#history-status", "failed")
    page.wait_for_selector("#history-table td.empty-state")
    assert "status=failed" in page.url
    page.select_option("#history-status", "")
    page.wait_for_selector(f"#history-table tr[data-task-id='{ids[0]}']")
    page.select_option("#history-sort", "-total_return")
    best, worst = (
        str(r["task_id"])
        for r in sorted(finished, key=lambda r: -r["metrics"]["total_return"])
    )
    page.wait_for_function(
        """([best, worst]) => {
            const ids = [...document.querySelectorAll("#history-table tr")]
                .map(r => r.dataset.taskId).filter(Boolean);
            return ids.includes(best) && ids.indexOf(best) < ids.indexOf(worst);
        }""",
        arg=[best, worst],
    )
    assert "sort=-total_return" in page.url
    page.screenshot(path=screenshots / "05-history.png", full_page=True)

    for task_id in ids:
        page.check(f"#history-table tr[data-task-id='{task_id}'] input[type=checkbox]")
    page.click("#compare-selected")
    page.wait_for_selector("#compare-chart canvas")
    assert page.locator("#compare-chart").get_attribute("data-series-count") == "2"
    assert painted_pixels(page, "#compare-chart") > 2000
    headers = page.locator("#compare-metrics thead th")
    assert headers.count() == 3
    sharpe = page.locator("#compare-metrics tr[data-metric='sharpe_ratio'] td")
    for i, result in enumerate(finished):
        assert float(sharpe.nth(i).get_attribute("data-value")) == pytest.approx(
            result["metrics"]["sharpe_ratio"]
        )
    page.screenshot(path=screenshots / "06-compare.png", full_page=True)


# --- cancel, delete -------------------------------------------------------------------


def test_cancel_a_running_backtest(page: Any, api: Api, account: Account) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Start date").fill("2010-01-01")
    page.get_by_label("End date").fill("2019-12-31")
    page.get_by_label("Rebalancing").select_option("daily")
    page.get_by_label("Name (optional)").fill("To be cancelled")
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_selector("#cancel-backtest")
    task_id = task_id_from_url(page)
    page.click("#cancel-backtest")

    page.wait_for_selector("#terminal-state [data-status='cancelled']", timeout=30_000)
    assert "cancelled" in page.inner_text("#terminal-state")
    assert api.status(account, task_id).json()["status"] == "cancelled"


def test_cancel_keeps_the_progress_reached(
    page: Any, api: Api, account: Account
) -> None:
    """Issue 18: after a cancel the bar dropped to 0 % while the text said
    "Progress reached 2 %". Every value the bar shows is recorded in the page."""
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Start date").fill("2010-01-01")
    page.get_by_label("End date").fill("2019-12-31")
    page.get_by_label("Rebalancing").select_option("daily")
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_selector("#progress")
    page.evaluate(
        """() => {
          const bar = document.getElementById("progress");
          window.__shown = [Number(bar.getAttribute("aria-valuenow"))];
          new MutationObserver(() =>
            window.__shown.push(Number(bar.getAttribute("aria-valuenow")))
          ).observe(bar, { attributes: true, attributeFilter: ["aria-valuenow"] });
        }"""
    )
    page.wait_for_function(
        "Number(document.getElementById('progress')"
        ".getAttribute('aria-valuenow')) >= 3",
        timeout=30_000,
    )
    page.click("#cancel-backtest")
    page.wait_for_selector("#terminal-state [data-status='cancelled']", timeout=30_000)

    shown = page.evaluate("window.__shown")
    assert shown == sorted(shown), shown
    reached = re.search(r"Progress reached (\d+)", page.inner_text("#terminal-state"))
    assert reached is not None
    assert int(reached.group(1)) >= max(shown) - 1 >= 2  # rounding, never 0


def test_delete_a_backtest_from_history(page: Any, api: Api, account: Account) -> None:
    task_id = api.submit(account, name="Delete me", strategy_id=3)
    assert api.wait_terminal(account, task_id)["status"] == "completed"
    login_ui(page, account, "history")
    row = page.locator(f"#history-table tr[data-task-id='{task_id}']")
    row.wait_for()
    row.get_by_role("button", name="Delete Delete me").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert api.status(account, task_id).status_code == 404


def test_share_link_revoke_and_save_as_template(
    page: Any, api: Api, account: Account, finished: list[dict[str, Any]]
) -> None:
    task_id = finished[0]["task_id"]
    login_ui(page, account, f"backtest/{task_id}")
    page.get_by_role("button", name="Share link").click()
    url = page.locator("#share-url").input_value()
    assert "/s/" in url
    public = api.client.get(url)
    assert public.status_code == 200 and "noindex" in public.headers["x-robots-tag"]
    assert task_id not in public.text and account.username not in public.text

    page.get_by_role("button", name="Revoke link").click()
    page.wait_for_selector("#share-note:has-text('Link revoked')")
    assert api.client.get(url).status_code == 404

    page.once("dialog", lambda dialog: dialog.accept("From the web app"))
    page.get_by_role("button", name="Save as template").click()
    page.wait_for_selector("#template-note:has-text('Saved as template')")
    saved = api.client.get("/v1/templates", headers=account.headers).json()
    assert [t["name"] for t in saved] == ["From the web app"]
    assert saved[0]["config"]["strategy_id"] == 2

    page.get_by_role("link", name="Templates").click()
    page.get_by_role("button", name="Run From the web app").click()
    page.wait_for_url(re.compile(r".*#/backtest/[0-9a-f-]{36}"))
    ran = api.wait_terminal(account, task_id_from_url(page))
    assert ran["status"] == "completed" and ran["name"] == "From the web app"


# --- failures the page must explain ------------------------------------------------


def test_server_validation_message_appears_next_to_its_field(
    page: Any, account: Account, console: ConsoleLog, screenshots: Path
) -> None:
    console.allow(HTTP_ERROR_IN_CONSOLE.format(400))
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Strategy", exact=True).select_option(label="Momentum")
    top_n = page.get_by_label("Top N", exact=True)
    top_n.fill("0")  # the form has no rule for parameters: the API's message shows
    page.get_by_role("button", name="Run backtest").click()

    error = page.locator("[data-field='strategy_params.top_n'] .field-error")
    error.wait_for()
    assert "top_n must be an integer between 1 and" in error.inner_text()
    assert top_n.get_attribute("aria-invalid") == "true"
    page.screenshot(path=screenshots / "10-validation.png")
    assert "#/new" in page.url

    top_n.fill("20")
    page.get_by_label("Initial capital ($)").fill("500")  # refused by the form itself
    page.get_by_role("button", name="Run backtest").click()
    capital_error = page.locator("[data-field='initial_capital'] .field-error")
    capital_error.wait_for()
    assert capital_error.inner_text().startswith("Initial capital must be between $")
    assert (
        page.locator("[data-field='strategy_params.top_n'] .field-error").inner_text()
        == ""
    )


def test_expired_token_returns_to_login_with_a_message(
    page: Any, account: Account, console: ConsoleLog
) -> None:
    console.allow(HTTP_ERROR_IN_CONSOLE.format(401))
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("backtest.session"));
            s.token = "expired.or.revoked";
            sessionStorage.setItem("backtest.session", JSON.stringify(s));
        }"""
    )
    page.click("#nav a[data-route='history']")
    page.wait_for_selector("#auth-title")
    assert "#/login" in page.url and "next=history" in page.url
    assert "expired" in page.inner_text("#flash")

    page.keyboard.type(account.username)
    page.keyboard.press("Tab")
    page.keyboard.type(account.password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#history-table")


def test_rate_limit_tells_when_the_next_submission_is_possible(
    page: Any, account: Account, console: ConsoleLog
) -> None:
    # The limiter's own numbers are the API's business; here the page's reaction.
    console.allow(HTTP_ERROR_IN_CONSOLE.format(429))

    def limited(route: Any) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        route.fulfill(
            status=429,
            headers={"Retry-After": "90", "Content-Type": "application/json"},
            body='{"error": "RateLimited", "message": "Too many requests"}',
        )

    page.route("**/v1/backtest", limited)
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_role("button", name="Run backtest").click()
    banner = page.locator("#rate-limit")
    banner.wait_for()
    text = banner.inner_text()
    assert re.search(r"at \d\d:\d\d:\d\d \(in 1 min (2\d|30) s\)", text), text
    assert page.locator("#submit-backtest").is_disabled()


def test_progress_reconnects_after_the_socket_drops(
    page: Any, api: Api, account: Account
) -> None:
    attempts: list[str] = []

    def drop_first(ws: Any) -> None:
        attempts.append(ws.url)
        if len(attempts) == 1:
            ws.close(code=3000, reason="dropped by the test")
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/progress\?token="), drop_first)
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_role("button", name="Run backtest").click()
    wait_results(page)
    assert len(attempts) >= 2
    task_id = task_id_from_url(page)
    assert api.status(account, task_id).json()["status"] == "completed"


# --- custom screen, autocomplete, labels ----------------------------------------------


def test_custom_screen_with_autocompleted_symbols(
    page: Any, api: Api, account: Account, screenshots: Path
) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Custom screen").check()
    page.get_by_label("Chosen symbols").check()
    combo = page.get_by_role("combobox", name="Symbols")
    combo.fill("apple")
    page.wait_for_selector("[role=listbox] [role=option][data-symbol='AAPL']")
    combo.press("Enter")
    combo.fill("MSF")
    combo.press("ArrowDown")
    combo.press("Enter")
    combo.fill("jpm, xom")
    combo.press("Enter")
    chips = page.eval_on_selector_all(".chip", "els => els.map(e => e.dataset.symbol)")
    assert chips == ["AAPL", "MSFT", "JPM", "XOM"]

    page.get_by_role("button", name="+ Add filter").click()
    assert page.locator(".rule").count() == 3
    page.get_by_role("button", name="Remove filter 3").click()
    page.get_by_label("Keep top N").fill("2")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshots / "09-custom-screen.png", full_page=True)
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_url(re.compile(r"#/backtest/"))
    task_id = task_id_from_url(page)
    wait_results(page)
    config = api.status(account, task_id).json()["config"]
    assert sorted(config["symbols"]) == ["AAPL", "JPM", "MSFT", "XOM"]
    criteria = config["filter_criteria"]
    assert criteria["top_n"] == 2
    assert [f["factor"] for f in criteria["filters"]] == ["return", "close"]
    assert criteria["filters"][1]["other"] == {"factor": "sma", "window": 200}


def test_every_form_control_has_a_label(page: Any, account: Account) -> None:
    login_ui(page, account, "new")
    page.wait_for_selector("#new-backtest-form")
    page.get_by_label("Custom screen").check()
    page.get_by_label("Chosen symbols").check()
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length)
                && !el.getAttribute("aria-label")
                && !el.getAttribute("aria-labelledby")
                && !(el.tagName === "BUTTON" && el.textContent.trim()))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabeled == []
