"""The distributed topology end to end, without Docker: ``scripts/run-distributed.sh``
starts migrate, the API (uvicorn, 2 workers), a Celery worker and beat against the
machine's PostgreSQL (a fresh database) and Redis (DB 13, flushed), exactly as
docker-compose.yml does; the test drives the public API and stops the stack with
SIGTERM.

One module-scoped stack (it takes a while to start on a small machine); the tests run
in file order and the last one stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import (
    ADMIN_URL,
    _unavailable,
    async_url,
    create_database,
    drop_database,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_STACK_REDIS_URL", "redis://127.0.0.1:6379/13")
METRICS_TOKEN = secrets.token_urlsafe(24)
START_TIMEOUT = 180.0
WRONG_PASSWORD = "wrong-" + secrets.token_hex(8)  # must never reach a log
BACKTEST = {
    "name": "stack e2e",
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2018-01-01",
    "end_date": "2018-12-31",
    "rebalancing": "monthly",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    api: str
    worker_metrics: str
    log_dir: Path
    database: str
    state: dict[str, Any] = field(default_factory=dict)

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def json_lines(self, name: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.logs(name).splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def stop(self, timeout: float = 90.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise


def _wait_ready(stack: Stack) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"stack exited early:\n{stack.logs('api')[-3000:]}")
        try:
            response = httpx.get(f"{stack.api}/ready", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    pytest.fail(f"stack not ready after {START_TIMEOUT} s: {last}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable(f"Redis: {exc}")
    database = create_database("bt_stack")
    run_dir = tmp_path_factory.mktemp("stack")
    api_port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": async_url(database),
        "REDIS_URL": REDIS_URL,
        "ENVIRONMENT": "production",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "API_PORT": str(api_port),
        "WORKER_METRICS_PORT": str(metrics_port),
        "RUN_DIR": str(run_dir / "run"),
        "RUN_LOG_DIR": str(run_dir / "logs"),
        # ~50 progress chunks per run: a backtest lasts a few seconds, long enough
        # to be watched and to be running when the stack is stopped.
        "TEST_ENGINE_CHUNK_DELAY_SECONDS": "0.1",
        "API_APP": "tests.integration.slow_app:create_app",
        "CELERY_APP": "tests.integration.slow_worker",
        "WORKER_CONCURRENCY": "1",
        # Production serves /metrics only with a token.
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        ["bash", "scripts/run-distributed.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(run_dir / "script.log").open("wb"),
        start_new_session=True,
    )
    stack = Stack(
        process=process,
        api=f"http://127.0.0.1:{api_port}",
        worker_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
        log_dir=run_dir / "logs",
        database=database,
    )
    try:
        _wait_ready(stack)
        yield stack
    finally:
        if process.poll() is None:
            stack.stop()
        drop_database(database)


def _login(stack: Stack, client: httpx.Client) -> str:
    username = f"stack_{uuid.uuid4().hex[:8]}"
    password = "stack-password-" + secrets.token_hex(4)
    client.post("/v1/auth/register", json={"username": username, "password": password})
    failed = client.post(
        "/v1/auth/login", json={"username": username, "password": WRONG_PASSWORD}
    )
    assert failed.status_code == 401
    response = client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token = str(response.json()["access_token"])
    stack.state["token"] = token
    return token


async def _watch(stack: Stack, task_id: str, token: str) -> list[dict[str, Any]]:
    url = stack.api.replace("http", "ws") + (
        f"/v1/backtest/{task_id}/progress?token={token}"
    )
    frames: list[dict[str, Any]] = []
    async with connect(url, open_timeout=20) as ws:
        async for raw in ws:
            frames.append(json.loads(raw))
            if frames[-1]["status"] in ("completed", "failed", "cancelled"):
                break
    return frames


def test_stack_runs_a_backtest_end_to_end(stack: Stack) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    with httpx.Client(base_url=stack.api, timeout=30) as client:
        token = _login(stack, client)
        headers = {"Authorization": f"Bearer {token}"}
        submitted = client.post(
            "/v1/backtest",
            json=BACKTEST,
            headers={**headers, "X-Request-ID": request_id},
        )
        assert submitted.status_code == 200, submitted.text
        assert submitted.headers["X-Request-ID"] == request_id
        task_id = submitted.json()["task_id"]

        frames = asyncio.run(asyncio.wait_for(_watch(stack, task_id, token), 120))

        assert frames[-1]["status"] == "completed"
        status = client.get(f"/v1/backtest/{task_id}", headers=headers)
        assert status.json()["status"] == "completed"
        assert "immutable" in status.headers["Cache-Control"]
        again = client.get(
            f"/v1/backtest/{task_id}",
            headers={**headers, "If-None-Match": status.headers["ETag"]},
        )
        assert again.status_code == 304
        chart = client.get(f"/v1/backtest/{task_id}/chart", headers=headers)
        assert chart.status_code == 200
        assert client.get(f"/v1/backtest/{task_id}/trades", headers=headers).is_success
    stack.state.update(task_id=task_id, request_id=request_id)


def test_stack_caches_completed_chart_in_redis(stack: Stack) -> None:
    task_id = stack.state["task_id"]

    keys = redis.Redis.from_url(REDIS_URL).keys(f"cache:chart:{task_id}")

    assert keys


def test_stack_worker_logs_carry_request_task_and_user_ids(stack: Stack) -> None:
    task_id, request_id = stack.state["task_id"], stack.state["request_id"]

    started = [
        line
        for line in stack.json_lines("worker")
        if line.get("event") == "job.started" and line.get("task_id") == task_id
    ]

    assert started, stack.logs("worker")[-3000:]
    assert started[0]["request_id"] == request_id
    assert started[0]["user_id"]
    assert started[0]["celery_task_id"]


def test_stack_api_access_log_has_request_id_and_no_token(stack: Stack) -> None:
    request_id = stack.state["request_id"]
    api_lines = stack.json_lines("api")

    submit_lines = [line for line in api_lines if line.get("request_id") == request_id]
    websocket_lines = [
        line["event"]
        for line in api_lines
        if "WebSocket /v1/backtest/" in line["event"]
    ]

    assert any(line.get("logger") == "uvicorn.access" for line in submit_lines)
    assert websocket_lines
    assert all("token=[REDACTED]" in event for event in websocket_lines)


def test_stack_logs_contain_no_secret(stack: Stack) -> None:
    everything = "".join(stack.logs(name) for name in ("api", "worker", "beat"))

    assert stack.state["token"] not in everything
    assert WRONG_PASSWORD not in everything


def test_stack_exposes_api_and_worker_metrics(stack: Stack) -> None:
    task_id = stack.state["task_id"]

    unauthorised = httpx.get(f"{stack.api}/metrics", timeout=10)
    assert unauthorised.status_code == 401
    api = httpx.get(
        f"{stack.api}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    ).text
    worker = httpx.get(stack.worker_metrics, timeout=10).text
    (stack.log_dir / "api-metrics.txt").write_text(api)
    (stack.log_dir / "worker-metrics.txt").write_text(worker)

    assert 'route="/v1/backtest/{task_id}"' in api
    assert 'backtest_requests_total{status="submitted"} 1.0' in api
    assert "backtest_queue_depth 0.0" in api
    assert "websocket_connections" in api
    assert task_id not in api
    assert 'backtest_requests_total{status="completed"} 1.0' in worker
    assert 'backtest_duration_seconds_count{status="completed"} 1.0' in worker


async def _hold_socket(stack: Stack, task_id: str) -> int | None:
    """Watch a running job; SIGTERM the stack at the first running frame; the close
    code the server sent."""
    stopped = False
    url = stack.api.replace("http", "ws") + (
        f"/v1/backtest/{task_id}/progress?token={stack.state['token']}"
    )
    async with connect(url, open_timeout=20) as ws:
        try:
            async for raw in ws:
                if json.loads(raw)["status"] == "running" and not stopped:
                    stack.process.send_signal(signal.SIGTERM)
                    stopped = True
        except ConnectionClosed:
            pass
        return ws.close_code


def test_stack_sigterm_closes_websockets_1012_and_finishes_the_running_job(
    stack: Stack,
) -> None:
    with httpx.Client(base_url=stack.api, timeout=30) as client:
        headers = {"Authorization": f"Bearer {stack.state['token']}"}
        response = client.post("/v1/backtest", json=BACKTEST, headers=headers)
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]

    code = asyncio.run(asyncio.wait_for(_hold_socket(stack, task_id), 120))
    exit_code = stack.process.wait(120)

    assert code == 1012
    assert exit_code == 0
    with psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + f"/{stack.database}") as conn:
        row = conn.execute(
            "SELECT status FROM jobs WHERE id = %s", (task_id,)
        ).fetchone()
    assert row is not None and row[0] == "completed"
