"""``python -m app.cli sweep request.json``: run a parameter sweep in this process
(the body of ``POST /v1/sweeps``, validated the same way) with a progress bar, then
print the top rows by the objective and the overfitting diagnostics (and the
walk-forward when asked)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import pydantic
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import app.backtests.service  # noqa: F401 - registers the backtest request validator
from app.core.config import get_settings
from app.core.errors import AppError
from app.data.store import load_dataset
from app.engine.errors import EngineError
from app.sweeps import grid, rows, service, walk_forward
from app.sweeps.run import diagnostics
from app.sweeps.schemas import LOWER_IS_BETTER, SweepRequest


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load(path: Path) -> SweepRequest:
    try:
        return SweepRequest.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, pydantic.ValidationError) as exc:
        _fail(f"cannot read a sweep request from {path}: {exc}")


def _prepare(request: SweepRequest, tier: str) -> dict[str, Any]:
    try:
        return asyncio.run(service.prepare(request, tier=tier, settings=get_settings()))
    except AppError as exc:
        fields = "; ".join(
            f"{d.get('field')}: {d.get('message')}" for d in exc.details or []
        )
        _fail(f"{exc.message}" + (f" ({fields})" if fields else ""))


def run(
    request_file: Annotated[
        Path, typer.Argument(help="JSON file with a POST /v1/sweeps body.")
    ],
    top: Annotated[int, typer.Option(help="Rows to print, best first.")] = 10,
    tier: Annotated[
        str, typer.Option(help="Combination cap of this tier.")
    ] = "enterprise",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object.")
    ] = False,
) -> None:
    """Run a sweep on the bundled data (or the base's dataset) and print the best rows
    and the overfitting diagnostics."""
    request = _load(request_file)
    config = _prepare(request, tier)
    combos = grid.valid_combinations(config)
    configs = [grid.engine_config(grid.apply(config["base"], c)) for c in combos]
    try:
        data = load_dataset(
            configs[0].dataset, datasets_dir=get_settings().resolved_datasets_dir
        )
        evaluated = _evaluate(configs, data, quiet=as_json)
        walk = _walk(config, configs, combos, data)
    except EngineError as exc:
        _fail(str(exc))
    objective = config["objective"]
    table = [
        rows.row_values(i, combos[i], e, objective) for i, e in enumerate(evaluated)
    ]
    returns = np.column_stack([e.daily_returns() for e in evaluated])
    overfitting = diagnostics(
        returns,
        objectives=[r["objective"] for r in table],
        objective=objective,
        blocks=config["overfitting_blocks"],
    )
    ranked = _ranked(table, objective)
    summary = {
        "combinations": config["combinations"],
        "skipped_combinations": config["skipped_combinations"],
        "objective": objective,
        "rows": [{k: r[k] for k in ("index", "params", "metrics", "psr")}
                 for r in ranked[:top]],
        "overfitting": overfitting,
        "walk_forward": walk,
    }  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        _print(summary)


def _evaluate(configs: list[Any], data: Any, *, quiet: bool) -> list[rows.Evaluated]:
    def never() -> bool:
        return False

    if quiet or not sys.stderr.isatty():
        return list(rows.evaluate(configs, data, should_cancel=never))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
    )
    out: list[rows.Evaluated] = []
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sweep", total=len(configs))
        for evaluated in rows.evaluate(configs, data, should_cancel=never):
            out.append(evaluated)
            bar.update(task, completed=len(out))
    return out


def _walk(
    config: dict[str, Any], configs: list[Any], combos: list[Any], data: Any
) -> dict[str, Any] | None:
    stored = config.get("walk_forward_windows")
    if not stored:
        return None
    block, _ = walk_forward.run(
        configs,
        [dict(c) for c in combos],
        data,
        spans=walk_forward.parse(stored),
        objective=config["objective"],
        score=rows.score,
        evaluate=lambda cs: [
            e.metrics for e in rows.evaluate(cs, data, should_cancel=lambda: False)
        ],
        should_cancel=lambda: False,
        on_window=lambda k: None,
    )
    return block


def _ranked(table: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        value = rows.score(row["objective"], objective)
        return (value is None, -(value or 0.0), row["index"])

    return sorted(table, key=key)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)


def _print(summary: dict[str, Any]) -> None:
    console = Console()
    objective = summary["objective"]
    direction = "lowest" if objective in LOWER_IS_BETTER else "highest"
    table = Table(title=f"Top rows by {objective} ({direction} first)")
    rows_ = summary["rows"]
    keys = list(rows_[0]["params"]) if rows_ else []
    labels = [k.rsplit(".", 1)[-1] for k in keys]
    for name in ("index", *labels, objective, "total_return", "max_drawdown", "psr"):
        table.add_column(name, justify="right")
    for row in rows_:
        metrics = row["metrics"]
        table.add_row(
            str(row["index"]),
            *(_fmt(row["params"][k]) for k in keys),
            _fmt(metrics.get(objective)),
            _fmt(metrics.get("total_return")),
            _fmt(metrics.get("max_drawdown")),
            _fmt(row["psr"]),
        )
    console.print(table)
    over = summary["overfitting"]
    console.print(
        f"{summary['combinations']} combinations ({summary['skipped_combinations']} "
        f"skipped). Overfitting: PBO {_fmt(over['pbo'])}, DSR {_fmt(over['dsr'])}, "
        f"SR0 {_fmt(over['sr0'])}, λ median {_fmt(over['lambda_median'])} — "
        f"{over['verdict'] or over.get('reason')}"
    )
    walk = summary["walk_forward"]
    if walk is not None:
        oos = walk["oos_metrics"]
        console.print(
            f"Walk-forward: {len(walk['windows'])} windows, out-of-sample "
            f"{objective} {_fmt(oos.get(objective))}, total return "
            f"{_fmt(oos.get('total_return'))}, efficiency {_fmt(walk['efficiency'])}"
        )
