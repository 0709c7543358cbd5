"""Benchmark ``run_backtest`` end to end, against bt and vectorbt on the same workloads.

Usage::

    .venv/bin/python scripts/bench_engine.py [--repeat 7] [--json FILE]
        [--no-peers] [--sources real,synthetic] [--bt-daily-limit 60]

Workloads (execution="close", dividends off, commission 0.001, slippage 0.0005,
capital 1,000,000), on the bundled data and on synthetic data of the same shape:

* equal-weight (strategy 1), monthly, 10 / 100 / 500 symbols x 3 and 10 years
* momentum top-20 (strategy 2) of 500 symbols x 10 years, monthly
* equal-weight, daily rebalance, 500 symbols x 3 years

Windows end on the dataset's last session; "N years" starts int(N * 365.25) calendar
days earlier. Real-data universes are the first K stocks (alphabetical) with a close on
every session of the window (fewer than 500 exist: the table says how many were used),
so every engine sees clean data; momentum reads its 252-row warm-up before the window.

Our time: median of ``--repeat`` runs of the whole ``run_backtest`` (strategy,
simulation, trade ledger, metrics) after one warm-up run. bt: one run of
``bt.Backtest`` + ``bt.run`` (bt is slow), configured to reproduce our fill, cost and
sizing conventions; its final equity must agree with ours to 1e-6 relative. vectorbt:
``Portfolio.from_orders`` (target percent, whole shares) + ``total_return`` +
``sharpe_ratio``, median after a warm-up call (numba compilation reported apart);
agreement is loose (vectorbt sizes orders differently). Peak RSS is the process's
``ru_maxrss``; the stage readings show where it is reached.
"""

# Peers (bt, vectorbt, pandas frames) are imported lazily so that the RSS of our
# engine is measured before their ~240 MB arrive.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.engine.backtest import BacktestResult, run_backtest
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.schedule import decision_rows
from app.engine.strategies import resolve_strategy

COMMISSION_RATE = 0.001
SLIPPAGE_RATE = 0.0005
INITIAL_CAPITAL = 1_000_000.0
PARITY_TOLERANCE = 1e-6
MOMENTUM_LOOKBACK, MOMENTUM_SKIP = 252, 21
# Targets on the 2-core benchmark machine (milliseconds / megabytes).
TARGET_MS = {
    "ew-500x10y-monthly": 30.0,
    "mom20-500x10y-monthly": 30.0,
    "ew-500x3y-daily": 150.0,
}
TARGET_RSS_MB = 500.0


@dataclass(frozen=True)
class Workload:
    name: str
    strategy_id: int
    n_symbols: int
    years: int
    rebalancing: str = "monthly"
    top_n: int | None = None

    @property
    def params(self) -> dict[str, int]:
        return {} if self.top_n is None else {"top_n": self.top_n}


WORKLOADS = (
    *(
        Workload(f"ew-{n}x{y}y-monthly", 1, n, y)
        for y in (3, 10)
        for n in (10, 100, 500)
    ),
    Workload("mom20-500x10y-monthly", 2, 500, 10, top_n=20),
    Workload("ew-500x3y-daily", 1, 500, 3, rebalancing="daily"),
)


@dataclass
class Row:
    source: str
    workload: str
    n_symbols: int
    start: str
    end: str
    n_days: int
    n_rebalances: int
    fills: int
    trades: int
    ours_ms: float
    ours_min_ms: float
    ours_first_ms: float
    final_equity: float
    target_ms: float | None
    bt_s: float | None = None
    bt_final_equity: float | None = None
    bt_rel_diff: float | None = None
    bt_note: str = ""
    vbt_ms: float | None = None
    vbt_final_equity: float | None = None
    vbt_rel_diff: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------- measurement
def rss_mb() -> dict[str, float]:
    """Current (VmRSS) and peak (ru_maxrss) resident set size of this process, MB."""
    current = float("nan")
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"current_mb": round(current, 1), "peak_mb": round(peak, 1)}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median s, min s, last result) over ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        t, out = timed(fn)
        times.append(t)
    return statistics.median(times), min(times), out


# -------------------------------------------------------------------- windows
def window_rows(data: MarketData, years: int) -> tuple[int, int]:
    """(start_row, end_row) of the last ``years`` years of ``data``."""
    end_row = data.n_days - 1
    last = data.dates[end_row].astype("datetime64[D]")
    start_row = data.row_of(last - np.timedelta64(int(years * 365.25), "D"))
    return start_row, end_row


