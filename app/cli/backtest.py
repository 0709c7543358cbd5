"""``python -m app.cli backtest``: run one backtest in this process and print
metrics."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from app.core.config import get_settings
from app.data.store import load_dataset
from app.engine.backtest import BacktestResult, run_backtest
from app.engine.config import BacktestConfig
from app.engine.errors import EngineError


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load_filter(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"cannot read filter file {path}: {exc}")
    if not isinstance(loaded, dict):
        _fail(f"filter file {path} must contain a JSON object")
    return loaded


def _parse_params(pairs: list[str]) -> dict[str, float]:
    params: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number):
            _fail(f"--param takes NAME=NUMBER, got {pair!r}")
        params[name] = int(number) if number.is_integer() else number
    return params


def run(
    strategy_id: Annotated[
        int | None, typer.Option(help="Predefined strategy id.")
    ] = None,
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"])] = dt.datetime(
        2015, 1, 1
    ),
    end: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"])] = dt.datetime(
        2019, 12, 31
    ),
    capital: Annotated[float, typer.Option(help="Initial capital.")] = 100_000.0,
    rebalancing: Annotated[
        str, typer.Option(help="daily|weekly|monthly|quarterly")
    ] = "monthly",
    commission: Annotated[
        float, typer.Option(help="Commission rate of notional.")
    ] = 0.001,
    slippage: Annotated[float, typer.Option(help="Slippage rate.")] = 0.0005,
    benchmark: Annotated[
        str | None, typer.Option(help="Benchmark symbol, e.g. SPY.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated universe.")
    ] = None,
    filter_file: Annotated[
        Path | None, typer.Option("--filter", help="JSON file with filter_criteria.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="Strategy parameter NAME=VALUE (repeatable)."),
    ] = None,
    execution: Annotated[str, typer.Option(help="next_open|close")] = "next_open",
    no_dividends: Annotated[bool, typer.Option("--no-dividends")] = False,
    dataset: Annotated[str | None, typer.Option(help="Imported dataset name.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Run a backtest on the bundled data (or --dataset) and print its metrics."""
    config = BacktestConfig(
        start_date=start.date(),
        end_date=end.date(),
        initial_capital=capital,
        rebalancing=rebalancing,  # type: ignore[arg-type]  # validated by the engine
        commission_rate=commission,
        slippage_rate=slippage,
        execution=execution,  # type: ignore[arg-type]
        dividends=not no_dividends,
        benchmark=benchmark,
        symbols=tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
        if symbols
        else None,
        strategy_id=strategy_id,
        strategy_params=_parse_params(param or []),
        filter_criteria=_load_filter(filter_file),
        dataset=dataset,
    )
    settings = get_settings()
    try:
        data = load_dataset(config.dataset, datasets_dir=settings.resolved_datasets_dir)
        result = _run_with_progress(config, data, quiet=as_json)
    except EngineError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(_summary(result), allow_nan=False))
    else:
        _print_table(result)


def _run_with_progress(
    config: BacktestConfig, data: Any, *, quiet: bool
) -> BacktestResult:
    if quiet or not sys.stderr.isatty():
        return run_backtest(config, data)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("backtest", total=1.0)

        def on_progress(fraction: float, day: dt.date, fills: int) -> None:
            bar.update(task, completed=fraction, description=f"{day} · {fills} fills")

        return run_backtest(config, data, on_progress=on_progress)


def _summary(result: BacktestResult) -> dict[str, Any]:
    c = result.config
    return {
        "metrics": result.metrics,
        "trades_count": len(result.trades),
        "final_equity": result.final_equity,
        "config": {
            "strategy_id": c.strategy_id,
            "strategy_params": dict(c.strategy_params),
            "filter_criteria": c.filter_criteria,
            "symbols": list(c.symbols) if c.symbols else None,
            "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(),
            "initial_capital": c.initial_capital,
            "rebalancing": c.rebalancing,
            "commission": c.commission_rate,
            "slippage": c.slippage_rate,
            "execution": c.execution,
            "dividends": c.dividends,
            "benchmark": c.benchmark,
            "dataset": c.dataset,
        },
    }


def _print_table(result: BacktestResult) -> None:
    table = Table(title="Backtest metrics", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        if value is None:
            shown = "—"
        elif isinstance(value, float):
            shown = f"{value:,.4f}"
        else:
            shown = str(value)
        table.add_row(key, shown)
    Console().print(table)
    typer.echo(f"{len(result.trades)} trades, {len(result.fills)} fills")
