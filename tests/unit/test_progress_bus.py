"""The in-process progress bus of embedded mode (the Redis one is covered by the
integration tests against a real Redis)."""

from __future__ import annotations

import asyncio
import threading

from app.jobs.progress import InMemoryBus


async def test_in_memory_bus_delivers_from_another_thread_in_order() -> None:
    bus = InMemoryBus()
    async with bus.subscribe("job") as messages:
        sender = threading.Thread(
            target=lambda: [bus.publish("job", {"n": i}) for i in range(5)]
        )
        sender.start()
        got = [await asyncio.wait_for(anext(messages), 2) for _ in range(5)]
        sender.join()
    assert [m["n"] for m in got] == [0, 1, 2, 3, 4]


async def test_in_memory_bus_isolates_jobs_and_forgets_closed_subscribers() -> None:
    bus = InMemoryBus()
    async with bus.subscribe("a") as a_messages:
        bus.publish("b", {"x": 1})
        bus.publish("a", {"x": 2})
        assert (await asyncio.wait_for(anext(a_messages), 2)) == {"x": 2}
    bus.publish("a", {"x": 3})  # no subscriber left: dropped, no error
    assert not bus._subscribers


async def test_in_memory_bus_slow_consumer_keeps_the_latest_messages() -> None:
    bus = InMemoryBus()
    async with bus.subscribe("job") as messages:
        for i in range(300):  # more than the queue holds
            bus.publish("job", {"n": i})
        await asyncio.sleep(0.05)  # let call_soon_threadsafe callbacks run
        first = await asyncio.wait_for(anext(messages), 2)
        assert first["n"] > 0  # oldest dropped...
        rest = [first]
        while True:
            try:
                rest.append(await asyncio.wait_for(anext(messages), 0.05))
            except TimeoutError:
                break
    assert rest[-1]["n"] == 299  # ...the newest (e.g. terminal) message never


async def test_in_memory_bus_cancel_flag() -> None:
    bus = InMemoryBus()
    assert not bus.cancel_requested("job")
    await bus.request_cancel("job")
    assert bus.cancel_requested("job")
    assert not bus.cancel_requested("other")
