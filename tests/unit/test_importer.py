"""Importing user price files: validation messages, atomicity, round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.data import dataset_io, importer
from app.data.importer import import_dataset
from app.data.store import load_dataset
from app.engine.errors import DataError, InvalidInputError

HEADER = "date,symbol,open,high,low,close,volume,adj_close"
GOOD_ROWS = [
    "2022-01-03,AAA,10.0,11.0,9.5,10.5,1000,10.25",
    "2022-01-04,AAA,10.5,11.25,10.0,11.0,1500,10.75",
    "2022-01-03,BBB,50.125,51.0,49.0,50.5,700,50.5",
    "2022-01-05,BBB,50.5,52.0,50.0,51.875,800,51.875",
]


def _write_csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _with_row(index: int, row: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[index] = row
    return rows


def _import(path: Path, datasets_dir: Path, name: str = "mine") -> None:
    import_dataset(path, name=name, datasets_dir=datasets_dir)


BAD_ROWS = [
    # (data row index to replace, replacement, expected line, column, message part)
    (1, "2022-01-32,AAA,10.5,11.25,10.0,11.0,1500,10.75", 3, "date", "not a date"),
    (1, "04/01/2022,AAA,10.5,11.25,10.0,11.0,1500,10.75", 3, "date", "YYYY-MM-DD"),
    (2, "2022-01-03,BBB,abc,51.0,49.0,50.5,700,50.5", 4, "open", "not a number"),
    (2, "2022-01-03,BBB,50.1,51.0,49.0,,700,50.5", 4, "close", "missing"),
    (2, "2022-01-03,BBB,50.1,51.0,49.0,NaN,700,50.5", 4, "close", "missing"),
    (0, "2022-01-03,AAA,10.0,11.0,9.5,10.5,1000,0", 2, "adj_close", "positive"),
    (0, "2022-01-03,AAA,-1,11.0,9.5,10.5,1000,10.25", 2, "open", "positive"),
    (3, "2022-01-05,BBB,50.5,52.0,50.0,51.875,-5,51.875", 5, "volume", "between 0"),
    (3, "2022-01-05,BBB,50.5,49.0,50.0,49.5,800,51.875", 5, "high", "below low"),
    (3, "2022-01-05,BBB,53.0,52.0,50.0,51.875,800,51.875", 5, "open", "outside"),
    (3, "2022-01-05,BBB,50.5,52.0,50.0,49.0,800,51.875", 5, "close", "outside"),
    (1, "2022-01-04,A A,10.5,11.25,10.0,11.0,1500,10.75", 3, "symbol", "symbol"),
    (1, "2022-01-04,,10.5,11.25,10.0,11.0,1500,10.75", 3, "symbol", "symbol"),
]


@pytest.mark.parametrize(("index", "row", "line", "column", "text"), BAD_ROWS)
def test_import_dataset_bad_row_names_line_and_column(
    tmp_path: Path, index: int, row: str, line: int, column: str, text: str
) -> None:
    path = _write_csv(tmp_path, _with_row(index, row))
    with pytest.raises(DataError, match=text) as info:
        _import(path, tmp_path / "ds")
    assert info.value.field == f"row {line}, column {column}"
    assert f"line {line}, column {column}:" in info.value.message


def test_import_dataset_duplicate_names_both_lines(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, [*GOOD_ROWS, GOOD_ROWS[0]])
    with pytest.raises(DataError, match=r"line 6, column date: duplicate") as info:
        _import(path, tmp_path / "ds")
    assert "also at line 2" in info.value.message
    assert info.value.field == "row 6, column date"


def test_import_dataset_missing_columns_lists_them(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, ["2022-01-03,AAA,10.5,1000"], "date,symbol,close,vol")
    with pytest.raises(DataError, match="missing required column") as info:
        _import(path, tmp_path / "ds")
    message = info.value.message
    assert "open, high, low, volume" in message
    assert "found date, symbol, close, vol" in message
    assert info.value.field == "row 1, column open"


def test_import_dataset_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty") as info:
        _import(path, tmp_path / "ds")
    assert info.value.field == "file"


def test_import_dataset_header_only(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, [])
    with pytest.raises(DataError, match="no data rows"):
        _import(path, tmp_path / "ds")


def test_import_dataset_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    rows = [GOOD_ROWS[0], "", GOOD_ROWS[1].replace("11.25", "x")]
    with pytest.raises(DataError) as info:
        _import(_write_csv(tmp_path, rows), tmp_path / "ds")
    assert info.value.field == "row 4, column high"


def test_import_dataset_collects_many_problems(tmp_path: Path) -> None:
    rows = [f"2022-02-{d:02d},AAA,1,1,1,x,1,1" for d in range(1, 29)]
    with pytest.raises(DataError, match="28 problem") as info:
        _import(_write_csv(tmp_path, rows), tmp_path / "ds")
    assert "first 20" in info.value.message
    assert info.value.message.count("column close") == importer.MAX_PROBLEMS


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a/b", "..", "x" * 65, "sp500"])
def test_import_dataset_bad_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        _import(_write_csv(tmp_path, GOOD_ROWS), tmp_path / "ds", name=name)
    assert info.value.field == "name"


def test_import_dataset_existing_name_needs_replace(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, GOOD_ROWS)
    _import(path, tmp_path / "ds")
    with pytest.raises(InvalidInputError, match="already exists"):
        _import(path, tmp_path / "ds")
    info = import_dataset(
        _write_csv(tmp_path, GOOD_ROWS[:2]),
        name="mine",
        datasets_dir=tmp_path / "ds",
        replace=True,
    )
    assert info.n_rows == 2
    assert load_dataset("mine", datasets_dir=tmp_path / "ds").symbols == ("AAA",)


def test_import_dataset_failure_leaves_nothing(tmp_path: Path) -> None:
    datasets_dir = tmp_path / "ds"
    datasets_dir.mkdir()
    bad = _write_csv(tmp_path, _with_row(0, "2022-01-03,AAA,x,11,9.5,10.5,1,1"))
    with pytest.raises(DataError):
        _import(bad, datasets_dir)
    assert list(datasets_dir.iterdir()) == []


def test_import_dataset_failed_replace_keeps_old(tmp_path: Path) -> None:
    _import(_write_csv(tmp_path, GOOD_ROWS), tmp_path / "ds")
    bad = _write_csv(tmp_path, _with_row(0, "2022-01-03,AAA,x,11,9.5,10.5,1,1"))
    with pytest.raises(DataError):
        import_dataset(bad, name="mine", datasets_dir=tmp_path / "ds", replace=True)
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["mine"]
    assert load_dataset("mine", datasets_dir=tmp_path / "ds").n_symbols == 2


def test_import_dataset_write_error_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(dataset_io, "write_symbols", explode)
    with pytest.raises(OSError, match="disk full"):
        _import(_write_csv(tmp_path, GOOD_ROWS), tmp_path / "ds")
    assert list((tmp_path / "ds").iterdir()) == []


def test_import_dataset_too_many_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    with pytest.raises(DataError, match="more than 3 rows"):
        _import(_write_csv(tmp_path, GOOD_ROWS), tmp_path / "ds")


def test_import_dataset_round_trip_equals_input(tmp_path: Path) -> None:
    info = import_dataset(
        _write_csv(tmp_path, GOOD_ROWS), name="mine", datasets_dir=tmp_path / "ds"
    )
    data = load_dataset("mine", datasets_dir=tmp_path / "ds")
    source = pd.read_csv(tmp_path / "prices.csv", parse_dates=["date"])
    assert (info.n_rows, info.n_symbols) == (4, 2)
    for _, bar in source.iterrows():
        row = data.row_of(np.datetime64(bar["date"].date()))
        col = data.column_of[bar["symbol"]]
        for c in ("open", "high", "low", "close", "volume", "adj_close"):
            assert getattr(data, c)[row, col] == bar[c]
    assert np.isnan(data.close).sum() == 2  # AAA on 01-05, BBB on 01-04


def test_import_dataset_without_adj_close_uses_close(tmp_path: Path) -> None:
    rows = [r.rsplit(",", 1)[0] for r in GOOD_ROWS]
    _import(_write_csv(tmp_path, rows, HEADER.rsplit(",", 1)[0]), tmp_path / "ds")
    data = load_dataset("mine", datasets_dir=tmp_path / "ds")
    assert np.array_equal(data.adj_close, data.close, equal_nan=True)
    assert not data.dividends_per_share.any()


def test_import_dataset_symbol_info_columns(tmp_path: Path) -> None:
    rows = [f"{r},Alpha Corp,Tech,stock" for r in GOOD_ROWS[:2]]
    rows += [f"{r},Beta Fund,,ETF" for r in GOOD_ROWS[2:]]
    _import(_write_csv(tmp_path, rows, HEADER + ",name,sector,type"), tmp_path / "ds")
    data = load_dataset("mine", datasets_dir=tmp_path / "ds")
    assert [(i.name, i.sector, i.type) for i in data.info] == [
        ("Alpha Corp", "Tech", "stock"),
        ("Beta Fund", "", "etf"),
    ]
    assert data.benchmarks == ("BBB",)


def test_import_dataset_bad_type_names_line(tmp_path: Path) -> None:
    rows = [f"{r},bond" for r in GOOD_ROWS]
    with pytest.raises(DataError, match="'stock' or 'etf'") as info:
        _import(_write_csv(tmp_path, rows, HEADER + ",type"), tmp_path / "ds")
    assert info.value.field == "row 2, column type"


def _write_parquet(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "prices.parquet"
    frame.to_parquet(path, index=False)
    return path


def _good_frame() -> pd.DataFrame:
    frame = pd.DataFrame([r.split(",") for r in GOOD_ROWS], columns=HEADER.split(","))
    for c in ("open", "high", "low", "close", "adj_close"):
        frame[c] = frame[c].astype(float)
    frame["volume"] = frame["volume"].astype(int)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_import_dataset_parquet_round_trip(tmp_path: Path) -> None:
    _import(_write_parquet(tmp_path, _good_frame()), tmp_path / "ds")
    data = load_dataset("mine", datasets_dir=tmp_path / "ds")
    assert data.close[0, 0] == 10.5
    assert data.adj_close[-1, 1] == 51.875


def test_import_dataset_parquet_row_is_zero_based(tmp_path: Path) -> None:
    frame = _good_frame()
    frame.loc[2, "high"] = 1.0
    with pytest.raises(DataError, match=r"row 2, column high: high 1\.0") as info:
        _import(_write_parquet(tmp_path, frame), tmp_path / "ds")
    assert info.value.field == "row 2, column high"


def test_import_dataset_parquet_too_many_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    with pytest.raises(DataError, match="more than 3 rows") as info:
        _import(_write_parquet(tmp_path, _good_frame()), tmp_path / "ds")
    assert info.value.field == "file"
