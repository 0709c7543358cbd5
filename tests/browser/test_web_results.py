"""The results page's Analysis and Holdings cards and its downloads (report, daily
series), against the real server in embedded mode and headless Chromium."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Account, Api
from tests.browser.test_web_app import login_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def done(api: Api) -> tuple[Account, str]:
    account = api.register("analysis")
    task_id = api.submit(account, name="Momentum for analysis", strategy_id=2)
    assert api.wait_terminal(account, task_id)["status"] == "completed"
    return account, task_id


def test_analysis_card_shows_the_stored_analysis(
    page: Any, api: Api, done: tuple[Account, str], screenshots: Path
) -> None:
    account, task_id = done
    analysis = api.get(account, f"/v1/backtest/{task_id}/analysis").json()
    login_ui(page, account, f"backtest/{task_id}")
    page.wait_for_selector("#analysis-drawdowns tbody tr")
    rows = page.locator("#analysis-drawdowns tbody tr")
    assert rows.count() == len(analysis["drawdowns"])
    first = rows.first.inner_text()
    deepest = analysis["drawdowns"][0]
    assert deepest["peak"] in first and deepest["trough"] in first
    assert f"{abs(deepest['depth']) * 100:.2f}%" in first.replace("−", "-")
    years = page.locator("#analysis-annual tbody tr")
    assert years.count() == len(analysis["annual_returns"])
    psr = page.locator("#analysis-risk [data-stat='psr'] dd").inner_text()
    assert psr == f"{analysis['psr'] * 100:.2f}%"
    page.locator("#analysis").screenshot(path=screenshots / "20-analysis.png")


def test_holdings_card_shows_the_book_of_a_chosen_close(
    page: Any, api: Api, done: tuple[Account, str], screenshots: Path
) -> None:
    account, task_id = done
    path = f"/v1/backtest/{task_id}/holdings"
    login_ui(page, account, f"backtest/{task_id}")
    page.wait_for_selector("#holdings-table tbody tr[data-symbol]")
    latest = api.get(account, path).json()
    assert page.input_value("#holdings-date") == latest["date"]

    page.fill("#holdings-date", "2017-07-04")  # a holiday: the close before
    page.click("#show-holdings")
    page.wait_for_selector("#holdings-summary:has-text('Close of 2017-07-03')")
    expected = api.get(account, path, date="2017-07-04").json()
    symbols = page.eval_on_selector_all(
        "#holdings-table tbody tr[data-symbol]:not(.cash-row)",
        "rows => rows.map(r => r.dataset.symbol)",
    )
    assert symbols == [h["symbol"] for h in expected["holdings"]]
    values = page.eval_on_selector_all(
        "#holdings-table tbody tr", "rows => rows.map(r => Number(r.dataset.value))"
    )
    # every holding's value plus the cash row is that close's equity
    assert sum(values) == pytest.approx(expected["equity"], rel=1e-9)
    page.locator("#holdings").screenshot(path=screenshots / "21-holdings.png")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_report_and_daily_series_download(
    page: Any, api: Api, done: tuple[Account, str]
) -> None:
    account, task_id = done
    login_ui(page, account, f"backtest/{task_id}")
    page.wait_for_selector("#analysis-drawdowns")
    with page.expect_download() as info:
        page.click("#download-report")
    download = info.value
    assert download.suggested_filename == f"report-{task_id}.html"
    report = Path(download.path()).read_text()
    assert not re.search(r"(?i)https?://", report)
    tags = _Tags()
    tags.feed(report)
    assert "svg" in tags.tags and "script" not in tags.tags
    assert "Momentum for analysis" in report
    page.wait_for_selector("#download-note:has-text('downloaded')")

    page.select_option("#export-format", "csv")
    with page.expect_download() as info:
        page.click("#export-equity")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == [
        "date", "equity", "return", "drawdown", "cash", "net_flow", "dividends",
        "benchmark_SPY",
    ]  # fmt: skip
    series = api.get(account, f"/v1/backtest/{task_id}/equity", format="json").json()
    assert len(rows) - 1 == len(series)
    assert float(rows[-1][1]) == series[-1]["equity"]
