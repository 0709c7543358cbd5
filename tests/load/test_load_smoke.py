"""A short load run of the whole distributed stack (scripts/run_load.sh: 8 s of
locust, 20 users, after the stack is up; about half a minute in all): the CI smoke
version of the load test. It proves what no other test does: the real stack
(uvicorn with 2 workers, Celery worker and beat) under concurrent mixed traffic
(polls, history, submits, logins, WebSocket watchers) answers with no error and
loses no accepted job nor runs one twice. Throughput and latency are not its business:
the long runs (60 s, the 30-minute soak) are commands in BENCHMARKS.md and
tests/load/README.md, not tests. Needs PostgreSQL and Redis on 127.0.0.1 and locust
(dev extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess

import pytest

from app.core.config import REPO_ROOT

LOAD_SECONDS = 8  # 2 s of spawning (10 users/s), then 20 users at once
RUN_TIMEOUT = 900  # stack start and stop on 2 busy cores, the jobs check, the run


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def services() -> None:
    if importlib.util.find_spec("locust") is None:  # importing it would monkey-patch
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("locust not installed (dev extra)")
        pytest.skip("locust not installed (dev extra)")
    missing = [name for name, port in (("PostgreSQL", 5432), ("Redis", 6379))
               if not _reachable(port)]  # fmt: skip
    if missing and os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"required services unreachable: {missing}")
    if missing:
        pytest.skip(f"services unreachable: {missing}")


@pytest.mark.integration
@pytest.mark.usefixtures("services")
def test_run_load_no_errors_and_no_lost_jobs() -> None:
    env = {
        **os.environ,
        "LOAD_USERS": "20",
        "LOAD_SPAWN_RATE": "10",
        # Inside the suite's connection budget (PostgreSQL max_connections 100).
        "LOAD_DB_POOL_SIZE": "6",
        "LOAD_DB_MAX_OVERFLOW": "4",
    }

    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/run_load.sh"), str(LOAD_SECONDS)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    failures = re.search(r"TOTAL failures: (\d+)", output)
    assert failures is not None, output[-6000:]
    assert int(failures.group(1)) == 0, output[-6000:]
    assert "lost (accepted, no row)   0" in output, output[-6000:]
    assert "jobs check: OK" in output, output[-6000:]
