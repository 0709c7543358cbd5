"""The ``python -m app.cli`` command tree: one sub-command group per domain."""

from __future__ import annotations

import typer

from app.cli import backtest, data, sweep, users

app = typer.Typer(
    help="Backtesting service command line.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data", help="List, inspect and import price datasets.")
app.add_typer(users.app, name="users", help="Manage user accounts.")
app.command(name="backtest", help="Run a backtest from the command line.")(backtest.run)
app.command(name="sweep", help="Run a parameter sweep from the command line.")(
    sweep.run
)
