"""Following a job: the progress WebSocket first, polling when the socket is refused
or ends early, and a tqdm bar (``tqdm.auto``: a widget in Jupyter, text elsewhere).

The socket authenticates with ``Sec-WebSocket-Protocol: bearer, <JWT>`` rather than
``?token=``, so the token stays out of URLs and access logs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect as connect_sync
from websockets.typing import Subprotocol

from backtest_client.errors import WaitTimeout
from backtest_client.models import TERMINAL, BacktestStatus, ProgressUpdate

OnUpdate = Callable[[ProgressUpdate], None]
# Failures after which polling takes over (the socket never carries the only truth:
# the job row does, and GET reads it).
SOCKET_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionClosed,
    InvalidHandshake,
    InvalidURI,
    ValueError,  # a frame that is not the documented JSON
)


def socket_url(ws_base: str, task_id: str) -> str:
    return f"{ws_base}/v1/backtest/{task_id}/progress"


def subprotocols(token: str | None) -> list[Subprotocol] | None:
    return [Subprotocol("bearer"), Subprotocol(token)] if token else None


def parse_frame(raw: str | bytes) -> ProgressUpdate:
    data: Any = json.loads(raw)
    if not isinstance(data, dict) or "status" not in data:
        raise ValueError(f"unexpected progress frame: {raw!r}")
    return ProgressUpdate.from_json(data)


def update_from_status(state: BacktestStatus) -> ProgressUpdate:
    return ProgressUpdate(
        status=state.status,
        progress=state.progress,
        current_date=state.current_date,
        trades_executed=state.trades_executed,
        message=state.error,
    )


class Deadline:
    def __init__(self, timeout: float | None) -> None:
        self.end = None if timeout is None else time.monotonic() + timeout

    def remaining(self, task_id: str) -> float | None:
        if self.end is None:
            return None
        left = self.end - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"backtest {task_id} still running after the timeout")
        return left

    def sleep_for(self, interval: float, task_id: str) -> float:
        left = self.remaining(task_id)
        return interval if left is None else min(interval, left)


class ProgressBar:
    """A tqdm bar from 0 to 100 %, fed with :class:`ProgressUpdate` s; a no-op when
    disabled."""

    def __init__(self, enabled: bool, label: str) -> None:
        self._bar: Any = None
        if enabled:
            self._bar = tqdm(
                total=100.0,
                desc=label,
                unit="%",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"
                " {postfix}",
            )
        self._shown = 0.0

    def __call__(self, update: ProgressUpdate) -> None:
        if self._bar is None:
            return
        target = 100.0 if update.status == "completed" else update.progress
        if target > self._shown:
            self._bar.update(target - self._shown)
            self._shown = target
        postfix: dict[str, object] = {
            "status": update.status,
            "trades": update.trades_executed,
        }
        if update.current_date is not None:
            postfix["date"] = update.current_date.isoformat()
        self._bar.set_postfix(postfix, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def fan_out(*callbacks: OnUpdate | None) -> OnUpdate:
    active = [c for c in callbacks if c is not None]

    def _call(update: ProgressUpdate) -> None:
        for callback in active:
            callback(update)

    return _call


def is_terminal(update: ProgressUpdate) -> bool:
    return update.status in TERMINAL


def watch_socket_sync(
    url: str, token: str | None, on_update: OnUpdate, deadline: Deadline, task_id: str
) -> ProgressUpdate | None:
    """Relay frames until a terminal one (returned); None when the socket could not
    be opened or closed before the end (the caller polls from there)."""
    try:
        with connect_sync(
            url, subprotocols=subprotocols(token), open_timeout=10, close_timeout=2
        ) as ws:
            while True:
                update = parse_frame(ws.recv(timeout=deadline.remaining(task_id)))
                on_update(update)
                if is_terminal(update):
                    return update
    except WaitTimeout:
        raise
    except SOCKET_ERRORS:
        return None


async def watch_socket_async(
    url: str, token: str | None, on_update: OnUpdate, deadline: Deadline, task_id: str
) -> ProgressUpdate | None:
    """See :func:`watch_socket_sync`."""
    try:
        async with connect_async(
            url, subprotocols=subprotocols(token), open_timeout=10, close_timeout=2
        ) as ws:
            while True:
                async with asyncio.timeout(deadline.remaining(task_id)):
                    raw = await ws.recv()
                update = parse_frame(raw)
                on_update(update)
                if is_terminal(update):
                    return update
    except WaitTimeout:
        raise
    except SOCKET_ERRORS:
        return None
