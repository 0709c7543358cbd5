"""`python -m app.cli data ...`: list, inspect and import price datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.output import error_line, iso_date, money

if TYPE_CHECKING:  # the heavy imports happen inside the commands (`--help` is fast)
    from app.engine.errors import EngineError

app = typer.Typer(no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(error_line(message), err=True)
    return typer.Exit(code=1)


def _one_line(exc: EngineError) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines).replace(": | ", ": ")


@app.command("list")
def list_command() -> None:
    """Show the bundled and imported datasets."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from app.core.config import get_settings  # noqa: PLC0415
    from app.data.store import list_datasets  # noqa: PLC0415
    from app.engine.errors import EngineError  # noqa: PLC0415

    settings = get_settings()
    try:
        infos = list_datasets(
            settings.resolved_datasets_dir, bundled_dir=settings.bundled_dataset_dir
        )
    except EngineError as exc:
        raise _fail(_one_line(exc)) from None
    table = Table("name", "source", "symbols", "first date", "last date", "rows")
    for i in infos:
        table.add_row(
            i.name, i.source, f"{i.n_symbols:,}", iso_date(i.first_date),
            iso_date(i.last_date), f"{i.n_rows:,}",
        )  # fmt: skip
    Console().print(table)


@app.command("show")
def show(
    symbol: Annotated[str, typer.Argument(help="Ticker, e.g. AAPL or BRK.B")],
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name (default: the bundled sp500)")
    ] = None,
) -> None:
    """Show the coverage of one symbol: name, sector, dates, sessions, last close."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from app.core.config import get_settings  # noqa: PLC0415
    from app.data.store import load_dataset, symbol_coverage  # noqa: PLC0415
    from app.engine.errors import EngineError  # noqa: PLC0415

    settings = get_settings()
    try:
        data = load_dataset(
            dataset,
            datasets_dir=settings.resolved_datasets_dir,
            bundled_dir=settings.bundled_dataset_dir,
        )
    except EngineError as exc:
        raise _fail(_one_line(exc)) from None
    by_symbol = {c.symbol.upper(): c for c in symbol_coverage(data)}
    cov = by_symbol.get(symbol.strip().upper())
    if cov is None:
        raise _fail(f"symbol {symbol!r} is not in dataset {data.name!r}")
    table = Table("field", "value", title=f"{cov.symbol} ({data.name})")
    rows = [
        ("name", cov.name or "-"),
        ("sector", cov.sector or "-"),
        ("type", cov.type),
        ("first date", iso_date(cov.first_date)),
        ("last date", iso_date(cov.last_date)),
        ("days", f"{cov.n_days:,}"),
        ("last close", money(cov.last_close, 2)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet, long format (date,symbol,OHLCV)")
    ],
    name: Annotated[str, typer.Option(help="Dataset name: [a-z0-9][a-z0-9_-]{0,63}")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an existing dataset")
    ] = False,
) -> None:
    """Validate FILE and store it as a named dataset."""
    from app.core.config import get_settings  # noqa: PLC0415
    from app.data.importer import import_dataset  # noqa: PLC0415
    from app.engine.errors import EngineError  # noqa: PLC0415

    settings = get_settings()
    try:
        info = import_dataset(
            file,
            name=name,
            datasets_dir=settings.resolved_datasets_dir,
            replace=replace,
        )
    except EngineError as exc:
        raise _fail(_one_line(exc)) from None
    typer.echo(
        f"imported {info.name!r}: {info.n_rows:,} rows, {info.n_symbols} symbols, "
        f"{iso_date(info.first_date)} to {iso_date(info.last_date)}"
    )
