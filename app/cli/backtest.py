"""``python -m app.cli backtest``: run one backtest in this process and print
metrics."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.output import fail, iso_date, metric_rows

if TYPE_CHECKING:  # imported inside the command: `--help` stays fast
    from app.backtests.schemas import BacktestRequest
    from app.engine.backtest import BacktestResult
    from app.engine.config import BacktestConfig


def _iso_date(value: str | dt.date) -> dt.date:
    """``YYYY-MM-DD`` only: dates are read and shown as ISO dates."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        msg = f"{value!r} is not a date: expected YYYY-MM-DD, e.g. 2024-01-31"
        raise typer.BadParameter(msg) from None


_DATE = {"parser": _iso_date, "metavar": "YYYY-MM-DD"}


def _load_filter(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"cannot read filter file {path}: {exc}", field="filter_criteria")
    if not isinstance(loaded, dict):
        fail(f"filter file {path} must contain a JSON object", field="filter_criteria")
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
            fail(f"--param takes NAME=NUMBER, got {pair!r}")
        params[name] = int(number) if number.is_integer() else number
    return params


def run(
    strategy_id: Annotated[
        int | None, typer.Option(help="Predefined strategy id.")
    ] = None,
    start: Annotated[dt.date, typer.Option(help="First day.", **_DATE)] = dt.date(
        2015, 1, 1
    ),
    end: Annotated[dt.date, typer.Option(help="Last day.", **_DATE)] = dt.date(
        2019, 12, 31
    ),
    capital: Annotated[float, typer.Option(help="Initial capital in $.")] = 100_000.0,
    rebalancing: Annotated[
        str, typer.Option(help="daily|weekly|monthly|quarterly")
    ] = "monthly",
    commission: Annotated[
        float, typer.Option(help="Commission, a fraction of notional (0.001 = 0.1%).")
    ] = 0.001,
    slippage: Annotated[
        float, typer.Option(help="Slippage, a fraction of price (0.0005 = 0.05%).")
    ] = 0.0005,
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
    universe: Annotated[
        str | None,
        typer.Option(
            help="sp500_pit|all; default as the API: sp500_pit for a "
            "whole-universe run on the bundled data, else all."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Run a backtest on the bundled data (or --dataset) and print its metrics.

    The options are checked as POST /v1/backtest checks its body, with the same
    messages."""
    request = _request({
        "strategy_id": strategy_id, "start_date": start, "end_date": end,
        "initial_capital": capital, "rebalancing": rebalancing,
        "commission": commission, "slippage": slippage, "execution": execution,
        "dividends": not no_dividends, "benchmark": benchmark,
        "symbols": [s for s in symbols.split(",") if s.strip()] if symbols else None,
        "strategy_params": _parse_params(param or []) or None,
        "filter_criteria": _load_filter(filter_file), "dataset": dataset,
        "universe": universe,
    })  # fmt: skip
    config = request.to_config()
    result = _run_checked(config, quiet=as_json)
    if as_json:
        typer.echo(json.dumps(_summary(result), allow_nan=False))
    else:
        _print_table(result)


def _request(fields: dict[str, Any]) -> BacktestRequest:
    """The API's request model over the options; its errors as the API words them."""
    from pydantic import ValidationError  # noqa: PLC0415 - keeps --help light

    from app.backtests.schemas import BacktestRequest  # noqa: PLC0415

    try:
        return BacktestRequest.model_validate(
            {k: v for k, v in fields.items() if v is not None}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(first["msg"], field=".".join(str(p) for p in first["loc"]))


def _run_checked(config: BacktestConfig, *, quiet: bool) -> BacktestResult:
    """The dataset's checks of the API (its field names), then the run."""
    from app.backtests.service import api_field  # noqa: PLC0415
    from app.core.config import get_settings  # noqa: PLC0415
    from app.data.membership import membership_mask_for  # noqa: PLC0415
    from app.data.store import load_dataset  # noqa: PLC0415
    from app.engine.backtest import check_config  # noqa: PLC0415
    from app.engine.errors import EngineError, InvalidInputError  # noqa: PLC0415

    settings = get_settings()
    try:
        data = load_dataset(config.dataset, datasets_dir=settings.resolved_datasets_dir)
        membership = (
            membership_mask_for(data) if config.universe == "sp500_pit" else None
        )
        check_config(config, data, membership=membership)
    except InvalidInputError as exc:
        fail(exc.message, field=api_field(exc.field))
    try:
        return _run_with_progress(config, data, membership, quiet=quiet)
    except EngineError as exc:
        fail(str(exc), code=1)


def _run_with_progress(
    config: BacktestConfig, data: Any, membership: Any, *, quiet: bool
) -> BacktestResult:
    from app.engine.backtest import run_backtest  # noqa: PLC0415

    if quiet or not sys.stderr.isatty():
        return run_backtest(config, data, membership=membership)
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("backtest", total=1.0)

        def on_progress(fraction: float, day: dt.date, fills: int) -> None:
            bar.update(
                task, completed=fraction, description=f"{iso_date(day)} · {fills} fills"
            )

        return run_backtest(
            config, data, membership=membership, on_progress=on_progress
        )


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
            "universe": c.universe,
        },
    }


def _print_table(result: BacktestResult) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    c = result.config
    title = f"Backtest {iso_date(c.start_date)} → {iso_date(c.end_date)}"
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, shown in metric_rows(result.metrics):
        table.add_row(label, shown)
    Console().print(table)
    typer.echo(f"{len(result.trades)} trades, {len(result.fills)} fills")
