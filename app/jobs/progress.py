"""Progress fan-out and cancel flags between workers and the API.

Two implementations behind one interface, chosen by the run mode:

* :class:`RedisBus` (distributed): progress goes through Redis pub/sub on channel
  ``job:{id}:progress``; a cancel request is a key ``job:{id}:cancel`` (with a
  TTL) that the worker polls between chunks. Workers publish with the synchronous
  client (Celery tasks are synchronous); the API subscribes with redis-py's asyncio
  client (``aioredis`` was merged into redis-py) through one :class:`_SharedSubscriber`
  per process: a single pub/sub connection whose channels follow the open sockets,
  fanned out to per-socket queues, so a WebSocket connect costs a SUBSCRIBE on an
  open connection, not a new connection (and 200 sockets are 1 Redis client, not 200).
* :class:`InMemoryBus` (embedded): the worker thread lives in the API process, so
  messages are handed to each subscriber's asyncio queue with ``call_soon_threadsafe``.

Pub/sub is fire-and-forget: a subscriber that connects late first reads the job's row
(the database is the source of truth), then follows the live messages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import redis
import redis.asyncio as aredis
from pydantic import BaseModel, ConfigDict, computed_field

from app.db.models import TERMINAL_STATUSES, JobStatus
from app.jobs.repository import JobView

Message = dict[str, Any]
CANCEL_TTL_SECONDS = 24 * 3600
_QUEUE_LIMIT = 256


def progress_channel(task_id: str) -> str:
    return f"job:{task_id}:progress"


def cancel_key(task_id: str) -> str:
    return f"job:{task_id}:cancel"


class ProgressBus(ABC):
    """Worker-side methods are synchronous and thread-safe; API-side ones are async."""

    @abstractmethod
    def publish(self, task_id: str, message: Message) -> None: ...

    @abstractmethod
    def cancel_requested(self, task_id: str) -> bool: ...

    @abstractmethod
    async def request_cancel(self, task_id: str) -> None: ...

    @abstractmethod
    def subscribe(self, task_id: str) -> Any:
        """``async with bus.subscribe(id) as messages: async for m in messages: ...``"""

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass


class InMemoryBus(ProgressBus):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[
            str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message]]]
        ] = {}
        self._cancelled: set[str] = set()

    def publish(self, task_id: str, message: Message) -> None:
        with self._lock:
            targets = list(self._subscribers.get(task_id, ()))
        for loop, queue in targets:
            with suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(_offer, queue, message)

    def cancel_requested(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._cancelled

    async def request_cancel(self, task_id: str) -> None:
        with self._lock:
            self._cancelled.add(task_id)

    @asynccontextmanager
    async def subscribe(self, task_id: str) -> AsyncIterator[AsyncIterator[Message]]:
        entry = (
            asyncio.get_running_loop(),
            asyncio.Queue[Message](maxsize=_QUEUE_LIMIT),
        )
        with self._lock:
            self._subscribers.setdefault(task_id, set()).add(entry)
        try:
            yield _drain(entry[1])
        finally:
            with self._lock:
                subs = self._subscribers.get(task_id)
                if subs is not None:
                    subs.discard(entry)
                    if not subs:
                        del self._subscribers[task_id]


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    """Enqueue, dropping the oldest message for a slow consumer (progress is lossy,
    only the latest state matters; the terminal message is never the one dropped)."""
    if queue.full():
        with suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(message)


async def _drain(queue: asyncio.Queue[Message]) -> AsyncIterator[Message]:
    while True:
        yield await queue.get()


class RedisBus(ProgressBus):
    def __init__(self, url: str) -> None:
        self._url = url
        self._sync: redis.Redis | None = None
        self._sync_pid = 0
        self._async: aredis.Redis | None = None
        self._subscriber: _SharedSubscriber | None = None

    def _client(self) -> redis.Redis:
        # Celery's prefork children must not share their parent's sockets.
        if self._sync is None or self._sync_pid != os.getpid():
            self._sync = redis.Redis.from_url(
                self._url, socket_timeout=5, health_check_interval=30
            )
            self._sync_pid = os.getpid()
        return self._sync

    def _aclient(self) -> aredis.Redis:
        if self._async is None:
            self._async = aredis.Redis.from_url(self._url, socket_timeout=5)
        return self._async

    def publish(self, task_id: str, message: Message) -> None:
        self._client().publish(
            progress_channel(task_id), json.dumps(message, default=str)
        )

    def cancel_requested(self, task_id: str) -> bool:
        return bool(self._client().exists(cancel_key(task_id)))

    async def request_cancel(self, task_id: str) -> None:
        await self._aclient().set(cancel_key(task_id), "1", ex=CANCEL_TTL_SECONDS)

    @asynccontextmanager
    async def subscribe(self, task_id: str) -> AsyncIterator[AsyncIterator[Message]]:
        loop = asyncio.get_running_loop()
        if self._subscriber is None or self._subscriber.loop is not loop:
            # One per event loop (a process has one; tests may run several).
            self._subscriber = _SharedSubscriber(self._aclient())
        async with self._subscriber.subscribe(progress_channel(task_id)) as queue:
            yield _drain(queue)

    async def ping(self) -> bool:
        return bool(await self._aclient().ping())

    async def aclose(self) -> None:
        if self._subscriber is not None:
            await self._subscriber.aclose()
            self._subscriber = None
        if self._async is not None:
            await self._async.aclose()
            self._async = None


class _SharedSubscriber:
    """One pub/sub connection for all of a process's subscribers.

    ``subscribe(channel)`` registers a queue and, for the channel's first subscriber,
    sends SUBSCRIBE and waits (up to ``CONFIRM_TIMEOUT``) for Redis to confirm it, so
    a caller that reads the database *after* subscribing misses nothing in between.
    One reader task hands each message to the channel's queues (``_offer``: a slow
    consumer loses its oldest messages, never blocks the others); the last one out
    UNSUBSCRIBEs. If Redis goes away the reader keeps retrying; redis-py re-subscribes
    the current channels when it reconnects, and the WebSocket's database poll covers
    the gap."""

    CONFIRM_TIMEOUT = 2.0
    RETRY_SECONDS = 0.5

    def __init__(self, client: aredis.Redis) -> None:
        self.loop = asyncio.get_running_loop()
        self._pubsub = client.pubsub()
        self._queues: dict[str, set[asyncio.Queue[Message]]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()  # serialises SUBSCRIBE/UNSUBSCRIBE bookkeeping
        self._reader: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Message]]:
        queue = asyncio.Queue[Message](maxsize=_QUEUE_LIMIT)
        async with self._lock:
            queues = self._queues.setdefault(channel, set())
            queues.add(queue)
            confirmed = self._confirmed.get(channel)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.Event()
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException as exc:
                    self._forget(channel, queue)
                    if isinstance(exc, Exception) and not isinstance(
                        exc, redis.RedisError
                    ):
                        # While the reader task is reconnecting the shared socket
                        # redis-py can fail a send with a bare AttributeError (its
                        # writer is gone): that is the outage, not a bug.
                        raise redis.ConnectionError(
                            "Redis pub/sub connection unavailable"
                        ) from exc
                    raise
            self._ensure_reader()
        with suppress(TimeoutError):
            await asyncio.wait_for(confirmed.wait(), self.CONFIRM_TIMEOUT)
        try:
            yield queue
        finally:
            async with self._lock:
                if self._forget(channel, queue):
                    with suppress(Exception):  # Redis down: nothing to undo there
                        await self._pubsub.unsubscribe(channel)

    def _forget(self, channel: str, queue: asyncio.Queue[Message]) -> bool:
        """Drop ``queue``; True when it was the channel's last one."""
        queues = self._queues.get(channel)
        if queues is None:
            return False
        queues.discard(queue)
        if queues:
            return False
        del self._queues[channel]
        self._confirmed.pop(channel, None)
        return True

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_forever())

    async def _read_forever(self) -> None:
        while True:
            try:
                # get_message with a timeout, not listen(): listen() blocks on a
                # socket read that the client's socket_timeout turns into an error
                # after a few quiet seconds, normal for progress.
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                raw = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis unreachable or restarting: retry
                await asyncio.sleep(self.RETRY_SECONDS)
                continue
            if raw is not None:
                self._dispatch(raw)

    def _dispatch(self, raw: dict[str, Any]) -> None:
        channel = raw.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if not isinstance(channel, str):
            return
        if raw.get("type") == "subscribe":
            if (event := self._confirmed.get(channel)) is not None:
                event.set()
            return
        if raw.get("type") != "message":
            return
        queues = self._queues.get(channel)
        if not queues:
            return
        try:
            message = json.loads(raw["data"])
        except ValueError:
            return
        for queue in queues:
            _offer(queue, message)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        with suppress(Exception):
            await self._pubsub.aclose()


