"""The sweep job kind: the worker side (the sweep's *coordinator*).

``run(context)`` cuts the valid combinations into chunks that any worker may claim
(:mod:`app.sweeps.chunks`), asks for helper tasks, works through chunks itself and
waits for the rest; rows (params, metrics, PSR, daily returns) are written as they
finish, so a cancelled sweep keeps what it finished and a re-claimed one (after a
worker crash) resumes where the rows stop. When every row is there it runs the
walk-forward (if asked), computes the overfitting diagnostics over the ``(T, N)``
returns and completes with the best row's metrics as the job's headline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.data.store import load_dataset
from app.engine import jit
from app.engine.backtest import validate_config
from app.engine.data import MarketData
from app.engine.errors import CancelledError, EngineError, InvalidInputError
from app.engine.overfitting import overfitting_report
from app.jobs.registry import (
    Completion,
    JobCancelled,
    JobFailed,
    RunContext,
)
from app.jobs.runner import run_in_worker_db
from app.sweeps import chunks, grid, repository, rows, walk_forward
from app.sweeps.rows import CancelCheck, score
from app.sweeps.schemas import LOWER_IS_BETTER
from app.sweeps.tasks import request_helpers

FloatArray = npt.NDArray[np.float64]
# Progress is re-counted from the database at most this often.
FLUSH_SECONDS = 0.5
# The coordinator polls for the helpers' chunks this often.
WAIT_SECONDS = 0.2
# Completion reads the rows' returns back this many rows per query, into an
# in-memory (T, N) matrix up to Settings.sweep_returns_in_memory_bytes, else a
# memory-mapped file.
RETURNS_BLOCK_ROWS = 2_000


def run(context: RunContext) -> Completion:
    config, job_id = context.config, context.job_id
    combos = grid.valid_combinations(config)
    base = grid.engine_config(config["base"])
    try:
        data = load_dataset(
            base.dataset, datasets_dir=context.settings.resolved_datasets_dir
        )
        start_row, end_row = validate_config(base, data)
    except (EngineError, ValueError) as exc:
        raise JobFailed(str(exc)) from exc
    dates = data.dates[start_row : end_row + 1].astype("datetime64[D]")
    day_bytes = dates.astype(np.int64).astype("<i4").tobytes()
    run_in_worker_db(lambda s: _commit(repository.save_dates(s, job_id, day_bytes), s))
    _run_rows(context, combos, data)
    walk = _walk_forward(context, combos, data)
    return _complete(context, last_day=dates[-1].item(), walk=walk)


class _Progress:
    """Progress of the rows phase, counted in the database (helpers' rows too)."""

    def __init__(self, context: RunContext, n: int) -> None:
        self.context, self.n = context, n
        self.units = _work_units(context.config, n)
        self.done, self.last = 0, -1e9
        self.best: dict[str, Any] | None = None
        self.higher = context.config["objective"] not in LOWER_IS_BETTER

    def report(self) -> None:
        now = time.monotonic()
        if now - self.last >= FLUSH_SECONDS:
            self.last = now
            self.done, self.best = run_in_worker_db(self._read)
        extra = {
            "combinations_done": self.done,
            "combinations": self.n,
            "best": self.best,
        }
        self.context.reporter.progress(
            self.done / self.units, None, self.done, extra=extra
        )

    async def _read(self, s: AsyncSession) -> tuple[int, dict[str, Any] | None]:
        """Rows stored so far and the best of them (index, params, objective)."""
        job_id = self.context.job_id
        found = await repository.best(s, job_id, higher_is_better=self.higher)
        best = None
        if found is not None:
            best = {
                "index": found.index,
                "params": found.params,
                "objective": found.objective,
            }
        return await repository.count(s, job_id), best


def _run_rows(
    context: RunContext, combos: Sequence[Mapping[str, Any]], data: MarketData
) -> None:
    """Cut the rows into chunks, ask for helpers, work through chunks, then wait
    for the helpers' chunks (taking over stale ones) until every chunk is done."""
    config, job_id, settings = context.config, context.job_id, context.settings
    n_chunks = run_in_worker_db(
        lambda s: _commit(
            repository.create_chunks(
                s, job_id, n=len(combos), size=settings.sweep_chunk_size
            ),
            s,
        )
    )
    request_helpers(job_id, min(n_chunks - 1, settings.sweep_max_helpers), settings)
    progress = _Progress(context, len(combos))
    cancel = CancelCheck(context.reporter.cancelled)
    token = f"coordinator:{uuid.uuid4().hex}"
    try:
        while True:
            chunks.work(
                job_id,
                config=config,
                combos=combos,
                data=data,
                token=token,
                cancelled=cancel,
                on_row=progress.report,
                stale_seconds=settings.stale_heartbeat_seconds,
            )
            if run_in_worker_db(lambda s: repository.chunks_left(s, job_id)) == 0:
                return
            progress.report()
            if cancel():
                raise chunks.Stop
            time.sleep(WAIT_SECONDS)
    except chunks.Stop:
        raise JobCancelled from None
    except InvalidInputError as exc:
        raise JobFailed(str(exc)) from exc


def _work_units(config: Mapping[str, Any], n: int) -> int:
    """Combinations run in all: the full span, then per walk-forward window every
    combination on the train span and the chosen one on the test span."""
    spans = config.get("walk_forward_windows") or []
    return max(n + len(spans) * (n + 1), 1)


def _walk_forward(
    context: RunContext, combos: Sequence[Mapping[str, Any]], data: MarketData
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    config, reporter = context.config, context.reporter
    stored = config.get("walk_forward_windows")
    if not stored:
        return None
    spans = walk_forward.parse(stored)
    configs = [grid.engine_config(grid.apply(config["base"], c)) for c in combos]
    cancel = CancelCheck(reporter.cancelled)
    units, n = _work_units(config, len(combos)), len(combos)

    def on_window(k: int) -> None:
        done = n + k * (n + 1)
        reporter.progress(done / units, None, n, extra={"walk_forward_windows": k})
        if cancel():
            raise CancelledError("sweep cancelled")

    try:
        return walk_forward.run(
            configs,
            [dict(c) for c in combos],
            data,
            spans=spans,
            objective=config["objective"],
            score=score,
            evaluate=lambda cs: [
                e.metrics for e in rows.evaluate(cs, data, should_cancel=cancel)
            ],
            should_cancel=cancel,
            on_window=on_window,
        )
    except CancelledError:
        raise JobCancelled from None
    except InvalidInputError as exc:
        raise JobFailed(f"walk-forward: {exc.message}") from exc


def _complete(
    context: RunContext,
    *,
    last_day: dt.date,
    walk: tuple[dict[str, Any], dict[str, Any]] | None,
) -> Completion:
    config, job_id = context.config, context.job_id
    objective = config["objective"]
    objectives = run_in_worker_db(lambda s: repository.objectives(s, job_id))
    best = run_in_worker_db(
        lambda s: repository.best(
            s, job_id, higher_is_better=objective not in LOWER_IS_BETTER
        )
    )
    metrics_of_best = None if best is None else dict(best.metrics)
    t = run_in_worker_db(lambda s: repository.return_count(s, job_id))
    with returns_matrix(context, t=t, n=len(objectives)) as returns:
        overfitting = diagnostics(
            returns,
            objectives=objectives,
            objective=objective,
            blocks=config["overfitting_blocks"],
        )

    async def save(session: AsyncSession, saved_id: uuid.UUID) -> None:
        await repository.save_results(
            session,
            saved_id,
            overfitting=overfitting,
            walk_forward=None if walk is None else walk[0],
            chart=None if walk is None else walk[1],
        )

    return Completion(
        metrics=metrics_of_best,
        current_date=last_day,
        work_done=len(objectives),
        save=save,
    )


class ReturnsFile:
    """A ``(T, N)`` float64 returns matrix, column-major, in a temporary file; the
    diagnostics read it a slice of columns at a time
    (:class:`app.engine.overfitting.ColumnSource`). Plain reads and writes, no
    memory map: the file's pages stay in the kernel's page cache (evictable) and
    never count in this process's RSS, which a mapped file's touched pages do
    (1.1 GB of them at 50,000 combinations x 10 years)."""

    def __init__(self, file: IO[bytes], t: int, n: int) -> None:
        self.file, self.t, self.n = file, t, n
        file.truncate(t * n * 8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.t, self.n

    def write(self, index: int, raw: bytes) -> None:
        """Column ``index`` (T little-endian float64)."""
        os.pwrite(self.file.fileno(), raw, index * self.t * 8)

    def read(self, columns: slice) -> FloatArray:
        lo, hi, _ = columns.indices(self.n)
        flat = np.empty(self.t * max(hi - lo, 0), dtype="<f8")
        if flat.size:
            got = os.preadv(self.file.fileno(), [flat.data], lo * self.t * 8)
            if got != flat.nbytes:
                raise OSError(f"short read of sweep returns: {got} of {flat.nbytes}")
        out: FloatArray = flat.reshape((self.t, -1), order="F")
        return out


@contextlib.contextmanager
def returns_matrix(
    context: RunContext, *, t: int, n: int
) -> Iterator[FloatArray | ReturnsFile]:
    """The ``(T, N)`` float64 returns of every row (column = row index), read back in
    blocks of ``RETURNS_BLOCK_ROWS`` rows (one primary-key range query each), with
    the job's heartbeat and cancel check between blocks.

    Held in memory up to ``Settings.sweep_returns_in_memory_bytes``; above, in a
    temporary file (:class:`ReturnsFile`: the page cache, which the kernel can evict,
    rather than the worker's memory: 50,000 combinations over ten years are 1 GB).
    Column-major, so each row's returns and the diagnostics' column blocks are
    contiguous. Exact float64 either way: the diagnostics equal a recomputation from
    ``GET /returns``."""
    job_id, reporter = context.job_id, context.reporter
    with contextlib.ExitStack() as stack:
        matrix: FloatArray | ReturnsFile
        if t * n * 8 <= context.settings.sweep_returns_in_memory_bytes:
            in_memory = np.empty((t, n), dtype=np.float64, order="F")

            def put(index: int, raw: bytes) -> None:
                in_memory[:, index] = np.frombuffer(raw, dtype="<f8")

            matrix = in_memory
        else:
            backing = stack.enter_context(
                tempfile.TemporaryFile(prefix="sweep-returns-")
            )
            matrix = ReturnsFile(backing, t, n)
            put = matrix.write
        filled = 0
        for lo in range(0, n, RETURNS_BLOCK_ROWS):
            hi = min(lo + RETURNS_BLOCK_ROWS, n)
            block = run_in_worker_db(
                functools.partial(
                    repository.returns_between, sweep_id=job_id, lo=lo, hi=hi
                )
            )
            for index, raw in block:
                if len(raw) != t * 8:
                    raise JobFailed(f"row {index} has {len(raw) // 8} returns, not {t}")
                put(index, raw)
            filled += len(block)
            if reporter.cancelled():
                raise JobCancelled
        if filled != n:  # every row is written before completion; a gap is a bug
            raise JobFailed(f"{n - filled} of {n} rows have no stored returns")
        yield matrix


def diagnostics(
    returns: FloatArray | ReturnsFile,
    *,
    objectives: Sequence[Any],
    objective: str,
    blocks: int,
) -> dict[str, Any]:
    """The overfitting block: PBO, λ median, degradation, DSR, SR0 of the
    ``(T, N)`` returns, with the best column chosen by ``objective``; every number
    null with a ``reason`` when it cannot be computed (N < 2, T < blocks, ...)."""
    scores = [score(v, objective) for v in objectives]
    keys = ("pbo", "lambda_median", "degradation", "dsr", "sr0", "best_index")
    empty: dict[str, Any] = dict.fromkeys(keys)
    empty.update(n_trials=returns.shape[1], blocks=blocks, verdict=None)
    if returns.shape[1] < 2:
        n = returns.shape[1]
        return {**empty, "reason": f"needs at least 2 combinations, got {n}"}
    try:
        report = overfitting_report(
            returns,
            blocks=blocks,
            objective=np.array([np.nan if s is None else s for s in scores]),
        )
    except InvalidInputError as exc:
        return {**empty, "reason": exc.message}
    report.pop("psr", None)  # per row in the results
    return report


async def _commit(awaitable: Any, session: AsyncSession) -> Any:
    result = await awaitable
    await session.commit()
    return result


def warm_up(settings: Settings) -> None:
    """Load the bundled dataset and compile the engine's kernels before a worker
    forks (the children share both)."""
    load_dataset(datasets_dir=settings.resolved_datasets_dir).precompute()
    jit.warm_up()
