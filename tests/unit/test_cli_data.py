"""`python -m app.cli data ...`: list, show, import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.data import app
from app.core.config import get_settings

runner = CliRunner()

CSV = """date,symbol,open,high,low,close,volume
2021-03-01,XA,10,11,9,10.5,100
2021-03-02,XA,10.5,11,10,10.75,200
"""


@pytest.fixture(autouse=True)
def datasets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "datasets"
    monkeypatch.setenv("DATASETS_DIR", str(target))
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    path.write_text(CSV)
    return path


def test_data_list_shows_bundled() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "sp500" in result.stdout
    assert "bundled" in result.stdout
    assert "2,389,027" in result.stdout


def test_data_show_symbol_coverage() -> None:
    result = runner.invoke(app, ["show", "spy"])
    assert result.exit_code == 0
    for text in ("SPY", "etf", "2005-01-03", "2024-08-26", "4,945", "560.79"):
        assert text in result.stdout


def test_data_show_unknown_symbol_fails() -> None:
    result = runner.invoke(app, ["show", "NOPE"])
    assert result.exit_code == 1
    assert result.stderr == "error: symbol 'NOPE' is not in dataset 'sp500'\n"


def test_data_show_unknown_dataset_fails() -> None:
    result = runner.invoke(app, ["show", "SPY", "--dataset", "missing"])
    assert result.exit_code == 1
    assert "unknown dataset 'missing'; available: sp500" in result.stderr


def test_data_import_then_list_and_show(good_csv: Path) -> None:
    imported = runner.invoke(app, ["import", str(good_csv), "--name", "mine"])
    listed = runner.invoke(app, ["list"])
    shown = runner.invoke(app, ["show", "XA", "--dataset", "mine"])
    assert imported.exit_code == 0
    assert "imported 'mine': 2 rows, 1 symbols" in imported.stdout
    assert "mine" in listed.stdout
    assert "imported" in listed.stdout
    assert shown.exit_code == 0
    assert "10.75" in shown.stdout


def test_data_import_existing_needs_replace(good_csv: Path) -> None:
    runner.invoke(app, ["import", str(good_csv), "--name", "mine"])
    again = runner.invoke(app, ["import", str(good_csv), "--name", "mine"])
    replaced = runner.invoke(
        app, ["import", str(good_csv), "--name", "mine", "--replace"]
    )
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    assert replaced.exit_code == 0


def test_data_import_invalid_file_one_line_error(
    tmp_path: Path, datasets_dir: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("10.75", "abc").replace(",9,", ",12,"))
    result = runner.invoke(app, ["import", str(bad), "--name", "mine"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "line 2, column high" in result.stderr
    assert "line 3, column close" in result.stderr
    assert "Traceback" not in result.output
    assert not datasets_dir.exists() or not any(datasets_dir.iterdir())


def test_data_import_missing_file_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(tmp_path / "x.csv"), "--name", "m"])
    assert result.exit_code == 1
    assert "file not found" in result.stderr
