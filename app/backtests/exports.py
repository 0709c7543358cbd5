"""Rendering tables for download: CSV (RFC 4180, header row, ISO dates, empty for
null, floats in their shortest round-trip form), Parquet (pyarrow, one typed column
each, dates as ``date32``) and JSON (a list of row objects)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson

ExportFormat = Literal["csv", "parquet", "json"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
}


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return buffer.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def columns_to(fmt: ExportFormat, columns: Mapping[str, Sequence[Any]]) -> bytes:
    """A column table as ``fmt`` (``date`` as a date column)."""
    names = list(columns)
    if fmt == "csv":
        return csv_bytes(names, zip(*columns.values(), strict=True))
    if fmt == "json":
        table = zip(*columns.values(), strict=True)
        rows = [dict(zip(names, r, strict=True)) for r in table]
        return orjson.dumps(rows)
    # pyarrow only when a Parquet export is asked for: not on the API's import path
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    arrays = {
        n: pa.array(v).cast(pa.date32()) if n == "date" else pa.array(v, pa.float64())
        for n, v in columns.items()
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer)
    return buffer.getvalue()


def disposition(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}
