"""A sweep shared by several Celery workers gives the same rows as one worker.

The fan-out stack cuts sweeps into chunks of 2 combinations (``SWEEP_CHUNK_SIZE``)
and runs two prefork workers of two processes each; the embedded server (default
chunk of 64: one chunk, one worker thread) is the reference. The stacks' engines
sleep 0.06 s per combination, so helpers get chunks before the coordinator has
done them all, and a cancel lands mid-sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import start_live_stack
from tests.integration.stack import LiveApi, LiveStack, StackOptions
from tests.integration.test_sweeps_flow import MOMENTUM, _rows, _run_sweep

pytestmark = pytest.mark.integration
CANCEL_STOP_BOUND_SECONDS = 2.0


@pytest.fixture(scope="module")
def fanout_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        # 0.25 s a combination: the cancel test's 60 combinations take ~4 s on the
        # 2 x 2 processes, so the DELETE lands mid-sweep however fast the engine is
        chunk_delay_seconds=0.25,
        redis_db=11,
        extra_env={"SWEEP_CHUNK_SIZE": "2"},
    )
    with start_live_stack(options, tmp_path_factory.mktemp("fanout")) as stack:
        stack.start_worker()  # a second worker process: 2 x 2 pool processes
        yield stack


async def _sweep_rows(stack: LiveApi) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    user = stack.make_user()
    async with stack.client(user) as http:
        done = await _run_sweep(http, MOMENTUM)
        return done, await _rows(http, done["sweep_id"])


async def test_chunked_sweep_on_two_workers_equals_one_worker(
    fanout_stack: LiveStack, embedded_server: LiveApi
) -> None:
    shared, shared_rows = await _sweep_rows(fanout_stack)
    single, single_rows = await _sweep_rows(embedded_server)

    owners = fanout_stack.query(
        "SELECT count(*), count(DISTINCT claim_token) FROM sweep_chunks "
        "WHERE sweep_id = %s",
        shared["sweep_id"],
    )
    assert owners[0][0] == 5  # 10 combinations in chunks of 2
    assert owners[0][1] >= 2  # more than one worker process ran chunks
    assert shared_rows == single_rows  # params, metrics, psr: identical
    assert shared["overfitting"] == single["overfitting"]
    assert shared["best"] == single["best"]


async def test_cancel_stops_every_chunk_within_the_bound(
    fanout_stack: LiveStack,
) -> None:
    user = fanout_stack.make_user()
    body = {**MOMENTUM, "grid": {"strategy_params.lookback": list(range(30, 90))}}
    async with fanout_stack.client(user) as http:
        created = await http.post("/v1/sweeps", json=body)
        sid = created.json()["sweep_id"]
        deadline = time.monotonic() + 60
        while (await http.get(f"/v1/sweeps/{sid}")).json()["combinations_done"] < 6:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await http.delete(f"/v1/sweeps/{sid}")
        await asyncio.sleep(CANCEL_STOP_BOUND_SECONDS)
        first = await http.get(f"/v1/sweeps/{sid}/results", params={"limit": 1})
        await asyncio.sleep(1.0)
        later = await http.get(f"/v1/sweeps/{sid}/results", params={"limit": 1})

    kept = int(first.headers["X-Total-Count"])
    assert 6 <= kept < 60
    assert int(later.headers["X-Total-Count"]) == kept
    done_chunks = fanout_stack.query(
        "SELECT count(*) FROM sweep_chunks WHERE sweep_id = %s AND status = 'done'",
        sid,
    )
    assert done_chunks[0][0] < 30
