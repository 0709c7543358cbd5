"""The asyncio twins of :mod:`backtest_client.backtests`: ``async_client.backtests``
and the :class:`AsyncBacktest` handle it returns (same methods, awaited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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
from backtest_client.backtests import (
    ANALYSIS,
    CHART,
    EQUITY_EXPORT,
    FALLBACK_MAX_POINTS,
    REPORT,
    _BacktestBase,
    _created_state,
    _not_offered,
)
from backtest_client.errors import NotFound
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
    import datetime as dt

    import pandas as pd

    from backtest_client.client import AsyncClient


class AsyncBacktest(_BacktestBase):
    """The async twin of :class:`Backtest`."""

    def __init__(
        self, client: AsyncClient, task_id: str, state: BacktestStatus | None = None
    ) -> None:
        super().__init__(task_id, state)
        self._client = client

    async def refresh(self) -> BacktestStatus:
        response = await self._client.transport.request(
            "GET", f"/v1/backtest/{self.id}"
        )
        self.state = BacktestStatus.from_json(response.json())
        return self.state

    async def wait(
        self,
        progress: bool = False,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        websocket: bool = True,
        on_update: _progress.OnUpdate | None = None,
        raise_on_failure: bool = True,
    ) -> AsyncBacktest:
        """See :meth:`Backtest.wait`."""
        self.progress_via = None
        deadline = _progress.Deadline(timeout)
        bar = self._bar(progress)
        relay = _progress.fan_out(bar, on_update)
        try:
            if not self.done and websocket:
                url = _progress.socket_url(self._client.transport.ws_url, self.id)
                token = await self._client.transport.ensure_token()
                final = await _progress.watch_socket_async(
                    url, token, relay, deadline, self.id
                )
                if final is not None:
                    self.progress_via = "websocket"
            if self.progress_via != "websocket":
                await self._poll(relay, deadline, poll_interval)
                self.progress_via = "polling"
            await self.refresh()
        finally:
            bar.close()
        self._check_outcome(raise_on_failure)
        return self

    async def _poll(
        self, relay: _progress.OnUpdate, deadline: _progress.Deadline, interval: float
    ) -> None:
        while True:
            relay(_progress.update_from_status(await self.refresh()))
            if self.done:
                return
            await asyncio.sleep(deadline.sleep_for(interval, self.id))

    async def cancel(self) -> CancelResult:
        """See :meth:`Backtest.cancel`."""
        state = await self.refresh()
        if state.status in TERMINAL:
            return CancelResult(
                self.id, state.status, "already finished: nothing to do"
            )
        response = await self._client.transport.request(
            "DELETE", f"/v1/backtest/{self.id}"
        )
        result = CancelResult.from_json(response.json())
        await self.refresh()
        return result

    async def delete(self) -> None:
        path = f"/v1/backtest/{self.id}"
        if (await self.refresh()).status not in TERMINAL:
            await self._client.transport.request("DELETE", path)
        await self._client.transport.request("DELETE", path)
        self.state = None

    async def chart(self, max_points: int | None = None) -> ChartData:
        response = await self._client.transport.request(
            "GET", self._path(CHART), params=query(max_points=max_points)
        )
        return ChartData.from_json(response.json())

    async def _full_chart(self) -> ChartData:
        limit = await self._client.transport.query_maximum("GET", CHART, "max_points")
        return await self.chart(max_points=limit or FALLBACK_MAX_POINTS)

    async def equity(self, column: str = "equity") -> pd.Series:
        """See :meth:`Backtest.equity`."""
        transport = self._client.transport
        if await transport.offers("GET", EQUITY_EXPORT):
            try:
                response = await transport.request(
                    "GET", self._path(EQUITY_EXPORT), params={"format": "json"}
                )
                return _frames.equity_from_export(response.json(), column)
            except NotFound:
                if transport.knows_routes:
                    raise
        return _frames.equity_from_chart(await self._full_chart(), column)

    async def drawdown(self) -> pd.Series:
        return _frames.drawdown_from_chart(await self._full_chart())

    async def iter_trades(
        self,
        *,
        symbol: str | None = None,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        sort: str | None = None,
        page_size: int = TRADE_PAGE,
    ) -> AsyncIterator[Trade]:
        params: dict[str, Any] | None = query(
            symbol=symbol, start_date=start_date, end_date=end_date, sort=sort,
            limit=page_size, offset=0,
        )  # fmt: skip
        url: str | None = self._path("/v1/backtest/{task_id}/trades")
        while url is not None:
            response = await self._client.transport.request("GET", url, params=params)
            for item in response.json():
                yield Trade.from_json(item)
            url, params = next_page(response), None

    async def trades(self, **filters: Any) -> pd.DataFrame:
        return _frames.trades_frame([t async for t in self.iter_trades(**filters)])

    async def analysis(self) -> dict[str, Any]:
        transport = self._client.transport
        if not await transport.offers("GET", ANALYSIS):
            raise _not_offered("GET", ANALYSIS, transport.base_url)
        response = await transport.request("GET", self._path(ANALYSIS))
        result: dict[str, Any] = response.json()
        return result

    async def report(self, path: str | Path | None = None) -> str:
        transport = self._client.transport
        if not await transport.offers("GET", REPORT):
            raise _not_offered("GET", REPORT, transport.base_url)
        response = await transport.request(
            "GET", self._path(REPORT), headers={"Accept": "text/html"}
        )
        if path is not None:
            Path(path).write_text(response.text, encoding="utf-8")
        return response.text


class AsyncBacktests:
    """``async_client.backtests``: see :class:`Backtests`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def submit(
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
    ) -> AsyncBacktest:
        """See :meth:`Backtests.submit`."""
        strategy_id = (
            None
            if strategy is None
            else await self._client.strategies.resolve(strategy)
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
        response = await self._client.transport.request(
            "POST", "/v1/backtest", json=body.to_json(),
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        created = BacktestCreated.from_json(response.json())
        return AsyncBacktest(self._client, created.task_id, _created_state(created))

    async def get(self, task_id: str) -> AsyncBacktest:
        backtest = AsyncBacktest(self._client, task_id)
        await backtest.refresh()
        return backtest

    async def history(
        self,
        *,
        status: str | None = None,
        sort: str | None = None,
        created_after: dt.datetime | dt.date | None = None,
        created_before: dt.datetime | dt.date | None = None,
        limit: int | None = 20,
    ) -> list[HistoryItem]:
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
            response = await self._client.transport.request("GET", url, params=params)
            items.extend(HistoryItem.from_json(i) for i in response.json())
            url, params = next_page(response), None
        return items if limit is None else items[:limit]
