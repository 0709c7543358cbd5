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
from tests.browser.test_web_app import login_ui, painted_pixels

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


def test_rolling_and_sector_exposure_charts_draw_the_stored_series(
    page: Any, api: Api, done: tuple[Account, str], screenshots: Path
) -> None:
    account, task_id = done
    rolling = api.get(account, f"/v1/backtest/{task_id}/analysis").json()["rolling"]
    exposure = api.get(
        account, f"/v1/backtest/{task_id}/exposure", max_points=500
    ).json()  # as the web app asks
    assert rolling["dates"] and exposure["sector_weights"]
    login_ui(page, account, f"backtest/{task_id}")
    for key in ("sharpe", "volatility", "beta"):
        chart = f"#rolling-{key}"
        page.wait_for_selector(f"{chart} canvas")
        assert page.get_attribute(chart, "data-points") == str(len(rolling["dates"]))
        assert painted_pixels(page, chart) > 500, key
    page.wait_for_selector("#exposure-chart canvas")
    sectors = len(exposure["sector_weights"])
    assert page.get_attribute("#exposure-chart", "data-sectors") == str(sectors)
    assert page.get_attribute("#exposure-chart", "data-series-count") == str(sectors)
    assert page.get_attribute("#exposure-chart", "data-points") == str(
        len(exposure["dates"])
    )
    assert painted_pixels(page, "#exposure-chart") > 5000  # filled bands, not lines
    # the legend names every sector the exposure endpoint reports
    legend = page.locator("#exposure-chart .u-legend").inner_text()
    assert all(name in legend for name in exposure["sector_weights"])
    page.locator("#analysis-rolling").screenshot(path=screenshots / "22-rolling.png")
    page.locator("#exposure").screenshot(path=screenshots / "23-exposure.png")


def _clipped_total_return(rows: list[dict[str, Any]], start: str, end: str) -> float:
    inside = [r["equity"] for r in rows if start <= r["date"] <= end]
    return float(inside[-1] / inside[0] - 1.0)


def test_compare_aligns_runs_of_different_periods(
    page: Any, api: Api, done: tuple[Account, str], screenshots: Path
) -> None:
    account, early = done  # 2016-2019
    late = api.submit(
        account,
        name="Momentum later",
        strategy_id=2,
        start_date="2018-01-01",
        end_date="2021-12-31",
    )
    assert api.wait_terminal(account, late)["status"] == "completed"
    series = {
        i: api.get(account, f"/v1/backtest/{i}/equity", format="json").json()
        for i in (early, late)
    }
    start = max(rows[0]["date"] for rows in series.values())
    end = min(rows[-1]["date"] for rows in series.values())
    login_ui(page, account)
    page.goto(f"/#/compare?ids={early},{late}")
    page.wait_for_selector("#compare-metrics tr[data-metric='total_return'] td")
    note = page.locator("#compare-period-note").inner_text()
    assert "different periods" in note and start in note and end in note
    assert page.is_checked("#compare-align")
    periods = page.locator("#compare-metrics td.period").all_inner_texts()
    assert all(start in p and end in p for p in periods)
    cells = page.locator("#compare-metrics tr[data-metric='total_return'] td")
    for n, task_id in enumerate((early, late)):
        shown = float(cells.nth(n).get_attribute("data-value"))
        want = _clipped_total_return(series[task_id], start, end)
        assert shown == pytest.approx(want, rel=1e-12)
    # a best value only on rows recomputed over the common period
    best_rows = page.eval_on_selector_all(
        "#compare-metrics tr:has(td.best)",
        "rows => rows.map(r => r.dataset.comparable)",
    )
    assert best_rows and set(best_rows) == {"true"}
    for unranked in ("win_rate", "benchmark_total_return", "benchmark_cagr"):
        # win rate covers each run's own period; the benchmark's return describes
        # the yardstick, not the run, so neither is ever marked best
        sel = f"#compare-metrics tr[data-metric='{unranked}'] td.best"
        assert page.locator(sel).count() == 0, unranked
    assert page.get_attribute("#compare-chart", "data-period") == f"{start}..{end}"
    page.screenshot(path=screenshots / "24-compare-aligned.png", full_page=True)

    page.uncheck("#compare-align")  # each run's own period: nothing is ranked
    page.wait_for_selector("#compare-period-note:has-text('no best value')")
    assert page.locator("#compare-metrics td.best").count() == 0
    periods = page.locator("#compare-metrics td.period").all_inner_texts()
    assert periods[0] != periods[1]
    assert page.get_attribute("#compare-chart", "data-period") == "own"


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
