"""Locust user mix for the backtest API (run by scripts/run_load.sh).

* ``ApiUser`` (weight 4): logs in, then per task: poll the status of one of its recent
  jobs (10), read its history (3), submit a small backtest (2), log in again (1).
* ``WatcherUser`` (weight 1): submits a backtest and watches it on the WebSocket
  until the terminal message; reported as ``WS progress: first frame`` (connect →
  first frame) and ``WS progress: submit → terminal``. websocket-client is
  gevent-friendly: locust patches the socket module before it is used.

Environment: ``LOAD_USERNAME`` / ``LOAD_PASSWORD`` (an admin, so per-user rate limits
never reject: run_load.sh creates one), ``LOAD_ACCEPTED_FILE`` (every accepted task id
is appended there, one a line, for the lost/duplicated-jobs check afterwards).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from typing import Any

import websocket
from locust import HttpUser, between, task

USERNAME = os.environ.get("LOAD_USERNAME", "bench_admin")
PASSWORD = os.environ.get("LOAD_PASSWORD", "bench-password-123")
ACCEPTED_FILE = os.environ.get("LOAD_ACCEPTED_FILE", "")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
WS_TIMEOUT_SECONDS = 60.0
SYMBOLS = [
    "AAPL",
    "MSFT",
    "AMZN",
    "JPM",
    "XOM",
    "JNJ",
    "PG",
    "KO",
    "PEP",
    "WMT",
    "HD",
    "CVX",
    "MRK",
    "PFE",
    "INTC",
    "CSCO",
    "ORCL",
    "IBM",
    "MCD",
    "DIS",
]


def backtest_body() -> dict[str, Any]:
    """One of three small requests (the engine takes tens of milliseconds on each)."""
    start_year = random.randint(2010, 2020)
    kind = random.choice(("single", "equal", "momentum"))
    body: dict[str, Any] = {
        "name": f"load {kind}",
        "start_date": f"{start_year}-01-01",
        "end_date": f"{start_year + 3}-12-31",
        "rebalancing": "monthly",
    }
    if kind == "single":
        return {**body, "strategy_id": 1, "symbols": [random.choice(SYMBOLS)]}
    if kind == "equal":
        return {**body, "strategy_id": 1, "symbols": random.sample(SYMBOLS, 10)}
    return {**body, "strategy_id": 2, "strategy_params": {"top_n": 5},
            "symbols": SYMBOLS, "rebalancing": "weekly"}  # fmt: skip


def record_accepted(task_id: str) -> None:
    if ACCEPTED_FILE:
        with open(ACCEPTED_FILE, "a", encoding="utf-8") as handle:
            handle.write(task_id + "\n")


class _Authenticated(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.token = ""
        self.login()

    def login(self) -> None:
        with self.client.post(
            "/v1/auth/login",
            json={"username": USERNAME, "password": PASSWORD},
            name="/v1/auth/login",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"login: {response.status_code} {response.text[:200]}")
                return
            self.token = response.json()["access_token"]
            self.client.headers["Authorization"] = f"Bearer {self.token}"

    def submit(self) -> str | None:
        with self.client.post(
            "/v1/backtest",
            json=backtest_body(),
            name="/v1/backtest",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(
                    f"submit: {response.status_code} {response.text[:200]}"
                )
                return None
            task_id: str = response.json()["task_id"]
        record_accepted(task_id)
        return task_id


class ApiUser(_Authenticated):
    weight = 4
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        self.recent: deque[str] = deque(maxlen=10)

    @task(10)
    def poll_status(self) -> None:
        if not self.recent:
            self.submit_backtest()
            return
        self.client.get(
            f"/v1/backtest/{random.choice(self.recent)}", name="/v1/backtest/{id}"
        )

    @task(3)
    def history(self) -> None:
        self.client.get("/v1/backtest/history?limit=20", name="/v1/backtest/history")

    @task(2)
    def submit_backtest(self) -> None:
        if task_id := self.submit():
            self.recent.append(task_id)

    @task(1)
    def relogin(self) -> None:
        self.login()


class WatcherUser(_Authenticated):
    weight = 1
    wait_time = between(1.0, 3.0)

    @task
    def submit_and_watch(self) -> None:
        started = time.perf_counter()
        task_id = self.submit()
        if task_id is None:
            return
        ws_url = self.host.replace("http://", "ws://", 1)
        url = f"{ws_url}/v1/backtest/{task_id}/progress?token={self.token}"
        try:
            status = self._watch(url)
        except Exception as exc:  # any failure is a failed watch
            self._report("progress: submit → terminal", started, exc)
            return
        error = None if status == "completed" else RuntimeError(f"ended {status}")
        self._report("progress: submit → terminal", started, error)

    def _watch(self, url: str) -> str:
        opened = time.perf_counter()
        ws = websocket.create_connection(url, timeout=WS_TIMEOUT_SECONDS)
        try:
            first = True
            deadline = time.monotonic() + WS_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                status = json.loads(ws.recv())["status"]
                if first:
                    self._report("progress: first frame", opened, None)
                    first = False
                if status in TERMINAL:
                    return str(status)
            raise TimeoutError(f"no terminal state after {WS_TIMEOUT_SECONDS} s")
        finally:
            ws.close()

    def _report(self, name: str, started: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1e3,
            response_length=0,
            exception=error,
            context={},
        )
