"""Parameter sweeps (``client.sweeps``): ``POST /v1/sweeps``, ``GET /v1/sweeps/{id}``
and ``GET /v1/sweeps/{id}/results`` (paged like trades). A server without them raises
:class:`~backtest_client.errors.EndpointNotAvailable` before anything is sent.

The request body is ``{"base": <a backtest request>, "grid": {path: values}, ...}``
(README "Parameter sweeps"). Grid keys are dotted paths into ``base``; a bare name
that is not one of the request's own fields (``rebalancing``, ``execution``,
``commission``, ``slippage``) is taken as a strategy parameter
(``lookback`` → ``strategy_params.lookback``). Values are a list or a range
``{"start": 5, "stop": 50, "step": 5}`` (stop inclusive).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from backtest_client import _frames
from backtest_client._progress import Deadline
from backtest_client._requests import (
    TRADE_PAGE,
    DateLike,
    as_date,
    new_idempotency_key,
    next_page,
)
from backtest_client.backtests import _not_offered
from backtest_client.models import TERMINAL

if TYPE_CHECKING:
    import pandas as pd

    from backtest_client.client import AsyncClient, Client

SWEEPS = "/v1/sweeps"
SWEEP = "/v1/sweeps/{sweep_id}"
RESULTS = "/v1/sweeps/{sweep_id}/results"


_REQUEST_FIELDS = frozenset({"rebalancing", "execution", "commission", "slippage"})
_SWEEP_FIELDS = frozenset({"name", "objective", "walk_forward", "overfitting_blocks"})


def _grid_path(key: str) -> str:
    if "." in key or key in _REQUEST_FIELDS:
        return key
    return f"strategy_params.{key}"


def sweep_body(
    strategy_id: int | None,
    grid: Mapping[str, Sequence[Any] | Mapping[str, Any]],
    start: DateLike,
    end: DateLike,
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """``POST /v1/sweeps``'s body: sweep-level ``fields`` (name, objective,
    walk_forward, overfitting_blocks) at the top, the rest in ``base``."""
    base: dict[str, Any] = {
        "start_date": as_date(start, "start").isoformat(),
        "end_date": as_date(end, "end").isoformat(),
        **{k: v for k, v in fields.items() if v is not None and k not in _SWEEP_FIELDS},
    }
    if strategy_id is not None:
        base["strategy_id"] = strategy_id
    body: dict[str, Any] = {
        "base": base,
        "grid": {
            _grid_path(k): dict(v) if isinstance(v, Mapping) else list(v)
            for k, v in grid.items()
        },
    }
    body.update(
        {k: v for k, v in fields.items() if k in _SWEEP_FIELDS and v is not None}
    )
    return body


def _sweep_id(body: Mapping[str, Any]) -> str:
    for key in ("sweep_id", "id", "task_id"):
        if key in body:
            return str(body[key])
    raise ValueError(f"no sweep id in {dict(body)!r}")


class _SweepBase:
    def __init__(self, sweep_id: str, state: dict[str, Any] | None) -> None:
        self.id = sweep_id
        self.state = state or {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status}>"

    @property
    def status(self) -> str | None:
        status = self.state.get("status")
        return str(status) if status is not None else None

    def _path(self, template: str) -> str:
        return template.replace("{sweep_id}", self.id)


class Sweep(_SweepBase):
    def __init__(
        self, client: Client, sweep_id: str, state: dict[str, Any] | None = None
    ) -> None:
        super().__init__(sweep_id, state)
        self._client = client

    def refresh(self) -> dict[str, Any]:
        self.state = self._client.transport.request("GET", self._path(SWEEP)).json()
        return self.state

    def wait(
        self, *, timeout: float | None = None, poll_interval: float = 1.0
    ) -> Sweep:
        deadline = Deadline(timeout)
        while self.refresh().get("status") not in TERMINAL:
            time.sleep(deadline.sleep_for(poll_interval, self.id))
        return self

    def results(self, page_size: int = TRADE_PAGE) -> list[dict[str, Any]]:
        """Every result row, all pages."""
        rows: list[dict[str, Any]] = []
        url: str | None = self._path(RESULTS)
        params: dict[str, Any] | None = {"limit": page_size, "offset": 0}
        while url is not None:
            response = self._client.transport.request("GET", url, params=params)
            rows.extend(response.json())
            url, params = next_page(response), None
        return rows

    def results_frame(self) -> pd.DataFrame:
        return _frames.records_frame(self.results())


class Sweeps:
    """``client.sweeps``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _require(self, method: str, template: str) -> None:
        transport = self._client.transport
        if not transport.offers(method, template):
            raise _not_offered(method, template, transport.base_url)

    def submit(
        self,
        strategy: str | int | None = None,
        grid: Mapping[str, Sequence[Any] | Mapping[str, Any]] | None = None,
        *,
        start: DateLike,
        end: DateLike,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Sweep:
        """A sweep of ``strategy`` over ``grid`` (parameter → values); ``fields``
        are further backtest request fields (``benchmark="SPY"``, …)."""
        self._require("POST", SWEEPS)
        strategy_id = (
            None if strategy is None else self._client.strategies.resolve(strategy)
        )
        body = sweep_body(strategy_id, grid or {}, start, end, fields)
        response = self._client.transport.request(
            "POST", SWEEPS, json=body,
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
        )  # fmt: skip
        state = response.json()
        return Sweep(self._client, _sweep_id(state), state)

    def get(self, sweep_id: str) -> Sweep:
        self._require("GET", SWEEP)
        sweep = Sweep(self._client, sweep_id)
        sweep.refresh()
        return sweep


class AsyncSweep(_SweepBase):
    def __init__(
        self, client: AsyncClient, sweep_id: str, state: dict[str, Any] | None = None
    ) -> None:
        super().__init__(sweep_id, state)
        self._client = client

    async def refresh(self) -> dict[str, Any]:
        response = await self._client.transport.request("GET", self._path(SWEEP))
        self.state = response.json()
        return self.state

    async def wait(
        self, *, timeout: float | None = None, poll_interval: float = 1.0
    ) -> AsyncSweep:
        deadline = Deadline(timeout)
        while (await self.refresh()).get("status") not in TERMINAL:
            await asyncio.sleep(deadline.sleep_for(poll_interval, self.id))
        return self

    async def results(self, page_size: int = TRADE_PAGE) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        url: str | None = self._path(RESULTS)
        params: dict[str, Any] | None = {"limit": page_size, "offset": 0}
        while url is not None:
            response = await self._client.transport.request("GET", url, params=params)
            rows.extend(response.json())
            url, params = next_page(response), None
        return rows

    async def results_frame(self) -> pd.DataFrame:
        return _frames.records_frame(await self.results())


class AsyncSweeps:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _require(self, method: str, template: str) -> None:
        transport = self._client.transport
        if not await transport.offers(method, template):
            raise _not_offered(method, template, transport.base_url)

    async def submit(
        self,
        strategy: str | int | None = None,
        grid: Mapping[str, Sequence[Any] | Mapping[str, Any]] | None = None,
        *,
        start: DateLike,
        end: DateLike,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> AsyncSweep:
        await self._require("POST", SWEEPS)
        strategy_id = (
            None
            if strategy is None
            else await self._client.strategies.resolve(strategy)
        )
        body = sweep_body(strategy_id, grid or {}, start, end, fields)
        response = await self._client.transport.request(
            "POST", SWEEPS, json=body,
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
        )  # fmt: skip
        state = response.json()
        return AsyncSweep(self._client, _sweep_id(state), state)

    async def get(self, sweep_id: str) -> AsyncSweep:
        await self._require("GET", SWEEP)
        sweep = AsyncSweep(self._client, sweep_id)
        await sweep.refresh()
        return sweep