def full_coverage(data: MarketData, start_row: int, end_row: int, k: int) -> list[str]:
    """The first ``k`` stocks (alphabetical) with a close on every session."""
    stocks = sorted(data.stocks)
    close = data.close[start_row : end_row + 1][:, data.columns(stocks)]
    ok = ~np.isnan(close).any(axis=0)
    return [s for s, good in zip(stocks, ok, strict=True) if good][:k]


def make_config(data: MarketData, w: Workload, symbols: list[str]) -> BacktestConfig:
    start_row, end_row = window_rows(data, w.years)
    return BacktestConfig(
        start_date=data.dates[start_row].astype("datetime64[D]").item(),
        end_date=data.dates[end_row].astype("datetime64[D]").item(),
        initial_capital=INITIAL_CAPITAL,
        rebalancing=w.rebalancing,  # type: ignore[arg-type]
        commission_rate=COMMISSION_RATE,
        slippage_rate=SLIPPAGE_RATE,
        execution="close",
        dividends=False,
        symbols=tuple(symbols),
        strategy_id=w.strategy_id,
        strategy_params=w.params,
    )


# ------------------------------------------------------------------------ ours
def bench_ours(
    source: str, data: MarketData, w: Workload, repeat: int
) -> tuple[Row, BacktestResult, BacktestConfig]:
    start_row, end_row = window_rows(data, w.years)
    symbols = full_coverage(data, start_row, end_row, w.n_symbols)
    config = make_config(data, w, symbols)
    first, _ = timed(lambda: run_backtest(config, data))  # warm-up
    med, best, result = median_time(lambda: run_backtest(config, data), repeat)
    n_rebal = len(
        decision_rows(
            data.dates, start_row=start_row, end_row=end_row, rebalancing=w.rebalancing
        )
    )
    row = Row(
        source=source,
        workload=w.name,
        n_symbols=len(symbols),
        start=str(result.dates[0].astype("datetime64[D]")),
        end=str(result.dates[-1].astype("datetime64[D]")),
        n_days=len(result.dates),
        n_rebalances=n_rebal,
        fills=len(result.fills),
        trades=len(result.trades),
        ours_ms=med * 1e3,
        ours_min_ms=best * 1e3,
        ours_first_ms=first * 1e3,
        final_equity=result.final_equity,
        target_ms=TARGET_MS.get(w.name),
    )
    row.extra["rss_after"] = rss_mb()
    return row, result, config


# ----------------------------------------------------------------------- peers
def frames(data: MarketData, config: BacktestConfig, w: Workload) -> dict[str, Any]:
    """Close prices of the window and, for momentum, our exact score on its rows."""
    import pandas as pd

    symbols = list(config.symbols or ())
    cols = data.columns(symbols)
    start_row, end_row = window_rows(data, w.years)
    index = pd.DatetimeIndex(data.dates[start_row : end_row + 1])
    close = pd.DataFrame(
        data.close[start_row : end_row + 1][:, cols], index=index, columns=symbols
    )
    out: dict[str, Any] = {"close": close}
    if w.strategy_id == 2:
        # Score on the full history (the 252-row warm-up precedes the window), then
        # restricted to the window: adj_close[t-21] / adj_close[t-252] - 1.
        adj = pd.DataFrame(
            data.adj_close[:, cols], index=pd.DatetimeIndex(data.dates), columns=symbols
        )
        score = adj.shift(MOMENTUM_SKIP) / adj.shift(MOMENTUM_LOOKBACK) - 1.0
        out["score"] = score.loc[index]
    return out


def bt_fee(q: float, p: float) -> float:
    """Our cost model as a bt commission: buys pay q*p*((1+s)(1+c)-1) on top of q*p,
    sells give up |q|*p*(1-(1-s)(1-c))."""
    if q > 0:
        return abs(q) * p * ((1 + SLIPPAGE_RATE) * (1 + COMMISSION_RATE) - 1)
    return abs(q) * p * (1 - (1 - SLIPPAGE_RATE) * (1 - COMMISSION_RATE))


