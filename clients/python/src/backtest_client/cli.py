"""``backtest-client``: the service from a terminal, over HTTP.

    backtest-client run --url URL --strategy momentum --top-n 20 \\
        --start 2015-01-01 --end 2019-12-31 --benchmark SPY --watch
    backtest-client history [--status completed] [--limit 50]
    backtest-client trades ID [--csv] [--symbol AAPL]
    backtest-client status ID | cancel ID | strategies

Credentials: ``--token``, or ``--username``/``--password``; else the environment
(``BACKTEST_URL``, ``BACKTEST_TOKEN``, ``BACKTEST_USERNAME``, ``BACKTEST_PASSWORD``).
Exit status: 0 done, 1 the service refused or the backtest failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from backtest_client import _format
from backtest_client.client import (
    DEFAULT_URL,
    ENV_PASSWORD,
    ENV_TOKEN,
    ENV_URL,
    ENV_USERNAME,
    Client,
)
from backtest_client.errors import BacktestClientError, BacktestFailed
from backtest_client.models import Trade

# Shortcuts for the common strategy parameters; --param NAME=VALUE covers the rest.
_PARAM_FLAGS = ("top_n", "lookback", "skip", "window")


def _client(args: argparse.Namespace) -> Client:
    env = os.environ
    username = args.username or env.get(ENV_USERNAME)
    password = args.password or env.get(ENV_PASSWORD)
    token = args.token or env.get(ENV_TOKEN)
    if token and not args.username:
        username = password = None  # an explicit token wins over env credentials
    return Client(
        args.url or env.get(ENV_URL) or DEFAULT_URL,
        token=token,
        username=username,
        password=password,
        max_retries=args.max_retries,
    )


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _params(args: argparse.Namespace) -> dict[str, float] | None:
    params: dict[str, float] = {}
    for name in _PARAM_FLAGS:
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[name.strip()] = _number(value.strip())
        except ValueError:
            raise SystemExit(f"--param {item!r}: {value!r} is not a number") from None
    return params or None


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    filter_criteria = None
    if args.filter:
        with open(args.filter, encoding="utf-8") as handle:
            filter_criteria = json.load(handle)
    with _client(args) as client:
        bt = client.backtests.submit(
            args.strategy, _params(args), start=args.start, end=args.end,
            filter_criteria=filter_criteria,
            symbols=args.symbols.split(",") if args.symbols else None,
            name=args.name, initial_capital=args.capital,
            rebalancing=args.rebalancing, commission=args.commission,
            slippage=args.slippage, execution=args.execution,
            dividends=False if args.no_dividends else None,
            benchmark=args.benchmark, dataset=args.dataset,
        )  # fmt: skip
        if not args.watch:
            out.write(f"{bt.id}\n")
            return 0
        try:
            bt.wait(progress=not args.json)
        except BacktestFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            out.write(json.dumps({"task_id": bt.id, "metrics": bt.metrics}) + "\n")
        else:
            out.write(f"backtest {bt.id}: {bt.status}\n")
            out.write(_format.metrics_table(bt.metrics) + "\n")
    return 0


def _cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        bt = client.backtests.get(args.id)
        out.write(f"backtest {bt.id}: {bt.status} ({bt.progress:.0f}%)\n")
        if bt.state and bt.state.error:
            out.write(f"error: {bt.state.error}\n")
        if bt.state and bt.state.metrics:
            out.write(_format.metrics_table(bt.metrics) + "\n")
    return 0


def _cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        result = client.backtests.get(args.id).cancel()
        out.write(f"backtest {result.task_id}: {result.status} ({result.message})\n")
    return 0


def _cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        items = client.backtests.history(
            status=args.status, sort=args.sort, limit=args.limit
        )
    rows = [
        [
            i.task_id, i.name or "", i.status, i.created_at.strftime("%Y-%m-%d %H:%M"),
            _format.percent(i.total_return, signed=True),
            _format.ratio(i.sharpe_ratio),
        ]
        for i in items
    ]  # fmt: skip
    header = ["task_id", "name", "status", "created", "total return", "sharpe"]
    out.write(_format.table(header, rows, right={4, 5}) + "\n")
    return 0


def _cmd_trades(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        trades = list(
            client.backtests.get(args.id).iter_trades(
                symbol=args.symbol, start_date=args.start_date, end_date=args.end_date
            )
        )
    if args.csv:
        _write_csv(trades, out)
        return 0
    rows = [
        [
            t.symbol, t.entry_date.isoformat(), _format.money(t.entry_price),
            t.exit_date.isoformat() if t.exit_date else "open",
            _format.money(t.exit_price), f"{t.quantity:g}", _format.money(t.pnl),
            _format.percent(t.pnl_percent, signed=True),
        ]
        for t in trades
    ]  # fmt: skip
    header = ["symbol", "entry", "price", "exit", "price", "qty", "P&L", "P&L %"]
    out.write(_format.table(header, rows, right={2, 4, 5, 6, 7}) + "\n")
    out.write(f"{len(trades)} trades\n")
    return 0


def _write_csv(trades: Sequence[Trade], out: TextIO) -> None:
    columns = list(Trade.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for trade in trades:
        writer.writerow(
            {k: ("" if v is None else v) for k, v in trade.to_json().items()}
        )


def _cmd_strategies(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        strategies = client.strategies.list()
    rows = [
        [
            str(s.id), s.name,
            ", ".join(f"{p.name}={p.default:g}" for p in s.parameters) or "—",
        ]
        for s in strategies
    ]  # fmt: skip
    out.write(_format.table(["id", "name", "parameters"], rows) + "\n")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"service URL (env {ENV_URL}; {DEFAULT_URL})")
    parser.add_argument("--token", help=f"bearer token (env {ENV_TOKEN})")
    parser.add_argument("--username", help=f"(env {ENV_USERNAME})")
    parser.add_argument("--password", help=f"(env {ENV_PASSWORD})")
    parser.add_argument(
        "--max-retries", type=int, default=3, help="retries of 429/503 (default 3)"
    )


def _run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="submit a backtest (and --watch it)")
    _common(run)
    run.add_argument("--strategy", help="name (momentum) or id (2)")
    for name in _PARAM_FLAGS:
        flag = "--" + name.replace("_", "-")
        run.add_argument(flag, dest=name, type=_number, help=f"strategy {name}")
    run.add_argument("--param", action="append", metavar="NAME=VALUE")
    run.add_argument("--filter", metavar="FILE", help="filter_criteria JSON file")
    run.add_argument("--start", required=True, help="YYYY-MM-DD")
    run.add_argument("--end", required=True, help="YYYY-MM-DD")
    run.add_argument("--symbols", help="comma-separated universe")
    run.add_argument("--benchmark")
    run.add_argument("--capital", type=float)
    run.add_argument(
        "--rebalancing", choices=["daily", "weekly", "monthly", "quarterly"]
    )
    run.add_argument("--commission", type=float)
    run.add_argument("--slippage", type=float)
    run.add_argument("--execution", choices=["next_open", "close"])
    run.add_argument("--no-dividends", action="store_true")
    run.add_argument("--dataset")
    run.add_argument("--name")
    run.add_argument("--watch", action="store_true", help="progress bar, then metrics")
    run.add_argument("--json", action="store_true", help="with --watch: JSON out")
    run.set_defaults(handler=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backtest-client", description="Remote client of the backtest service."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    history = sub.add_parser("history", help="your backtests")
    _common(history)
    history.add_argument(
        "--status",
        choices=["queued", "pending", "running", "completed", "failed", "cancelled"],
    )
    history.add_argument("--sort", help="created_at, total_return, sharpe_ratio; -desc")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(handler=_cmd_history)
    trades = sub.add_parser("trades", help="a backtest's trades (all pages)")
    _common(trades)
    trades.add_argument("id")
    trades.add_argument("--csv", action="store_true", help="CSV on stdout")
    trades.add_argument("--symbol")
    trades.add_argument("--start-date", dest="start_date")
    trades.add_argument("--end-date", dest="end_date")
    trades.set_defaults(handler=_cmd_trades)
    commands: dict[str, tuple[Callable[[argparse.Namespace, TextIO], int], str]] = {
        "status": (_cmd_status, "a backtest's status and metrics"),
        "cancel": (_cmd_cancel, "cancel a queued, pending or running backtest"),
    }
    for name, (handler, help_text) in commands.items():
        command = sub.add_parser(name, help=help_text)
        _common(command)
        command.add_argument("id")
        command.set_defaults(handler=handler)
    strategies = sub.add_parser("strategies", help="the predefined strategies")
    _common(strategies)
    strategies.set_defaults(handler=_cmd_strategies)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args, out or sys.stdout)
    except BacktestClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a bad date or number in the arguments
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
