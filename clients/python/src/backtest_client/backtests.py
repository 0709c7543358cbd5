"""Backtests: ``client.backtests`` and the :class:`Backtest` handle it returns.

The async twins (:class:`AsyncBacktests`, :class:`AsyncBacktest`) have the same
methods, awaited. Results that later server versions add (``analysis``, ``report``,
the ``/equity`` export) are methods here that ask the server's OpenAPI document
first and raise :class:`~backtest_client.errors.EndpointNotAvailable` when missing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backtest_client import _frames, _progress
from backtest_client._requests import (
    HISTORY_PAGE,
    TRADE_PAGE,
    DateLike,
    Execution,
    Rebalancing,
    Universe,
    build_request,
    new_idempotency_key,
    next_page,
    query,
)
from backtest_client.errors import (
    BacktestFailed,
    EndpointNotAvailable,
    NotFound,
    ResultsNotReady,
)
from backtest_client.models import (
    TERMINAL,
    BacktestCreated,
    BacktestStatus,
    CancelResult,
    ChartData,
    HistoryItem,
    Trade,
)

if TYPE_CHECKING:
    import pandas as pd

    from backtest_client.client import Client

EQUITY_EXPORT = "/v1/backtest/{task_id}/equity"
CHART = "/v1/backtest/{task_id}/chart"
ANALYSIS = "/v1/backtest/{task_id}/analysis"
REPORT = "/v1/backtest/{task_id}/report"
FALLBACK_MAX_POINTS = 10_000


def _not_offered(method: str, template: str, base_url: str) -> EndpointNotAvailable:
    return EndpointNotAvailable(
        f"{method} {template} is not offered by the server at {base_url} (its "
        "OpenAPI document does not list it); it needs a newer server version",
        status_code=404,
        code="NotFound",
    )


def _created_state(created: BacktestCreated) -> BacktestStatus:
    return BacktestStatus(
        task_id=created.task_id,
        status=created.status,
        progress=0.0,
        config={},
        created_at=created.created_at,
    )


class _BacktestBase:
    """State and the I/O-free parts of a backtest handle."""

    def __init__(self, task_id: str, state: BacktestStatus | None) -> None:
        self.id = str(task_id)
        self.state = state
        # How the last wait() learnt the outcome: "websocket" or "polling".
        self.progress_via: str | None = None

    def __repr__(self) -> str:
        status = self.state.status if self.state else "?"
        return f"<{type(self).__name__} {self.id} {status}>"

    @property
    def status(self) -> str | None:
        """The last status seen (``refresh()`` or ``wait()`` update it)."""
        return self.state.status if self.state else None

    @property
    def progress(self) -> float:
        return self.state.progress if self.state else 0.0

    @property
    def done(self) -> bool:
        return self.state is not None and self.state.status in TERMINAL

    @property
    def metrics(self) -> dict[str, float | int | None]:
        """The metric set of a completed backtest (after ``wait()``/``refresh()``)."""
        if self.state is None or self.state.metrics is None:
            status = self.status or "unknown"
            raise ResultsNotReady(
                f"backtest {self.id} is {status}: no metrics yet (call wait() first)"
            )
        return self.state.metrics

    def _path(self, template: str) -> str:
        return template.replace("{task_id}", self.id)

    def _check_outcome(self, raise_on_failure: bool) -> None:
        state = self.state
        if raise_on_failure and state is not None and state.status != "completed":
            raise BacktestFailed(self.id, state.status, state.error)

    def _bar(self, enabled: bool) -> _progress.ProgressBar:
        label = (self.state.name if self.state and self.state.name else None) or (
            f"backtest {self.id[:8]}"
        )
        return _progress.ProgressBar(enabled, label)


class Backtest(_BacktestBase):
    """A submitted backtest. ``wait()`` follows it; results are methods."""

    def __init__(
        self, client: Client, task_id: str, state: BacktestStatus | None = None
    ) -> None:
        super().__init__(task_id, state)
        self._client = client

    def refresh(self) -> BacktestStatus:
        response = self._client.transport.request("GET", f"/v1/backtest/{self.id}")
        self.state = BacktestStatus.from_json(response.json())
        return self.state

    def wait(
        self,
        progress: bool = False,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        websocket: bool = True,
        on_update: _progress.OnUpdate | None = None,
        raise_on_failure: bool = True,
    ) -> Backtest:
        """Block until the job is completed, failed or cancelled.

        ``progress``: a tqdm bar. Updates come over the progress WebSocket; when it
        is refused or ends early, by polling every ``poll_interval`` seconds.
        ``raise_on_failure``: a failed or cancelled job raises
        :class:`~backtest_client.errors.BacktestFailed`.
        """
        self.progress_via = None
        deadline = _progress.Deadline(timeout)
        bar = self._bar(progress)
        relay = _progress.fan_out(bar, on_update)
        try:
            if not self.done and websocket:
                url = _progress.socket_url(self._client.transport.ws_url, self.id)
                token = self._client.transport.ensure_token()
                if _progress.watch_socket_sync(url, token, relay, deadline, self.id):
                    self.progress_via = "websocket"
            if self.progress_via != "websocket":
                self._poll(relay, deadline, poll_interval)
                self.progress_via = "polling"
            self.refresh()  # metrics, completed_at: the frame carries neither
        finally:
            bar.close()
        self._check_outcome(raise_on_failure)
        return self

    def _poll(
        self, relay: _progress.OnUpdate, deadline: _progress.Deadline, interval: float
    ) -> None:
        while True:
            relay(_progress.update_from_status(self.refresh()))
            if self.done:
                return
            time.sleep(deadline.sleep_for(interval, self.id))

    def cancel(self) -> CancelResult:
        """Cancel a queued, pending or running job. A finished job is left alone (on
        this API a DELETE of a finished job deletes it: use :meth:`delete` for
        that)."""
        state = self.refresh()
        if state.status in TERMINAL:
            return CancelResult(
                self.id, state.status, "already finished: nothing to do"
            )
        response = self._client.transport.request("DELETE", f"/v1/backtest/{self.id}")
        result = CancelResult.from_json(response.json())
        self.refresh()
        return result

    def delete(self) -> None:
        """Delete the job and its results (cancelling it first if it runs)."""
        path = f"/v1/backtest/{self.id}"
        if self.refresh().status not in TERMINAL:
            self._client.transport.request("DELETE", path)
        self._client.transport.request("DELETE", path)
        self.state = None

    def chart(self, max_points: int | None = None) -> ChartData:
        params = query(max_points=max_points)
        response = self._client.transport.request(
            "GET", self._path(CHART), params=params
        )
        return ChartData.from_json(response.json())

    def _full_chart(self) -> ChartData:
        limit = self._client.transport.query_maximum("GET", CHART, "max_points")
        return self.chart(max_points=limit or FALLBACK_MAX_POINTS)

    def equity(self, column: str = "equity") -> pd.Series:
        """The daily equity curve as a Series on a DatetimeIndex (``column=
        "benchmark"``: the benchmark's curve). From ``/equity?format=json`` where
        the server has it, else from the chart at its highest resolution."""
        transport = self._client.transport
        if transport.offers("GET", EQUITY_EXPORT):
            try:
                response = transport.request(
                    "GET", self._path(EQUITY_EXPORT), params={"format": "json"}
                )
                return _frames.equity_from_export(response.json(), column)
            except NotFound:
                if transport.knows_routes:
                    raise
        return _frames.equity_from_chart(self._full_chart(), column)

    def drawdown(self) -> pd.Series:
        return _frames.drawdown_from_chart(self._full_chart())

    def iter_trades(
        self,
        *,
        symbol: str | None = None,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        sort: str | None = None,
        page_size: int = TRADE_PAGE,
    ) -> Iterator[Trade]:
        """Every trade matching the filters, page after page (``Link: rel=next``)."""
        params: dict[str, Any] | None = query(
            symbol=symbol, start_date=start_date, end_date=end_date, sort=sort,
            limit=page_size, offset=0,
        )  # fmt: skip
        url: str | None = self._path("/v1/backtest/{task_id}/trades")
        while url is not None:
            response = self._client.transport.request("GET", url, params=params)
            for item in response.json():
                yield Trade.from_json(item)
            url, params = next_page(response), None  # the link carries the query

    def trades(self, **filters: Any) -> pd.DataFrame:
        """All trades as a DataFrame (every page fetched); filters as
        :meth:`iter_trades`."""
        return _frames.trades_frame(self.iter_trades(**filters))

    def analysis(self) -> dict[str, Any]:
        transport = self._client.transport
        if not transport.offers("GET", ANALYSIS):
            raise _not_offered("GET", ANALYSIS, transport.base_url)
        result: dict[str, Any] = transport.request("GET", self._path(ANALYSIS)).json()
        return result

    def report(self, path: str | Path | None = None) -> str:
        """The HTML report; written to ``path`` when given."""
        transport = self._client.transport
        if not transport.offers("GET", REPORT):
            raise _not_offered("GET", REPORT, transport.base_url)
        response = transport.request(
            "GET", self._path(REPORT), headers={"Accept": "text/html"}
        )
        if path is not None:
            Path(path).write_text(response.text, encoding="utf-8")
        return response.text


class Backtests:
    """``client.backtests``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def submit(
        self,
        strategy: str | int | None = None,
        params: Mapping[str, float] | None = None,
        *,
        start: DateLike,
        end: DateLike,
        filter_criteria: Mapping[str, Any] | None = None,
        symbols: Sequence[str] | None = None,
        name: str | None = None,
        initial_capital: float | None = None,
        rebalancing: Rebalancing | None = None,
        commission: float | None = None,
        slippage: float | None = None,
        execution: Execution | None = None,
        dividends: bool | None = None,
        benchmark: str | None = None,
        benchmarks: Sequence[str | Mapping[str, Any]] | None = None,
        allocation: Mapping[str, float] | None = None,
        rebalance_band: float | None = None,
        cash_flows: Mapping[str, Any] | None = None,
        reinvest_dividends: bool | None = None,
        dataset: str | None = None,
        risk_free_rate: float | None = None,
        universe: Universe | None = None,
        callback_url: str | None = None,
        notify_email: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Backtest:
        """Submit a backtest. ``strategy``: a name (``"momentum"``) or an id;
        ``params`` override its parameter defaults. Fields left ``None`` take the
        server's defaults. An ``Idempotency-Key`` is generated unless given, so the
        automatic retry of a 429/503 never creates a second job."""
        strategy_id = (
            None if strategy is None else self._client.strategies.resolve(strategy)
        )
        body = build_request(
            strategy_id=strategy_id, params=params, start=start, end=end,
            filter_criteria=dict(filter_criteria) if filter_criteria else None,
            symbols=symbols, name=name, initial_capital=initial_capital,
            rebalancing=rebalancing, commission=commission, slippage=slippage,
            execution=execution, dividends=dividends, benchmark=benchmark,
            dataset=dataset, risk_free_rate=risk_free_rate, universe=universe,
            callback_url=callback_url, notify_email=notify_email,
            benchmarks=None if benchmarks is None else [
                b if isinstance(b, str) else dict(b) for b in benchmarks
            ],
            allocation=None if allocation is None else dict(allocation),
            rebalance_band=rebalance_band,
            cash_flows=None if cash_flows is None else dict(cash_flows),
            reinvest_dividends=reinvest_dividends,
        )  # fmt: skip
        key = idempotency_key or new_idempotency_key()
        response = self._client.transport.request(
            "POST", "/v1/backtest", json=body.to_json(),
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        created = BacktestCreated.from_json(response.json())
        return Backtest(self._client, created.task_id, _created_state(created))

    def get(self, task_id: str) -> Backtest:
        backtest = Backtest(self._client, task_id)
        backtest.refresh()
        return backtest

    def history(
        self,
        *,
        status: str | None = None,
        sort: str | None = None,
        created_after: dt.datetime | dt.date | None = None,
        created_before: dt.datetime | dt.date | None = None,
        limit: int | None = 20,
    ) -> list[HistoryItem]:
        """Your backtests, newest first by default; ``limit=None``: all of them."""
        items: list[HistoryItem] = []
        if limit is not None and limit <= 0:
            return items
        params: dict[str, Any] | None = query(
            status=status, sort=sort, created_after=created_after,
            created_before=created_before, offset=0,
            limit=HISTORY_PAGE if limit is None else min(limit, HISTORY_PAGE),
        )  # fmt: skip
        url: str | None = "/v1/backtest/history"
        while url is not None and (limit is None or len(items) < limit):
            response = self._client.transport.request("GET", url, params=params)
            items.extend(HistoryItem.from_json(i) for i in response.json())
            url, params = next_page(response), None
        return items if limit is None else items[:limit]