def run_bt(w: Workload, fr: dict[str, Any]) -> tuple[float, float]:
    """(wall seconds of Backtest + bt.run, final equity)."""
    import bt
    from bt_compat import CloseDropped  # scripts/ is on sys.path when run as a script

    run_cls = bt.algos.RunDaily if w.rebalancing == "daily" else bt.algos.RunMonthly
    algos = [
        run_cls(
            run_on_first_date=True, run_on_end_of_period=True, run_on_last_date=False
        ),
        bt.algos.SelectAll(),
    ]
    if w.strategy_id == 2:
        algos += [
            bt.algos.SetStat(fr["score"]),
            bt.algos.SelectN(w.top_n, sort_descending=True),
        ]
    # CloseDropped: size after closing dropped names, as our engine does (bt_compat.py).
    algos += [bt.algos.WeighEqually(), CloseDropped(), bt.algos.Rebalance()]

    def go() -> Any:
        backtest = bt.Backtest(
            bt.Strategy(w.name, algos),
            fr["close"],
            initial_capital=INITIAL_CAPITAL,
            commissions=bt_fee,
            integer_positions=True,
            progress_bar=False,
        )
        return bt.run(backtest)

    seconds, res = timed(go)
    return seconds, float(res.backtests[w.name].strategy.values.iloc[-1])


def target_weights(data: MarketData, config: BacktestConfig, w: Workload) -> Any:
    """Our target weights as a (days x symbols) frame, NaN off rebalance days."""
    import pandas as pd

    strategy = resolve_strategy(w.strategy_id, w.params, None)
    start_row, end_row = window_rows(data, w.years)
    lo = max(0, start_row - strategy.warmup_rows - 1)
    window = data.window(lo, end_row + 1).subset(list(config.symbols or ()))
    rows = decision_rows(
        window.dates,
        start_row=start_row - lo,
        end_row=end_row - lo,
        rebalancing=w.rebalancing,
    )
    weights = strategy.target_weights(window, rows)
    out = np.full((end_row - start_row + 1, window.n_symbols), np.nan)
    out[rows - (start_row - lo)] = weights
    index = pd.DatetimeIndex(data.dates[start_row : end_row + 1])
    return pd.DataFrame(out, index=index, columns=list(window.symbols))


def run_vbt(close: Any, weights: Any) -> tuple[float, float]:
    """One end-to-end vectorbt run: (final equity, Sharpe ratio)."""
    import vectorbt as vbt

    pf = vbt.Portfolio.from_orders(
        close,
        size=weights,
        size_type="targetpercent",
        group_by=True,
        cash_sharing=True,
        call_seq="auto",
        fees=COMMISSION_RATE,
        slippage=SLIPPAGE_RATE,
        init_cash=INITIAL_CAPITAL,
        freq="1D",
        size_granularity=1.0,
    )
    total = float(pf.total_return())
    sharpe = float(pf.sharpe_ratio())
    return INITIAL_CAPITAL * (1.0 + total), sharpe


# ------------------------------------------------------------------------ main
def bench_source(
    source: str,
    data: MarketData,
    args: argparse.Namespace,
    peers: dict[str, bool],
    meta: dict[str, Any],
) -> list[Row]:
    rows: list[Row] = []
    bt_monthly_500x3y: float | None = None
    for w in WORKLOADS:
        row, _, config = bench_ours(source, data, w, args.repeat)
        print(
            f"  {source:9s} {w.name:24s} ours {row.ours_ms:8.1f} ms   "
            f"RSS now {row.extra['rss_after']['current_mb']:.0f} MB, "
            f"peak {row.extra['rss_after']['peak_mb']:.0f} MB",
            flush=True,
        )
        rows.append(row)
    meta[f"rss_after_ours_{source}"] = rss_mb()
    if not (peers["bt"] or peers["vbt"]):
        return rows
    for w, row in zip(WORKLOADS, rows, strict=True):
        config = make_config(
            data, w, full_coverage(data, *window_rows(data, w.years), w.n_symbols)
        )
        fr = frames(data, config, w)
        if peers["bt"]:
            estimate = None
            if w.rebalancing == "daily" and bt_monthly_500x3y is not None:
                monthly = len(
                    decision_rows(
                        data.dates,
                        start_row=window_rows(data, 3)[0],
                        end_row=data.n_days - 1,
                        rebalancing="monthly",
                    )
                )
                estimate = bt_monthly_500x3y * row.n_rebalances / monthly
                row.extra["bt_estimate_s"] = estimate
            if estimate is not None and estimate > args.bt_daily_limit:
                row.bt_note = (
                    f"skipped: est. {estimate:.0f} s > {args.bt_daily_limit:.0f} s"
                )
            else:
                row.bt_s, row.bt_final_equity = run_bt(w, fr)
                row.bt_rel_diff = row.final_equity / row.bt_final_equity - 1.0
                if w.name == "ew-500x3y-monthly":
                    bt_monthly_500x3y = row.bt_s
            print(
                f"  {source:9s} {w.name:24s} bt   "
                f"{row.bt_note or f'{row.bt_s:8.2f} s'}",
                flush=True,
            )
        if peers["vbt"]:
            weights = target_weights(data, config, w)

            def vbt_once(close: Any = fr["close"], weights: Any = weights) -> Any:
                return run_vbt(close, weights)

            first, _ = timed(vbt_once)
            med, _, (equity, _) = median_time(vbt_once, args.repeat)
            row.vbt_ms, row.vbt_final_equity = med * 1e3, equity
            row.vbt_rel_diff = row.final_equity / equity - 1.0
            row.extra["vbt_first_ms"] = first * 1e3
            meta.setdefault("vbt_first_call_ms", first * 1e3)
    return rows


