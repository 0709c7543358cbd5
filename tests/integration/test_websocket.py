"""``WS /v1/backtest/{id}/progress`` on the live stack (Redis pub/sub between the worker
and the API): both ways to authenticate, every close code a client can cause, the
state sent on connect, and resuming after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

import httpx
import jwt
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.jobs.relay import POLL_SECONDS
from tests.integration.stack import LiveStack, LiveUser, Watched, watch_progress

pytestmark = pytest.mark.integration

# Five years, 60 chunks of 0.06 s: running for ~4 s, long enough to reconnect.
LONG: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
}
SHORT: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture(scope="module")
def owner(live_stack: LiveStack) -> LiveUser:
    return live_stack.make_user()


@pytest.fixture(scope="module")
async def completed_id(live_stack: LiveStack, owner: LiveUser) -> str:
    async with live_stack.client(owner) as http:
        task_id = await _submit(http, SHORT)
        await live_stack.wait_status(http, task_id, {"completed"})
    return task_id


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/backtest", json=body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def _assert_full_run(watched: Watched) -> None:
    assert watched.statuses[-1] == "completed", watched.messages
    assert set(watched.statuses[:-1]) <= {"pending", "running"}
    progress = [m["progress"] for m in watched.messages]
    assert progress == sorted(progress)
    assert watched.close_code == 1000


# --- authentication -------------------------------------------------------------


async def test_ws_token_in_query_streams_to_completion(
    live_stack: LiveStack, owner: LiveUser
) -> None:
    async with live_stack.client(owner) as http:
        task_id = await _submit(http, SHORT)

    watched = await watch_progress(live_stack.ws_url, task_id, token=owner.token)

    print(f"\nWS first message after {watched.first_message_seconds:.3f} s (query)")
    _assert_full_run(watched)
    assert watched.subprotocol is None


async def test_ws_bearer_subprotocol_streams_to_completion(
    live_stack: LiveStack, owner: LiveUser
) -> None:
    async with live_stack.client(owner) as http:
        task_id = await _submit(http, SHORT)

    watched = await watch_progress(live_stack.ws_url, task_id, bearer=owner.token)

    print(f"\nWS first message after {watched.first_message_seconds:.3f} s (header)")
    _assert_full_run(watched)
    assert watched.subprotocol == "bearer"  # the server selected it


def _token(stack: LiveStack, user: LiveUser, **claims: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    base = {"sub": user.id, "iat": now, "exp": now + dt.timedelta(minutes=5)}
    return jwt.encode({**base, **claims}, stack.jwt_secret, algorithm="HS256")


@pytest.mark.parametrize("case", ["garbage", "expired", "wrong-secret", "missing"])
@pytest.mark.parametrize("channel", ["query", "subprotocol"])
async def test_ws_bad_token_closes_4001(
    live_stack: LiveStack,
    owner: LiveUser,
    completed_id: str,
    case: str,
    channel: str,
) -> None:
    now = dt.datetime.now(dt.UTC)
    token = {
        "garbage": "not.a.jwt",
        "expired": _token(live_stack, owner, exp=now - dt.timedelta(seconds=5)),
        "wrong-secret": jwt.encode(
            {"sub": owner.id, "iat": now, "exp": now + dt.timedelta(minutes=5)},
            "z" * 48,
            algorithm="HS256",
        ),
        "missing": None,
    }[case]
    url = live_stack.ws_url

    if channel == "query":
        watched = await watch_progress(url, completed_id, token=token)
    else:
        watched = await watch_progress(url, completed_id, bearer=token)

    assert (watched.close_code, watched.messages) == (4001, [])


# --- which backtest -------------------------------------------------------------


@pytest.mark.parametrize("which", ["other-users", "unknown", "malformed"])
async def test_ws_job_you_cannot_see_closes_4004(
    live_stack: LiveStack, completed_id: str, which: str
) -> None:
    stranger = live_stack.make_user()
    task_id = {
        "other-users": completed_id,
        "unknown": "6f1c1a62-0000-4000-8000-000000000000",
        "malformed": "not-a-uuid",
    }[which]

    watched = await watch_progress(live_stack.ws_url, task_id, token=stranger.token)

    assert (watched.close_code, watched.messages) == (4004, [])


async def test_ws_completed_job_sends_one_message_then_closes(
    live_stack: LiveStack, owner: LiveUser, completed_id: str
) -> None:
    watched = await watch_progress(live_stack.ws_url, completed_id, token=owner.token)

    [message] = watched.messages
    assert message["status"] == "completed"
    assert message["progress"] == 100
    assert message["eta_seconds"] == 0
    assert message["trades_executed"] > 0
    assert watched.close_code == 1000


async def test_ws_reconnect_mid_run_resumes_with_current_state(
    live_stack: LiveStack, owner: LiveUser
) -> None:
    async with live_stack.client(owner) as http:
        task_id = await _submit(http, LONG)

        first = await watch_progress(
            live_stack.ws_url,
            task_id,
            token=owner.token,
            until=lambda m: m["status"] == "running" and m["progress"] >= 10,
        )
        seen = first.messages[-1]
        # The row is the state a reconnect starts from; the worker writes it at most
        # every 0.5 s (pub/sub is more frequent), so wait until it has moved on.
        stored = await _wait_stored_progress(http, task_id, above=seen["progress"])
        second = await watch_progress(live_stack.ws_url, task_id, token=owner.token)
        final = (await http.get(f"/v1/backtest/{task_id}")).json()

    resumed = second.messages[0]
    print(
        f"\nreconnect: left at {seen['progress']}%, stored {stored}%, resumed at "
        f"{resumed['progress']}% (first message after "
        f"{second.first_message_seconds:.3f} s)"
    )
    assert resumed["status"] == "running"
    assert resumed["current_date"] >= seen["current_date"]
    assert resumed["progress"] >= stored > seen["progress"]
    _assert_full_run(second)
    assert final["status"] == "completed"


async def _wait_stored_progress(
    http: httpx.AsyncClient, task_id: str, *, above: float
) -> float:
    for _ in range(600):
        body = (await http.get(f"/v1/backtest/{task_id}")).json()
        assert body["status"] == "running", body  # a 4 s run: far from its end
        if body["progress"] > above:
            progress: float = body["progress"]
            return progress
        await asyncio.sleep(0.05)
    pytest.fail(f"stored progress of {task_id} stayed at or below {above}%")


async def test_ws_job_queued_longer_than_the_poll_interval_still_streams(
    live_stack: LiveStack, owner: LiveUser
) -> None:
    """A socket with no news for POLL_SECONDS (3 s) re-reads the row and keeps
    listening. (It used to cancel the pending read of the pub/sub iterator, which
    closes an async generator for good: the next read raised StopAsyncIteration and
    the socket died with 1006 while the job was still queued.)"""
    async with live_stack.client(owner) as http:
        blockers = [await _submit(http, LONG) for _ in range(2)]  # both slots busy
        for blocker in blockers:
            await live_stack.wait_status(http, blocker, {"running"})
        queued = await _submit(http, SHORT)
        watch = asyncio.create_task(
            watch_progress(live_stack.ws_url, queued, token=owner.token)
        )
        await asyncio.sleep(POLL_SECONDS + 1.5)  # silence: the job is still queued
        for blocker in blockers:
            await http.delete(f"/v1/backtest/{blocker}")

        watched = await watch

    assert watched.statuses[0] == "pending"
    _assert_full_run(watched)


async def _first_frame(url: str, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
    ws = await stack.enter_async_context(connect(url, open_timeout=30))
    frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    return frame


async def test_ws_a_users_sixth_socket_closes_4029_until_one_is_freed(
    live_stack: LiveStack,
) -> None:
    """``WS_MAX_CONNECTIONS_PER_USER`` (5) on the live server: the sixth socket gets
    4029, and a closed socket's slot is given back."""
    user = live_stack.make_user()
    async with live_stack.client(user) as http:
        task_id = await _submit(http, LONG)
        url = f"{live_stack.ws_url}/v1/backtest/{task_id}/progress?token={user.token}"
        try:
            async with contextlib.AsyncExitStack() as held:
                for _ in range(5):
                    frame = await _first_frame(url, held)
                    assert frame["status"] in {"pending", "running"}, frame
                async with connect(url, open_timeout=30) as sixth:
                    with pytest.raises(ConnectionClosed) as refused:
                        await asyncio.wait_for(sixth.recv(), 10)
                assert refused.value.rcvd is not None
                assert refused.value.rcvd.code == 4029
                assert "at most 5 connections" in refused.value.rcvd.reason
            # All five closed: their slots come back once the server has noticed.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                async with contextlib.AsyncExitStack() as again:
                    try:
                        frames = [await _first_frame(url, again) for _ in range(5)]
                        break
                    except ConnectionClosed:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                await asyncio.sleep(0.2)
            assert all(f["status"] in {"pending", "running"} for f in frames)
        finally:
            await http.delete(f"/v1/backtest/{task_id}")
