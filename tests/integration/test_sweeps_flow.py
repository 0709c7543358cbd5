"""Sweeps end to end in both run modes: the embedded server (SQLite, in-process
worker) and the live distributed stack (PostgreSQL, Redis, a prefork Celery worker).

Each row's metrics are held equal (1e-9 relative) to a single ``POST /v1/backtest``
of the base request with that row's params; PSR is recomputed from the returns
export with pandas; a cancel keeps the finished rows. Both stacks sleep 0.06 s after
each combination (``slow_engine``), so a sweep can be watched and cancelled.
"""

from __future__ import annotations

import asyncio
import io
import math
import time
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from scipy.stats import norm
from websockets.asyncio.client import connect

from app.backtests.schemas import BacktestRequest
from app.data.store import load_dataset
from app.engine.backtest import run_backtest
from tests.integration.stack import LiveApi, LiveUser

pytestmark = pytest.mark.integration
TERMINAL = {"completed", "failed", "cancelled"}
SYMBOLS = ["AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ"]
MOMENTUM: dict[str, Any] = {
    "name": "momentum grid",
    "base": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 2},
        "symbols": SYMBOLS,
        "start_date": "2019-01-01",
        "end_date": "2019-12-31",
        "benchmark": "SPY",
    },
    "grid": {
        "strategy_params.lookback": [20, 60, 120],
        "strategy_params.skip": [0, 30],
        "rebalancing": ["monthly", "weekly"],
    },
    "overfitting_blocks": 4,
}
SCREEN: dict[str, Any] = {
    "base": {
        "filter_criteria": {
            "universe": SYMBOLS,
            "filters": [{"factor": "return", "window": 63, "op": ">", "value": -1}],
            "rank_by": {"factor": "volatility", "window": 21},
            "ascending": True,
            "top_n": 2,
        },
        "start_date": "2019-01-01",
        "end_date": "2019-12-31",
        "execution": "close",
    },
    "grid": {
        "filter_criteria.top_n": [1, 3],
        "filter_criteria.weighting": ["equal", "inverse_volatility"],
        "commission": [0.0, 0.002],
    },
    "objective": "max_drawdown",
}
CANCEL_STOP_BOUND_SECONDS = 2.0


@pytest.fixture(params=["embedded", "distributed"])
def stack(request: pytest.FixtureRequest) -> LiveApi:
    name = "embedded_server" if request.param == "embedded" else "live_stack"
    server: LiveApi = request.getfixturevalue(name)
    return server


async def _wait(
    http: httpx.AsyncClient, url: str, *, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await http.get(url)).json()
        if body["status"] in TERMINAL:
            return body
        await asyncio.sleep(0.1)
    pytest.fail(f"{url} not finished after {timeout} s: {body}")