def fmt(value: float | None, spec: str, empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'source':9s} {'workload':22s} {'sym':>4s} {'days':>5s} {'reb':>4s} "
        f"{'fills':>7s} {'trades':>7s} {'ours ms':>8s} {'target':>7s} "
        f"{'bt s':>7s} {'ours/bt':>8s} {'vbt ms':>7s} {'ours/vbt':>8s} "
        f"{'rel diff bt':>11s} {'rel diff vbt':>12s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        target = (
            ""
            if r.target_ms is None
            else (f"{'ok' if r.ours_ms <= r.target_ms else 'OVER'} {r.target_ms:.0f}")
        )
        ratio_bt = None if r.bt_s is None else r.ours_ms / 1e3 / r.bt_s
        ratio_vbt = None if r.vbt_ms is None else r.ours_ms / r.vbt_ms
        bt_s = fmt(r.bt_s, "7.2f") if not r.bt_note else "skip"
        print(
            f"{r.source:9s} {r.workload:22s} {r.n_symbols:4d} {r.n_days:5d} "
            f"{r.n_rebalances:4d} {r.fills:7d} {r.trades:7d} {r.ours_ms:8.1f} "
            f"{target:>7s} {bt_s:>7s} {fmt(ratio_bt, '8.4f'):>8s} "
            f"{fmt(r.vbt_ms, '7.1f'):>7s} {fmt(ratio_vbt, '8.2f'):>8s} "
            f"{fmt(r.bt_rel_diff, '11.1e'):>11s} {fmt(r.vbt_rel_diff, '12.1e'):>12s}"
        )
    for r in rows:
        if r.bt_note:
            print(f"note: bt {r.source} {r.workload}: {r.bt_note}")


def parity_verdict(rows: list[Row]) -> list[str]:
    """Lines naming every workload whose final equity differs from bt's beyond 1e-6."""
    bad = [
        r
        for r in rows
        if r.bt_rel_diff is not None and abs(r.bt_rel_diff) > PARITY_TOLERANCE
    ]
    return [
        f"PARITY FAIL {r.source} {r.workload}: ours {r.final_equity:.6f} "
        f"bt {r.bt_final_equity:.6f} rel {r.bt_rel_diff:.2e}"
        for r in bad
    ]


