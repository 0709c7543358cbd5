"""A sweep's completion with its returns matrix in a temporary file (the path the
worker takes above ``SWEEP_RETURNS_IN_MEMORY_BYTES``, e.g. 50,000 combinations over
ten years) gives the same matrix and the same diagnostics as in memory.

The real worker code (``app.sweeps.run.run``: chunks, stored rows, completion) runs
in this process against a scratch SQLite database, twice on the same sweep: once
with the default threshold (in memory) and once with a threshold of 0 bytes (the
file, which the diagnostics read a slice of columns at a time), reading the returns
back 3 rows per query so that the matrix is filled over several blocks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import app.backtests.service  # noqa: F401 - registers the backtest validator
from app.core.config import Settings
from app.db.migrate import upgrade_to_head
from app.db.models import Job, User
from app.jobs import runner
from app.jobs.registry import Completion, RunContext
from app.jobs.runner import run_in_worker_db
from app.sweeps import repository, run, service
from app.sweeps.schemas import SweepRequest

pytestmark = pytest.mark.integration
SWEEP: dict[str, Any] = {
    "base": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 2},
        "symbols": ["AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ"],
        "start_date": "2019-01-01",
        "end_date": "2019-12-31",
    },
    "grid": {
        "strategy_params.lookback": [20, 60, 120],
        "strategy_params.skip": [0, 5],
        "rebalancing": ["monthly", "weekly"],
    },
    "overfitting_blocks": 4,
}


class _Reporter:
    """The runner's reporter, minus the database and the bus: no cancel."""

    def progress(
        self,
        fraction: float,
        current_date: dt.date | None,
        work_done: int,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    def plan(self, phases: Sequence[Any]) -> None:
        return None

    def phase(self, name: str) -> None:
        return None


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        environment="test",
        jwt_secret="x" * 48,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'sweeps.db'}",
        var_dir=tmp_path,
        sweep_max_helpers=0,  # the coordinator runs every chunk
        sweep_chunk_size=4,
        **values,
    )


async def _new_job(session: Any, config: dict[str, Any]) -> uuid.UUID:
    user = User(username=f"u_{uuid.uuid4().hex[:8]}", password_hash="x")
    session.add(user)
    await session.flush()
    job = Job(user_id=user.id, kind="sweep", status="running", config=config)
    session.add(job)
    await session.commit()
    return job.id


async def _save(session: Any, *, c: Completion, job_id: uuid.UUID) -> dict[str, Any]:
    """Store the completion's results as the runner does; its overfitting block."""
    await c.save(session, job_id)
    await session.commit()
    summary = await repository.get_summary(session, job_id)
    assert summary is not None and summary.overfitting is not None
    return dict(summary.overfitting)


def test_returns_in_a_file_equal_the_in_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory = _settings(tmp_path)
    mapped = _settings(tmp_path, sweep_returns_in_memory_bytes=0)
    upgrade_to_head(in_memory.resolved_database_url)
    monkeypatch.setattr(runner, "_override", in_memory)
    monkeypatch.setattr(run, "RETURNS_BLOCK_ROWS", 3)
    config = asyncio.run(
        service.prepare(
            SweepRequest.model_validate(SWEEP), tier="pro", settings=in_memory
        )
    )
    n = config["combinations"]
    job_id = run_in_worker_db(lambda s: _new_job(s, config))
    contexts = [
        RunContext(
            job_id=job_id, config=config, name=None, settings=s, reporter=_Reporter()
        )
        for s in (in_memory, mapped)
    ]

    stored = []
    for context in contexts:  # the rows are run once; the second run finds them
        completion = run.run(context)
        saved = run_in_worker_db(functools.partial(_save, c=completion, job_id=job_id))
        stored.append((completion, saved))
    t = run_in_worker_db(lambda s: repository.return_count(s, job_id))
    objectives = run_in_worker_db(lambda s: repository.objectives(s, job_id))
    matrices, reports = [], []
    for context in contexts:
        with run.returns_matrix(context, t=t, n=n) as matrix:
            values = matrix if isinstance(matrix, np.ndarray) else matrix.read(slice(n))
            matrices.append((type(matrix), np.array(values)))
            reports.append(
                run.diagnostics(
                    matrix, objectives=objectives, objective="sharpe_ratio", blocks=4
                )
            )

    assert n == 12 and t == 251  # every combination is valid; 252 sessions in 2019
    assert matrices[0][0] is np.ndarray and matrices[1][0] is run.ReturnsFile
    np.testing.assert_array_equal(matrices[0][1], matrices[1][1])
    assert np.isfinite(matrices[0][1]).all() and matrices[0][1].std() > 0
    assert reports[0] == reports[1]
    assert reports[0]["pbo"] is not None and reports[0]["n_trials"] == n
    # what each completion stored: the same block as computed here
    assert stored[0][1] == stored[1][1] == reports[0]
    assert stored[0][0].metrics == stored[1][0].metrics
    assert stored[0][0].work_done == stored[1][0].work_done == n