async def _run_sweep(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    created = await http.post("/v1/sweeps", json=body)
    assert created.status_code == 200, created.text
    sid = created.json()["sweep_id"]
    done = await _wait(http, f"/v1/sweeps/{sid}")
    assert done["status"] == "completed", done
    return done


async def _rows(http: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/sweeps/{sid}/results", params={"limit": 500})
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()
    return rows


# A sweep row skips the trade ledger by design (issue 14): the statistics built from
# fills, lots and positions, and the data-coverage block, are on the full backtest
# of a row (POST /v1/sweeps/{id}/results/{index}/backtest), not on the row.
LEDGER_ONLY = {
    "total_fills", "total_lots", "closed_lots", "total_positions",
    "closed_positions", "open_positions", "position_win_rate",
    "position_profit_factor", "avg_position_return", "best_position_return",
    "worst_position_return", "avg_holding_days", "median_holding_days",
    "lot_win_rate", "lot_profit_factor", "avg_lot_return", "best_lot_return",
    "worst_lot_return", "data_coverage",
}  # fmt: skip


def _assert_metrics_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys() - LEDGER_ONLY
    for key, value in want.items():
        if key in LEDGER_ONLY:
            continue
        if value is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def _apply(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    body = {**base}
    for key, value in params.items():
        head, _, name = key.partition(".")
        if name:
            body[head] = {**(body.get(head) or {}), name: value}
        else:
            body[key] = value
    return body


async def _backtest_metrics(
    stack: LiveApi, http: httpx.AsyncClient, response: httpx.Response
) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    tid = response.json()["task_id"]
    done = await _wait(http, f"/v1/backtest/{tid}")
    assert done["status"] == "completed", done
    metrics: dict[str, Any] = done["metrics"]
    return metrics


async def _window_singles(
    stack: LiveApi,
    http: httpx.AsyncClient,
    base: dict[str, Any],
    windows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Single backtests of the first and last walk-forward windows: each window's
    chosen params over its test span."""
    singles = []
    for window in (windows[0], windows[-1]):
        body = {
            **_apply(base, window["chosen"]["params"]),
            "start_date": window["test_start"],
            "end_date": window["test_end"],
        }
        response = await http.post("/v1/backtest", json=body)
        singles.append(await _backtest_metrics(stack, http, response))
    return singles


@pytest.mark.parametrize("body", [MOMENTUM, SCREEN], ids=["momentum", "screen"])
async def test_rows_equal_single_backtests(
    stack: LiveApi, body: dict[str, Any]
) -> None:
    user = stack.make_user()
    async with stack.client(user) as http:
        done = await _run_sweep(http, body)
        sid = done["sweep_id"]
        rows = await _rows(http, sid)
        n = done["combinations"]
        assert [r["index"] for r in rows] == list(range(n))
        assert all(set(r["params"]) == set(body["grid"]) for r in rows)
        # last grid key varies fastest
        last = list(body["grid"])[-1]
        assert rows[0]["params"][last] != rows[1]["params"][last]
        for row in (rows[0], rows[n // 2], rows[-1]):
            single = await http.post(
                "/v1/backtest", json=_apply(body["base"], row["params"])
            )
            _assert_metrics_equal(
                row["metrics"], await _backtest_metrics(stack, http, single)
            )
        rerun = await http.post(f"/v1/sweeps/{sid}/results/{n - 1}/backtest")
        _assert_metrics_equal(
            rows[-1]["metrics"], await _backtest_metrics(stack, http, rerun)
        )


async def test_completed_sweep_reports_best_overfitting_psr_heatmap_returns(
    stack: LiveApi,
) -> None:
    user = stack.make_user()
    async with stack.client(user) as http:
        done = await _run_sweep(http, MOMENTUM)
        sid = done["sweep_id"]
        rows = await _rows(http, sid)
        csv = await http.get(f"/v1/sweeps/{sid}/returns", params={"format": "csv"})
        parquet = await http.get(
            f"/v1/sweeps/{sid}/returns", params={"format": "parquet"}
        )
        heat = await http.get(
            f"/v1/sweeps/{sid}/heatmap",
            params={
                "x": "strategy_params.lookback",
                "y": "strategy_params.skip",
                "metric": "sharpe_ratio",
            },
        )
        by_sharpe = await http.get(
            f"/v1/sweeps/{sid}/results", params={"sort": "-sharpe_ratio", "limit": 2}
        )
        # a lower-is-better metric, ascending, page by page (indexed column sort)
        by_volatility = [
            await http.get(
                f"/v1/sweeps/{sid}/results",
                params={"sort": "volatility", "limit": 4, "offset": offset},
            )
            for offset in (0, 4, 8)
        ]

    # 3 lookbacks x 2 skips x 2 rebalancings; skip 30 >= lookback 20 drops 2
    assert (done["combinations"], done["skipped_combinations"]) == (10, 2)
    sharpe = [r["metrics"]["sharpe_ratio"] for r in rows]
    best = max(range(len(rows)), key=lambda i: (sharpe[i], -i))
    assert done["best"]["index"] == best
    assert [r["index"] for r in by_sharpe.json()] == sorted(
        range(len(rows)), key=lambda i: (-sharpe[i], i)
    )[:2]
    assert by_sharpe.headers["X-Total-Count"] == "10"
    volatility = [r["metrics"]["volatility"] for r in rows]
    defined = [i for i in range(len(rows)) if volatility[i] is not None]
    undefined = [i for i in range(len(rows)) if volatility[i] is None]
    assert [r["index"] for p in by_volatility for r in p.json()] == sorted(
        defined, key=lambda i: (volatility[i], i)
    ) + undefined  # undefined last, ties by index
    assert [p.headers["X-Total-Count"] for p in by_volatility] == ["10"] * 3
    assert 'rel="next"' in by_volatility[0].headers["Link"]
    assert 'rel="prev"' in by_volatility[2].headers["Link"]
    over = done["overfitting"]
    assert over["n_trials"] == 10 and over["blocks"] == 4
    assert 0.0 <= over["pbo"] <= 1.0 and over["verdict"]
    assert over["best_index"] == best

    frame = pd.read_csv(io.StringIO(csv.text))
    assert list(frame.columns) == ["date", *map(str, range(10))]
    assert frame["date"].iloc[0] > "2019-01-02"  # the first date is dropped
    from_parquet = pd.read_parquet(io.BytesIO(parquet.content))
    assert (
        from_parquet.drop(columns="date").to_numpy()
        == frame.drop(columns="date").to_numpy()
    ).all()
    for row in rows:  # PSR(0) recomputed independently from the export
        r = frame[str(row["index"])]
        sr = r.mean() / r.std(ddof=1)
        t = len(r)
        denom = 1 - r.skew() * sr + (r.kurt() + 3 - 1) / 4 * sr**2
        want = norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(denom))
        assert row["psr"] == pytest.approx(want, rel=1e-9)
        equity = (1 + r).cumprod().iloc[-1] - 1
        assert equity == pytest.approx(row["metrics"]["total_return"], rel=1e-9)

    cells = heat.json()
    assert cells["x_values"] == [20, 60, 120] and cells["y_values"] == [0, 30]
    for i, skip in enumerate(cells["y_values"]):
        for j, lookback in enumerate(cells["x_values"]):
            matching = [
                r for r in rows
                if r["params"]["strategy_params.skip"] == skip
                and r["params"]["strategy_params.lookback"] == lookback
            ]  # fmt: skip
            if not matching:
                assert cells["values"][i][j] is None
                continue
            top = max(matching, key=lambda r: r["metrics"]["sharpe_ratio"])
            assert cells["values"][i][j] == top["metrics"]["sharpe_ratio"]
            assert cells["indexes"][i][j] == top["index"]


async def _progress_frames(stack: LiveApi, user: LiveUser, sid: str) -> list[Any]:
    url = f"{stack.ws_url}/v1/sweeps/{sid}/progress?token={user.token}"
    frames = []
    async with connect(url, open_timeout=30) as ws:
        async with asyncio.timeout(60):
            async for raw in ws:
                frames.append(orjson.loads(raw))
                if frames[-1]["status"] in TERMINAL:
                    break
    return frames


async def test_cancel_mid_sweep_keeps_finished_rows(stack: LiveApi) -> None:
    user = stack.make_user()
    body = {**MOMENTUM, "grid": {"strategy_params.lookback": list(range(20, 100))}}
    async with stack.client(user) as http:
        created = await http.post("/v1/sweeps", json=body)
        sid, total = created.json()["sweep_id"], created.json()["combinations"]
        watcher = asyncio.create_task(_progress_frames(stack, user, sid))
        deadline = time.monotonic() + 60
        while (await http.get(f"/v1/sweeps/{sid}")).json()["combinations_done"] < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        cancelled = await http.delete(f"/v1/sweeps/{sid}")
        await asyncio.sleep(CANCEL_STOP_BOUND_SECONDS)
        first = await http.get(f"/v1/sweeps/{sid}/results", params={"limit": 1})
        await asyncio.sleep(0.5)
        later = await http.get(f"/v1/sweeps/{sid}/results", params={"limit": 500})
        status = (await http.get(f"/v1/sweeps/{sid}")).json()
        frames = await watcher

    assert cancelled.json()["status"] == "cancelled"
    kept = int(first.headers["X-Total-Count"])
    assert 3 <= kept < total
    assert int(later.headers["X-Total-Count"]) == kept  # stopped within the bound
    indexes = [r["index"] for r in later.json()]  # chunks may run side by side
    assert indexes == sorted(set(indexes)) and all(0 <= i < total for i in indexes)
    assert status["status"] == "cancelled"
    assert status["best"] is not None
    running = [
        f for f in frames if f["status"] == "running" and "combinations_done" in f
    ]
    assert running and running[-1]["combinations"] == total
    best = running[-1]["best"]  # the best row so far rides on the frames
    assert best is not None and 0 <= best["index"] < total
    assert frames[-1]["status"] == "cancelled"


WALK: dict[str, Any] = {
    "name": "walk-forward",
    "base": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 2, "skip": 0},
        "symbols": SYMBOLS,
        "start_date": "2018-01-01",
        "end_date": "2019-12-31",
        "benchmark": "SPY",
    },
    "grid": {"strategy_params.lookback": [20, 60, 120]},
    "walk_forward": {"train_months": 6, "test_months": 3, "anchored": False},
    "overfitting_blocks": 4,
}


async def test_walk_forward_windows_equal_single_backtests(
    live_stack: LiveApi,
) -> None:
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        done = await _run_sweep(http, WALK)
        sid = done["sweep_id"]
        walk = done["walk_forward"]
        chart = (await http.get(f"/v1/sweeps/{sid}/chart")).json()
        windows = walk["windows"]
        singles = await _window_singles(live_stack, http, WALK["base"], windows)

    # 6-month train, 3-month test, stepping 3 months over 2018-2019: 6 windows
    assert [(w["train_start"], w["test_start"], w["test_end"]) for w in windows][
        :2
    ] == [
        ("2018-01-01", "2018-07-01", "2018-09-30"),
        ("2018-04-01", "2018-10-01", "2018-12-31"),
    ]
    assert len(windows) == 6 and windows[-1]["test_end"] == "2019-12-31"
    for window, single in zip((windows[0], windows[-1]), singles, strict=True):
        _assert_metrics_equal(window["test_metrics"], single)
        assert window["test_metric"] == single["sharpe_ratio"]
    # the chosen combination is the train-span best, checked with the plain engine
    data = load_dataset(None)
    for window in windows:
        train = [
            run_backtest(
                BacktestRequest.model_validate(
                    {
                        **_apply(WALK["base"], {"strategy_params.lookback": lb}),
                        "start_date": window["train_start"],
                        "end_date": window["train_end"],
                    }
                ).to_config(),
                data,
            ).metrics["sharpe_ratio"]
            for lb in WALK["grid"]["strategy_params.lookback"]
        ]
        best = max(range(3), key=lambda i: (train[i], -i))
        assert window["chosen"]["index"] == best
        assert window["train_metric"] == pytest.approx(train[best], rel=1e-9)
    # the stitched curve chains the test spans from the initial capital
    equity = [p["equity"] for p in chart["equity_curve"]]
    assert equity[0] == 100_000
    chained = math.prod(1 + w["test_metrics"]["total_return"] for w in windows)
    assert equity[-1] / equity[0] == pytest.approx(chained, rel=1e-9)
    assert walk["oos_metrics"]["total_return"] == pytest.approx(chained - 1, rel=1e-9)
    trains = [w["train_metric"] for w in windows]
    tests = [w["test_metric"] for w in windows]
    assert walk["efficiency"] == pytest.approx(
        (sum(tests) / len(tests)) / (sum(trains) / len(trains)), rel=1e-12
    )
    assert chart["equity_curve"][0]["benchmark"] == 100_000


# 15,000 a month out of 20,000: every train span (6 months), every test span
# (3 months) and the full span run out of money, equity 0 from then on.
DEPLETING_WALK: dict[str, Any] = {
    **WALK,
    "name": "walk-forward, depleting",
    "base": {
        **WALK["base"],
        "initial_capital": 20_000,
        "cash_flows": {"amount": -15_000.0, "frequency": "monthly"},
    },
}


def _finite_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


async def test_walk_forward_with_a_depleting_withdrawal_completes(
    embedded_server: LiveApi,
) -> None:
    """Windows whose withdrawals empty the portfolio: the sweep completes (the
    stitched out-of-sample curve chained the raw equity, reached 0 and failed the
    job), every window's test metrics equal a single backtest of the chosen params
    over the test span, and no number in the JSON is NaN (orjson rejects it)."""
    stack = embedded_server
    user = stack.make_user()
    async with stack.client(user) as http:
        sid = (await _run_sweep(http, DEPLETING_WALK))["sweep_id"]
        done = orjson.loads((await http.get(f"/v1/sweeps/{sid}")).content)
        chart_response = await http.get(f"/v1/sweeps/{sid}/chart")
        returns = await http.get(f"/v1/sweeps/{sid}/returns", params={"format": "csv"})
        rows = await _rows(http, sid)
        windows = done["walk_forward"]["windows"]
        singles = await _window_singles(stack, http, DEPLETING_WALK["base"], windows)

    assert done["status"] == "completed"
    assert chart_response.status_code == 200 and returns.status_code == 200
    chart = orjson.loads(chart_response.content)
    assert all(r["metrics"]["portfolio_depleted"] for r in rows)
    assert len(windows) == 6
    assert all(w["test_metrics"]["portfolio_depleted"] for w in windows)
    for window, single in zip((windows[0], windows[-1]), singles, strict=True):
        assert single["portfolio_depleted"] and single["final_equity"] == 0.0
        _assert_metrics_equal(window["test_metrics"], single)
        assert window["test_metric"] == single["sharpe_ratio"]
    # time-weighted, as each window's metrics: the chain of the windows' returns
    equity = [p["equity"] for p in chart["equity_curve"]]
    assert equity[0] == 20_000 and min(equity) > 0
    chained = math.prod(1 + w["test_metrics"]["total_return"] for w in windows)
    assert equity[-1] / equity[0] == pytest.approx(chained, rel=1e-9)
    walk = done["walk_forward"]
    assert walk["oos_metrics"]["total_return"] == pytest.approx(chained - 1, rel=1e-9)
    assert all(_finite_or_none(v) for v in walk["oos_metrics"].values())
    assert _finite_or_none(walk["efficiency"])
    over = done["overfitting"]
    numbers = ("pbo", "lambda_median", "degradation", "dsr", "sr0")
    assert all(_finite_or_none(over[k]) for k in numbers)
    assert over["reason"] or all(over[k] is not None for k in ("pbo", "sr0"))
    frame = pd.read_csv(io.StringIO(returns.text))
    assert frame.drop(columns="date").notna().all().all()


# The embedded worker's warm-up loads the kernels from numba's cache (seconds);
# compiling them in a fresh environment takes longer.
WARM_UP_TIMEOUT = 120


async def test_embedded_server_is_ready_once_its_worker_is_warm(
    embedded_server: LiveApi,
) -> None:
    """``/ready`` is 503 "embedded worker warming up" until the in-process worker
    has loaded the dataset and the kernels, so the first sweep after a start does
    not wait for them (it took twice as long as the next one)."""
    deadline = time.monotonic() + WARM_UP_TIMEOUT
    async with embedded_server.client() as http:
        while True:
            response = await http.get("/ready")
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            details = response.json()["details"]
            assert details["workers"] == {
                "ok": False,
                "detail": "embedded worker warming up",
            }
            assert details["database"]["ok"] and details["migrations"]["ok"]
            await asyncio.sleep(0.1)

    assert response.status_code == 200, response.text
    assert response.json()["checks"]["workers"]["detail"] == "embedded worker alive"
