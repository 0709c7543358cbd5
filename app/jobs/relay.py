"""The WebSocket relay of job progress, for every kind: a domain declares its socket
route (``WS /v1/backtest/{task_id}/progress``) and hands it to :func:`serve_progress`.

Protocol: authenticate with ``?token=<JWT>`` or the ``Sec-WebSocket-Protocol`` header
(``bearer, <JWT>``; the server then selects ``bearer``). On connect the current state
is sent at once (a reconnect resumes), then every update
``{status, progress, current_date, eta_seconds, fills_executed, trades_executed,
message, phase}`` (``trades_executed``: the fill count under its older name; while a
job runs the worker sends one at least every second, ``app.jobs.runner``); after the
terminal message the server closes with 1000. Close codes: 4001 bad or expired token,
4003 origin not allowed, 4004 unknown job of that kind (or not yours), 4029 too many
connections of this user (``WS_MAX_CONNECTIONS_PER_USER``), 1009 client frame too
large, 1013 the database or Redis is unavailable (reconnect later), 1012 server
restarting, 1000 after a terminal state or 5 minutes without news.

Pub/sub is lossy by nature, so when no message arrives for a few seconds the relay
re-reads the job's row and sends it if it changed: a lost terminal message costs a
client a few seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.accounts import service as users_service
from app.accounts.sessions import revocations_of
from app.api.deps import limiter_of, read_connection
from app.core.config import Settings
from app.core.errors import Unauthorized
from app.db.models import TERMINAL_STATUSES
from app.jobs import registry, service
from app.jobs import repository as jobs_repo
from app.jobs.progress import ProgressMessage, get_bus
from app.jobs.repository import JobView

IDLE_CLOSE_SECONDS = 300.0
POLL_SECONDS = 3.0
MAX_CLIENT_FRAME_BYTES = 4096
CLOSE_BAD_TOKEN, CLOSE_FORBIDDEN_ORIGIN, CLOSE_NOT_FOUND = 4001, 4003, 4004
CLOSE_TOO_BIG = 1009
CLOSE_TOO_MANY = 4029  # WS_MAX_CONNECTIONS_PER_USER open already


def _origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Browsers send Origin; non-browser clients usually don't. Without an explicit
    allow-list only same-origin pages may connect."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    if settings.ws_allowed_origins:
        return origin in settings.ws_allowed_origins
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _token(websocket: WebSocket, token: str | None) -> tuple[str | None, str | None]:
    """(token, subprotocol to select) from the query or ``Sec-WebSocket-Protocol``."""
    if token:
        return token, None
    protocols = list(websocket.scope.get("subprotocols") or [])
    if len(protocols) >= 2 and protocols[0].lower() == "bearer":
        return protocols[1], protocols[0]
    return None, None


async def serve_progress(
    websocket: WebSocket, *, task_id: str, token: str | None, kind: str
) -> None:
    """Serve one progress socket of a ``kind`` job until a terminal state, the
    client leaving, or the idle limit."""
    settings: Settings = websocket.app.state.settings
    jwt, subprotocol = _token(websocket, token)
    # Accepted first, then closed: a client learns *why* (4003), which a refused
    # handshake (HTTP 403) cannot tell it.
    await websocket.accept(subprotocol=subprotocol)
    if not _origin_allowed(websocket, settings):
        await websocket.close(code=CLOSE_FORBIDDEN_ORIGIN, reason="origin not allowed")
        return
    try:
        viewer_id = await users_service.user_id_from_token(
            jwt or "", settings=settings, revocations=revocations_of(websocket.app)
        )
    except Unauthorized:
        await _close_bad_token(websocket)
        return
    # The connection slot (a Redis round trip) is taken while the socket subscribes
    # and reads the job: independent steps, so a connect waits for the slower one,
    # not for their sum. Nothing is sent before both have passed.
    connections = limiter_of(websocket.app).connections
    slot_request = asyncio.ensure_future(connections.acquire(str(viewer_id)))
    try:
        with contextlib.suppress(WebSocketDisconnect):
            await _serve(websocket, settings, task_id, kind, viewer_id, slot_request)
    finally:
        slot = await _outcome(slot_request)
        if slot is not None:
            await connections.release(str(viewer_id), slot)


async def _outcome(request: asyncio.Future[str | None]) -> str | None:
    """The slot ``request`` got (awaited even when the socket ended first, so a
    granted slot is always released); None if it was refused. ``acquire`` fails
    open on a Redis outage itself, so anything raised here is a bug and surfaces."""
    return await request


async def _close_bad_token(websocket: WebSocket) -> None:
    await websocket.close(code=CLOSE_BAD_TOKEN, reason="invalid or expired token")


async def _serve(  # noqa: PLR0917 - one socket's whole context
    websocket: WebSocket,
    settings: Settings,
    task_id: str,
    kind: str,
    viewer_id: uuid.UUID,
    slot_request: asyncio.Future[str | None],
) -> None:
    job_id = service.parse_id(task_id)
    bus = get_bus(settings.redis_url)
    async with contextlib.AsyncExitStack() as stack:
        messages: AsyncIterator[dict[str, Any]] = _nothing()
        if job_id is not None:
            messages = await stack.enter_async_context(bus.subscribe(str(job_id)))
        # One read after subscribing: the user row (still there?), the ownership
        # check and the first state at once, with no gap in which an update could be
        # missed. Nothing is sent before it passes (another user's job is the same
        # 4004 as an unknown one).
        async with read_connection(websocket.app.state.read_engine) as connection:
            viewer, row = await jobs_repo.get_with_viewer(
                connection, viewer_id=viewer_id, job_id=job_id, kind=kind
            )
        if viewer is None:
            await _close_bad_token(websocket)
            return
        if row is None or job_id is None:
            await websocket.close(code=CLOSE_NOT_FOUND, reason=_not_found(kind))
            return
        if await slot_request is None:
            limit = limiter_of(websocket.app).connections.limit
            reason = f"at most {limit} connections per user"
            await websocket.close(code=CLOSE_TOO_MANY, reason=reason)
            return
        async with read_connection(websocket.app.state.read_engine) as connection:
            state = await _state_of(connection, row, settings)
        await websocket.send_json(state)
        if state["status"] in TERMINAL_STATUSES:
            await websocket.close(code=1000)
            return
        sessionmaker = websocket.app.state.sessionmaker
        relay = asyncio.create_task(
            _relay(websocket, messages, sessionmaker, job_id, state, settings)
        )
        listen = asyncio.create_task(_listen(websocket))
        done, pending = await asyncio.wait(
            {relay, listen}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, asyncio.CancelledError):
                task.result()


def _not_found(kind: str) -> str:
    return f"{registry.get(kind).label.lower()} not found"


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield  # an empty async iterator (a malformed id subscribes to nothing)


async def _state_of(
    reader: AsyncSession | AsyncConnection, row: JobView, settings: Settings
) -> dict[str, Any]:
    """The stored state as a frame; a queued job's with its queue position and
    estimated wait (re-estimated at every poll)."""
    queue = await service.queue_estimate(reader, row, settings)
    if queue is None:
        return ProgressMessage.of_row(row).frame()
    return ProgressMessage.of_row(
        row, queue_position=queue.position, queue_eta_seconds=queue.eta_seconds
    ).frame()


async def _read_state(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    settings: Settings,
) -> dict[str, Any] | None:
    async with sessionmaker() as session:
        row = await jobs_repo.get(session, job_id)
        return None if row is None else await _state_of(session, row, settings)


async def _relay(  # noqa: PLR0917 - one socket's whole context
    websocket: WebSocket,
    messages: AsyncIterator[dict[str, Any]],
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    last_sent: dict[str, Any],
    settings: Settings,
) -> None:
    last_news = time.monotonic()
    iterator = aiter(messages)
    # One read of the iterator stays pending across poll timeouts: cancelling it (as
    # a bare wait_for would) closes the async generator for good, and the next read
    # raised StopAsyncIteration, killing the socket of any job silent for 3 s.
    next_message: asyncio.Future[dict[str, Any]] | None = None
    try:
        while time.monotonic() - last_news < IDLE_CLOSE_SECONDS:
            if next_message is None:
                next_message = asyncio.ensure_future(anext(iterator))
            try:
                message = await asyncio.wait_for(
                    asyncio.shield(next_message), timeout=POLL_SECONDS
                )
                next_message = None
            except TimeoutError:
                polled = await _read_state(sessionmaker, job_id, settings)
                if polled is None:
                    await websocket.close(code=CLOSE_NOT_FOUND, reason="job deleted")
                    return
                if polled == last_sent:
                    continue
                message = polled
            if _goes_backwards(message, last_sent):
                continue
            await websocket.send_json(message)
            last_sent, last_news = message, time.monotonic()
            if message["status"] in TERMINAL_STATUSES:
                await websocket.close(code=1000)
                return
        await websocket.close(code=1000, reason="idle")
    finally:
        if next_message is not None:
            next_message.cancel()


def _goes_backwards(message: dict[str, Any], last_sent: dict[str, Any]) -> bool:
    """A running job's progress never moves back for the client: the stored row lags
    the live messages (it is written at most every 0.5 s), and an old message may
    still be queued when a socket subscribes. Terminal messages always pass."""
    return (
        message.get("status") == "running"
        and last_sent.get("status") == "running"
        and float(message.get("progress") or 0) < float(last_sent.get("progress") or 0)
    )


async def _listen(websocket: WebSocket) -> None:
    """Consume client frames (pings); a frame over the limit closes with 1009."""
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        size = len(frame.get("text") or "") + len(frame.get("bytes") or b"")
        if size > MAX_CLIENT_FRAME_BYTES:
            await websocket.close(code=CLOSE_TOO_BIG, reason="frame too large")
            return