def available_peers(want: bool) -> dict[str, bool]:
    """Which peers to run. Only looks the packages up: importing bt and vectorbt
    (numba, matplotlib, ...) adds ~240 MB of RSS, so they come after our runs."""
    return {
        name: want and importlib.util.find_spec(module) is not None
        for name, module in (("bt", "bt"), ("vbt", "vectorbt"))
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=7, help="timed runs per workload")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run bt and vectorbt too (when importable)",
    )
    p.add_argument(
        "--sources", default="real,synthetic", help="comma-separated: real, synthetic"
    )
    p.add_argument(
        "--bt-daily-limit",
        type=float,
        default=60.0,
        help="skip bt on the daily workload if its estimate exceeds this (s)",
    )
    p.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    warnings.filterwarnings("ignore")
    meta: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "rss_after_import": rss_mb(),
    }
    from app.data.store import load_dataset

    load_s, real = timed(load_dataset)
    meta["rss_after_load"] = rss_mb()
    precompute_s, _ = timed(real.precompute)
    meta.update(
        load_s=load_s,
        precompute_s=precompute_s,
        rss_after_precompute=rss_mb(),
        shape=[real.n_days, real.n_symbols],
    )
    print(
        f"bundled data {real.n_days} x {real.n_symbols} loaded in {load_s:.2f} s "
        f"(+ {precompute_s:.2f} s derived arrays, once per dataset)"
    )
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    peers = available_peers(args.peers)
    rows: list[Row] = []
    if "real" in sources:
        rows += bench_source("real", real, args, {"bt": False, "vbt": False}, meta)
        meta["rss_ours_real_only"] = rss_mb()
    synth = None
    if "synthetic" in sources:
        try:
            from app.engine import synthetic

            synth = synthetic.generate(real.n_symbols, real.n_days, seed=args.seed)
            synth.precompute()
            rows += bench_source(
                "synthetic", synth, args, {"bt": False, "vbt": False}, meta
            )
        except Exception as exc:
            print(f"synthetic data unavailable, skipped: {exc!r}")
    meta["rss_after_ours"] = rss_mb()
    if any(peers.values()):
        meta["versions"] = peer_versions(peers)
        rows = run_peers(rows, real, synth, args, peers, meta)
    meta["rss_at_end"] = rss_mb()
    print()
    print_table(rows)
    report_memory(meta)
    problems = parity_verdict(rows)
    for line in problems:
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2, default=str
            )
        )
        print(f"wrote {args.json}")
    return 1 if problems else 0


def peer_versions(peers: dict[str, bool]) -> dict[str, str]:
    import pandas as pd

    out = {"numpy": np.__version__, "pandas": pd.__version__}
    if peers["bt"]:
        import bt

        out["bt"] = bt.__version__
    if peers["vbt"]:
        import vectorbt as vbt

        out["vectorbt"] = vbt.__version__
    return out


def run_peers(
    rows: list[Row],
    real: MarketData,
    synth: MarketData | None,
    args: argparse.Namespace,
    peers: dict[str, bool],
    meta: dict[str, Any],
) -> list[Row]:
    """Re-run each source with peers (our numbers are kept from the first pass)."""
    print(f"peers: {', '.join(k for k, v in peers.items() if v)}", flush=True)
    out: list[Row] = []
    for source, data in (("real", real), ("synthetic", synth)):
        ours = [r for r in rows if r.source == source]
        if data is None or not ours:
            continue
        fresh = bench_source(
            source, data, argparse.Namespace(**{**vars(args), "repeat": 1}), peers, meta
        )
        for mine, peer in zip(ours, fresh, strict=True):
            for name in (
                "bt_s",
                "bt_final_equity",
                "bt_note",
                "vbt_ms",
                "vbt_final_equity",
            ):
                setattr(mine, name, getattr(peer, name))
            mine.extra.update(peer.extra)
            if mine.bt_final_equity is not None:
                mine.bt_rel_diff = mine.final_equity / mine.bt_final_equity - 1.0
            if mine.vbt_final_equity is not None:
                mine.vbt_rel_diff = mine.final_equity / mine.vbt_final_equity - 1.0
            out.append(mine)
    return out


def report_memory(meta: dict[str, Any]) -> None:
    # The headline is the bundled dataset plus our runs on it; the synthetic dataset
    # (same shape) and the peers only add to it afterwards.
    key = "rss_ours_real_only" if "rss_ours_real_only" in meta else "rss_after_ours"
    peak = meta[key]["peak_mb"]
    verdict = "ok" if peak <= TARGET_RSS_MB else "OVER"
    print(
        f"\npeak RSS with the bundled dataset loaded, our engine only: {peak:.0f} MB "
        f"({verdict}, target <= {TARGET_RSS_MB:.0f} MB)"
    )
    for key in (
        "rss_after_import",
        "rss_after_load",
        "rss_after_precompute",
        "rss_ours_real_only",
        "rss_after_ours",
        "rss_at_end",
    ):
        if key in meta:
            print(
                f"  {key:22s} current {meta[key]['current_mb']:7.1f} MB   "
                f"peak {meta[key]['peak_mb']:7.1f} MB"
            )
    if "vbt_first_call_ms" in meta:
        print(
            f"vectorbt first call (numba compilation + run): "
            f"{meta['vbt_first_call_ms'] / 1e3:.1f} s"
        )


if __name__ == "__main__":
    raise SystemExit(main())
