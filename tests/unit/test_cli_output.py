"""The command line's formatting (app/cli/output.py): the web app's conventions,
the API's error messages, and a ``--help`` that imports no heavy framework."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import output
from app.cli.main import app
from app.cli.users import TierChoice
from app.core.security import Tier

REPO = Path(__file__).resolve().parents[2]
METRICS_JS = REPO / "app" / "web" / "js" / "metrics.js"
JS_KIND = {
    "pctSigned": "pct_signed",
    "pct": "pct",
    "ratio": "ratio",
    "int": "int",
    "days": "days",
    "money": "money",
}
# (typer itself imports pydantic for sub-command help, so pydantic is not listed)
HEAVY = ("pandas", "numpy", "numba", "fastapi", "sqlalchemy", "celery", "alembic")
runner = CliRunner()


def _web_metrics() -> list[tuple[str, str, str]]:
    row = r'^\s*\["(\w+)", "([^"]+)", "(\w+)", (?:"\w+"|null), "'
    rows = re.findall(row, METRICS_JS.read_text(), flags=re.MULTILINE)
    assert len(rows) >= 20, "metrics.js rows not found"
    return [(key, label, JS_KIND[kind]) for key, label, kind in rows]


def test_output_metrics_match_the_web_app_labels_kinds_and_order() -> None:
    web = _web_metrics()
    cli = [(key, label, kind) for key, (label, kind) in output.METRICS.items()]
    assert cli == web


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("total_return", 2.193, "+219.30%"),
        ("total_return", -0.0968, "-9.68%"),
        ("total_return", 0.0, "0.00%"),
        ("max_drawdown", -0.2949, "-29.49%"),
        ("win_rate", 0.6077, "60.77%"),
        ("sharpe_ratio", 1.23456, "1.23"),
        ("total_trades", 216, "216"),
        ("max_drawdown_duration_days", 1240, "1,240 days"),
        ("final_equity", 161627.4, "$161,627"),
        ("final_equity", -1234.5, "-$1,235"),
        ("turnover", 4.3015, "430.15%"),
        ("cagr", None, "—"),
        ("cagr", float("nan"), "—"),
        ("some_new_metric", 0.123456, "0.1235"),
    ],
)
def test_format_metric_follows_the_web_convention(
    key: str, value: float | None, shown: str
) -> None:
    assert output.format_metric(key, value) == shown


def test_money_cents_below_a_thousand_and_iso_dates() -> None:
    assert output.money(12.5) == "$12.50"
    assert output.money(1000) == "$1,000"
    assert output.iso_date(dt.datetime(2015, 1, 1, 0, 0)) == "2015-01-01"
    assert output.iso_date(dt.date(2019, 12, 31)) == "2019-12-31"
    assert output.iso_date(None) == "—"


def test_metric_rows_skip_nested_objects_and_use_labels() -> None:
    rows = output.metric_rows(
        {"cagr": 0.1, "data_coverage": {"share": 0.7}, "total_return": 0.5}
    )
    assert rows == [("Total return", "+50.00%"), ("CAGR", "+10.00%")]


def test_error_line_uses_the_api_message_and_names_the_option() -> None:
    line = output.error_line(
        "Value error, end_date must be after start_date", field="body.end_date"
    )
    assert line == "error: end_date must be after start_date (--end)"
    nested = output.error_line("bad", field="filter_criteria.filters[0].window")
    assert nested == "error: bad (--filter)"
    assert output.error_line("plain") == "error: plain"


def test_tier_choices_equal_the_service_tiers() -> None:
    assert [t.value for t in TierChoice] == [t.value for t in Tier]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--strategy-id", "2", "--start", "2019-01-01", "--end", "2018-01-01"],
            "error: end_date must be after start_date (--end)",
        ),
        (
            ["--strategy-id", "2", "--capital", "10"],
            "error: Input should be greater than or equal to 1000 (--capital)",
        ),
        (
            ["--strategy-id", "99"],
            "error: unknown strategy_id 99; valid ids: ",
        ),
    ],
)
def test_cli_backtest_errors_are_the_api_messages(
    args: list[str], expected: str
) -> None:
    result = runner.invoke(app, ["backtest", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_backtest_help_shows_iso_default_dates() -> None:
    result = runner.invoke(app, ["backtest", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "2015-01-01" in result.stdout
    assert "00:00:00" not in result.stdout
    assert "YYYY-MM-DD" in result.stdout


_PROBE = """
import json, sys
from app.cli.main import app
try:
    app(sys.argv[1:], prog_name="python -m app.cli")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["backtest", "--help"], ["data", "--help"], ["users", "--help"]],
)
def test_cli_help_imports_no_heavy_framework(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "Usage" in proc.stdout
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == []


_JS_FORMAT = """
import { formatMetric, METRICS } from "./app/web/js/metrics.js";
const values = JSON.parse(process.argv[1]);
const out = {};
for (const { key } of METRICS) out[key] = values.map((v) => formatMetric(key, v));
console.log(JSON.stringify(out));
"""
_SAMPLES = [0.0, 2.193, -0.0968, 0.61234, 1234.5, -1234.5, 161627.4, 999.5, 216, None]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_cli_and_web_app_format_every_metric_identically() -> None:
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", _JS_FORMAT, json.dumps(_SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    web = json.loads(proc.stdout)
    cli = {k: [output.format_metric(k, v) for v in _SAMPLES] for k in output.METRICS}
    assert cli == web


def test_cli_users_create_errors_are_the_api_messages_one_per_line() -> None:
    result = runner.invoke(
        app, ["users", "create", "--username", "x", "--password", "short"]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: String should have at least 3 characters (--username)",
        "error: String should have at least 8 characters (--password)",
    ]
