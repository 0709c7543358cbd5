"""Browser fixtures: the real server in embedded mode and Debian's headless Chromium.

* ``server``: ``uvicorn tests.integration.slow_app:create_app --factory`` as a
  subprocess on a free port
  with ``ENVIRONMENT=test``, a temporary ``VAR_DIR`` (SQLite, migrated by the app's
  lifespan, in-process worker) and ``TEST_ENGINE_CHUNK_DELAY_SECONDS``
  (``tests.integration.slow_app``) so that progress is visible and a run can be
  cancelled. Waits for ``GET /health``.
* ``browser``: Playwright driving ``/usr/bin/chromium`` (never a downloaded browser).
  Missing Chromium or Playwright → skip, or fail when ``REQUIRE_SERVICES=1``.
* ``page``: a fresh context at 1280×800 whose console errors and uncaught exceptions
  fail the test (``console.allow(regex)`` for errors a test provokes on purpose).
* ``api``: an httpx client for arranging data and checking what the page shows.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHUNK_DELAY_SECONDS = "0.05"
# Every test logs in from 127.0.0.1 and submits several runs: lift the per-IP and
# per-user limits (the page's handling of a 429 is tested with a routed response).
RATE_LIMITS = (
    '{"submit": {"free": "500/hour"}, "active_jobs": {"free": 20},'
    ' "auth_ip": "1000/minute"}'
)
PASSWORD = "correct-horse-battery"
_BROWSER_DIR = os.path.dirname(__file__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(_BROWSER_DIR):
            item.add_marker(pytest.mark.browser)


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"Browser tests required (REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"Browser tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server ---------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def assert_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(
                f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("browser-var")
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        ENVIRONMENT="test",
        VAR_DIR=str(var_dir),
        TEST_ENGINE_CHUNK_DELAY_SECONDS=CHUNK_DELAY_SECONDS,
        LOG_LEVEL="WARNING",
        RATE_LIMITS=RATE_LIMITS,
        # The webhooks screen registers endpoints on this machine (never called).
        WEBHOOK_ALLOWED_HOSTS='["127.0.0.1"]',
    )
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.integration.slow_app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    srv = Server(base_url=f"http://127.0.0.1:{port}", log_path=log_path, process=proc)
    try:
        _wait_healthy(srv, proc)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_healthy(srv: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} before it was healthy:\n"
                f"{srv.log_tail()}"
            )
        try:
            if httpx.get(f"{srv.base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = str(exc)
        time.sleep(0.25)
    pytest.fail(f"server not healthy within 90 s ({last_error}):\n{srv.log_tail()}")


# --- API helper ---------------------------------------------------------------------


@dataclass
class Account:
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """Arrange and check through the same API the page uses."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def register(self, prefix: str = "user") -> Account:
        username = f"{prefix}_{uuid.uuid4().hex[:10]}"
        created = self.client.post(
            "/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        return self.login(username)

    def login(self, username: str) -> Account:
        resp = self.client.post(
            "/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        return Account(username, PASSWORD, resp.json()["access_token"])

    def submit(self, account: Account, **body: Any) -> str:
        payload = {
            "strategy_id": 2,
            "start_date": "2016-01-01",
            "end_date": "2019-12-31",
            "benchmark": "SPY",
            **body,
        }
        resp = self.client.post("/v1/backtest", json=payload, headers=account.headers)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["task_id"])

    def status(self, account: Account, task_id: str) -> httpx.Response:
        return self.client.get(f"/v1/backtest/{task_id}", headers=account.headers)

    def wait_terminal(
        self, account: Account, task_id: str, timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.status(account, task_id).json()
            if body["status"] in {"completed", "failed", "cancelled"}:
                return dict(body)
            time.sleep(0.2)
        raise AssertionError(f"backtest {task_id} not finished within {timeout} s")

    def get(self, account: Account, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=account.headers)


@pytest.fixture(scope="package")
def api(server: Server) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.client.close()


# --- the browser --------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of one page."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture(autouse=True)
def _server_alive(request: pytest.FixtureRequest) -> Iterator[None]:
    """A crashed server fails the test with its log, not a bare connection error."""
    if "server" not in request.fixturenames:
        yield
        return
    srv: Server = request.getfixturevalue("server")
    srv.assert_alive()
    yield
    srv.assert_alive()


@pytest.fixture
def page(browser: Any, server: Server, console: ConsoleLog) -> Iterator[Any]:
    context = browser.new_context(
        base_url=server.base_url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(20_000)
    pg = context.new_page()
    pg.on(
        "console",
        lambda msg: (
            console.errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    pg.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
    yield pg
    context.close()
    unexpected = console.unexpected()
    assert not unexpected, "console errors on the page:\n" + "\n".join(unexpected)


@pytest.fixture(scope="package")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
