"""The API's shared Redis subscriber (``RedisBus.subscribe``) against a real,
private redis-server: fan-out, isolation, one connection for many subscribers,
channels released by the last subscriber, and recovery after a Redis restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import redis

from app.jobs.progress import RedisBus, progress_channel
from tests.integration.conftest import require_redis
from tests.integration.stack import ManagedProcess, start_redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[ManagedProcess]:
    server = start_redis_server(tmp_path)
    if server is None:
        require_redis()
        pytest.fail("redis-server binary missing")  # require_redis skips otherwise
    yield server
    server.stop()


@pytest.fixture
async def bus(redis_server: ManagedProcess) -> AsyncIterator[RedisBus]:
    bus = RedisBus(f"{redis_server.base_url}/0")
    yield bus
    await bus.aclose()


def _publisher(server: ManagedProcess) -> redis.Redis:
    return redis.Redis.from_url(f"{server.base_url}/0")


def _pubsub_clients(server: ManagedProcess) -> int:
    clients = _publisher(server).client_list()
    return sum(1 for c in clients if int(c.get("sub", 0)) > 0)


async def _next(messages: AsyncIterator[dict[str, object]]) -> dict[str, object]:
    return await asyncio.wait_for(anext(aiter(messages)), timeout=3)


async def test_many_subscribers_share_one_connection_and_each_gets_its_own_job(
    bus: RedisBus, redis_server: ManagedProcess
) -> None:
    publisher = _publisher(redis_server)
    async with AsyncExitStack() as stack:
        streams = {
            (job, n): await stack.enter_async_context(bus.subscribe(job))
            for job in ("a", "b", "c")
            for n in range(20)
        }
        # Subscribed means confirmed by Redis: a publish right now is delivered.
        assert publisher.publish(progress_channel("b"), json.dumps({"p": 1})) == 1
        assert publisher.publish(progress_channel("a"), json.dumps({"p": 2})) == 1
        for (job, _), messages in streams.items():
            if job == "c":
                continue
            assert await _next(messages) == {"p": 1 if job == "b" else 2}
        assert _pubsub_clients(redis_server) == 1
        with pytest.raises(TimeoutError):  # nothing was published for job c
            await asyncio.wait_for(anext(aiter(streams[("c", 0)])), timeout=0.3)
    # The last subscriber out unsubscribes: Redis holds no channel any more.
    channels = [progress_channel(j) for j in "abc"]
    unsubscribed = [(c.encode(), 0) for c in channels]
    deadline = time.monotonic() + 5
    while publisher.pubsub_numsub(*channels) != unsubscribed:
        assert time.monotonic() < deadline, publisher.pubsub_numsub(*channels)
        await asyncio.sleep(0.02)


async def test_a_subscriber_leaving_does_not_unsubscribe_the_others(
    bus: RedisBus, redis_server: ManagedProcess
) -> None:
    publisher = _publisher(redis_server)
    async with bus.subscribe("job") as staying:
        async with bus.subscribe("job"):
            pass
        publisher.publish(progress_channel("job"), json.dumps({"status": "running"}))
        assert await _next(staying) == {"status": "running"}


async def test_messages_flow_again_after_redis_restarts(
    bus: RedisBus, redis_server: ManagedProcess, tmp_path: Path
) -> None:
    port = int(str(redis_server.base_url).rsplit(":", 1)[1])
    async with bus.subscribe("job") as messages:
        redis_server.stop()
        restarted = start_redis_server(tmp_path / "again", port=port)
        assert restarted is not None
        try:
            publisher = _publisher(restarted)
            # redis-py re-subscribes on reconnect; publish until it has.
            for _ in range(100):
                if publisher.publish(progress_channel("job"), json.dumps({"n": 1})):
                    break
                await asyncio.sleep(0.1)
            assert await _next(messages) == {"n": 1}
        finally:
            restarted.stop()
