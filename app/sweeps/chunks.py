"""Sharing one sweep between workers: rows are cut into chunks that any worker
claims from the ``sweep_chunks`` table (a guarded update, so each chunk has one
owner at a time) and runs, writing its rows every ``FLUSH_SECONDS``.

The sweep's job (the *coordinator*, :mod:`app.sweeps.run`) cuts the chunks, asks
for helpers (``sweeps.chunks`` tasks, :mod:`app.sweeps.tasks`), works through
chunks itself, then waits for the helpers' chunks, taking over any whose heartbeat
went stale (a helper that died). Helpers stop when none is left to claim or the
sweep is no longer running. Rows are deterministic and an existing row is never
overwritten, so a chunk run twice (taken over while its first owner was only
slow) writes the same rows once. One worker or four: the same rows.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import SweepChunk
from app.engine.data import MarketData
from app.engine.errors import CancelledError
from app.jobs.runner import run_in_worker_db
from app.sweeps import grid, repository, rows

# Rows are written (and the chunk's heartbeat refreshed) at least this often.
FLUSH_SECONDS = 0.5


class Stop(Exception):  # noqa: N818 - a control-flow signal
    """The sweep stopped (cancelled, or the chunk's claim was lost)."""


def work(
    sweep_id: uuid.UUID,
    *,
    config: Mapping[str, Any],
    combos: Sequence[Mapping[str, Any]],
    data: MarketData,
    token: str,
    cancelled: Callable[[], bool],
    on_row: Callable[[], None] | None = None,
    stale_seconds: float | None = None,
) -> None:
    """Claim and run chunks until none is left to claim; raises :class:`Stop` when
    ``cancelled()``. ``stale_seconds``: also take over running chunks whose
    heartbeat is older (the coordinator does, helpers do not)."""

    async def claim(s: AsyncSession) -> SweepChunk | None:
        stale = None
        if stale_seconds is not None:
            stale = utcnow() - dt.timedelta(seconds=stale_seconds)
        found = await repository.claim_chunk(
            s, sweep_id, token=token, stale_before=stale
        )
        await s.commit()
        return found

    while True:
        if cancelled():
            raise Stop
        chunk = run_in_worker_db(claim)
        if chunk is None:
            return
        _run_chunk(
            sweep_id, chunk.chunk, range(chunk.lo, chunk.hi),
            config=config, combos=combos, data=data, token=token,
            cancelled=cancelled, on_row=on_row,
        )  # fmt: skip


def _run_chunk(
    sweep_id: uuid.UUID,
    chunk: int,
    indexes: range,
    *,
    config: Mapping[str, Any],
    combos: Sequence[Mapping[str, Any]],
    data: MarketData,
    token: str,
    cancelled: Callable[[], bool],
    on_row: Callable[[], None] | None,
) -> None:
    done = run_in_worker_db(lambda s: repository.done_indexes(s, sweep_id))
    todo = [i for i in indexes if i not in done]
    base, objective = config["base"], config["objective"]
    configs = [grid.engine_config(grid.apply(base, combos[i])) for i in todo]
    pending: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush(*, finished: bool) -> None:
        batch = list(pending)
        pending.clear()

        async def write(s: AsyncSession) -> bool:
            await repository.insert_rows(s, batch)
            ours = await repository.touch_chunk(
                s, sweep_id, chunk, token=token, done=finished
            )
            await s.commit()
            return ours

        if not run_in_worker_db(write):
            raise Stop  # taken over: the new owner writes the rest

    try:
        results = rows.evaluate(configs, data, should_cancel=cancelled)
        for index, evaluated in zip(todo, results, strict=False):
            row = rows.row_values(index, combos[index], evaluated, objective)
            pending.append({"sweep_id": sweep_id, **row})
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush(finished=False)
                last_flush = time.monotonic()
            # After the flush: the progress it reports (counted in the database,
            # with the best row so far) then already includes the rows just written.
            # Rows arrive in bursts (one engine batch at a time), so a report read
            # before the flush could go out with no best row for a whole batch.
            if on_row is not None:
                on_row()
            if cancelled():
                raise CancelledError("sweep cancelled")
    except CancelledError:
        flush(finished=False)  # finished rows are kept
        raise Stop from None
    flush(finished=True)