_bus: ProgressBus | None = None
_bus_lock = threading.Lock()


def get_bus(redis_url: str | None) -> ProgressBus:
    """The process-wide bus for this run mode (created on first use)."""
    global _bus  # noqa: PLW0603 - one bus per process, shared by API and in-process worker
    with _bus_lock:
        if _bus is None:
            _bus = RedisBus(redis_url) if redis_url else InMemoryBus()
        return _bus


class ProgressMessage(BaseModel):
    """One progress frame of any job: what the worker publishes, what the WebSocket
    relay sends (first the stored state, then live frames) and what pub/sub carries.
    Built only here; every sender uses these constructors.

    ``current_date`` (the simulated date reached) and ``fills_executed`` (fills so
    far: executed buys and sells) are the backtest's detail; ``trades_executed`` is
    the same count under its older name, kept for compatibility. A kind may add its
    own fields (``extra``).
    """

    model_config = ConfigDict(extra="allow")

    status: str
    progress: float
    current_date: dt.date | None = None
    eta_seconds: float | None = None
    trades_executed: int = 0
    message: str | None = None
    # While ``queued``: the estimated position (1 = next) and ``eta_seconds`` is the
    # estimated wait (app.jobs.scheduler); null otherwise.
    queue_position: int | None = None
    # While ``running``: the step the job is in, null until the kind hands the
    # runner its plan (a kind without one: null until "saving"), then e.g. a
    # backtest's "window", "factors", "simulation", "ledger", "metrics", "analysis",
    # "saving" (app.backtests.cost). ``progress``
    # is phase-weighted and never goes down, ``eta_seconds`` the predicted rest
    # (README "Progress and ETA").
    phase: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fills_executed(self) -> int:
        """Fills so far (the clear name of ``trades_executed``)."""
        return self.trades_executed

    def frame(self) -> Message:
        """The JSON object sent on the wire."""
        return self.model_dump(mode="json")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def running(
        cls,
        *,
        fraction: float,
        current_date: dt.date | None,
        eta_seconds: float | None,
        work_done: int,
        phase: str | None = None,
    ) -> ProgressMessage:
        """A live frame: progress stays below 100 until the results are saved."""
        return cls(
            status=JobStatus.RUNNING.value,
            progress=round(min(100.0 * fraction, 99.9), 2),
            current_date=current_date,
            eta_seconds=None if eta_seconds is None else round(eta_seconds, 3),
            trades_executed=work_done,
            phase=phase,
        )

    @classmethod
    def of_row(
        cls,
        row: JobView,
        *,
        queue_position: int | None = None,
        queue_eta_seconds: float | None = None,
    ) -> ProgressMessage:
        """The stored state of a job (sent first on connect, and when polling);
        a queued job's estimated position and wait when given."""
        eta = 0.0 if row.status in TERMINAL_STATUSES else queue_eta_seconds
        return cls(
            status=row.status,
            progress=row.progress,
            current_date=row.current_date,
            eta_seconds=eta,
            trades_executed=row.trades_executed,
            message=row.error,
            queue_position=queue_position,
        )

    @classmethod
    def ended(
        cls,
        status: str,
        row: JobView,
        *,
        message: str | None,
        progress: float | None = None,
    ) -> ProgressMessage:
        """A terminal frame (failed, cancelled) at the progress the run reached
        (``progress``, percent), else the row's: a bar never drops on cancel."""
        return cls(
            status=status,
            progress=row.progress if progress is None else round(progress, 2),
            current_date=row.current_date,
            eta_seconds=0.0,
            trades_executed=row.trades_executed,
            message=message,
        )

    @classmethod
    def completed(
        cls, *, current_date: dt.date | None, work_done: int
    ) -> ProgressMessage:
        return cls(
            status=JobStatus.COMPLETED.value,
            progress=100.0,
            current_date=current_date,
            eta_seconds=0.0,
            trades_executed=work_done,
        )

    @classmethod
    def cancelled(cls, label: str, *, progress: float = 0.0) -> ProgressMessage:
        """Sent by the API when it cancels a job (the worker may not be running), at
        the progress the job had reached (its row's), not 0."""
        return cls(
            status=JobStatus.CANCELLED.value,
            progress=progress,
            message=f"{label} cancelled.",
        )
