"""Live stacks for end-to-end tests: real uvicorn, Celery worker and beat processes.

The per-test-rollback ``client`` fixture cannot see what a separate worker process
commits, so end-to-end flows run against processes started here, on their own
PostgreSQL database and Redis database index, talking to them over real HTTP and
WebSockets exactly as a client would.

* :class:`ManagedProcess`: one subprocess in its own session (process group), its
  output in a log file; ``stop()`` sends SIGTERM, then SIGKILL to the group after a
  timeout; ``tail()`` for failure messages.
* :class:`LiveStack`: API + worker (+ optional beat) in distributed mode; helpers to
  register users through the API, wait for job states and read rows the API does not
  expose (attempts, trades, series).
* :class:`EmbeddedServer`: one API process with no DATABASE_URL/REDIS_URL (SQLite and
  the in-process worker under ``VAR_DIR``).
* Servers a test may crash and restart: the private ``redis-server``
  (:func:`start_redis_server`, optionally with an AOF) and :class:`PostgresServer`, a
  throw-away PostgreSQL cluster on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import redis
from celery import Celery
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.core.config import REPO_ROOT, Settings

DEFAULT_PASSWORD = "correct-horse-battery"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
STARTUP_TIMEOUT = 120.0  # generous: 2 shared cores (load 12+ seen), cold imports
STOP_TIMEOUT = 15.0
_SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any application setting, plus
    ``overrides``: a stack never inherits the developer's DATABASE_URL or REDIS_URL."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS_ENV}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "ENVIRONMENT": "test",
            "LOG_JSON": "false",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""  # API processes: where they listen

    @classmethod
    def start(
        cls,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        user: str | None = None,
    ) -> ManagedProcess:
        """``user``: run as that OS user (this process must be root)."""
        log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                args,
                cwd=REPO_ROOT if user is None else "/",
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop() reaches children
                user=user,
                group=None if user is None else pwd.getpwnam(user).pw_gid,
                extra_groups=None if user is None else [],
            )
        return cls(name, popen, log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash: no shutdown code runs)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (warm shutdown), then SIGKILL the whole process group."""
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        # Prefork children or a hung parent: nothing of this group may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def describe(processes: Iterable[ManagedProcess], lines: int = 60) -> str:
    parts = []
    for p in processes:
        state = "running" if p.alive() else f"exited with {p.popen.returncode}"
        parts.append(
            f"--- {p.name} (pid {p.pid}, {state}) {p.log_path}\n{p.tail(lines)}"
        )
    return "\n".join(parts)


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def uvicorn_args(port: int) -> list[str]:
    return _python(
        "-m", "uvicorn", "tests.integration.slow_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    )  # fmt: skip


def wait_http_ok(process: ManagedProcess, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            pytest.fail(f"{process.name} exited during startup\n{describe([process])}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"{url} not answering after {timeout} s\n{describe([process])}")


@dataclass
class Watched:
    """What one WebSocket connection to ``/progress`` received."""

    messages: list[dict[str, Any]]
    close_code: int | None
    close_reason: str
    subprotocol: str | None
    first_message_seconds: float | None  # from the start of the handshake
    # time.monotonic() at each message's arrival (same order as ``messages``)
    arrivals: list[float] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        return [m["status"] for m in self.messages]


async def watch_progress(
    ws_url: str,
    task_id: str,
    *,
    token: str | None = None,
    bearer: str | None = None,
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout: float = 60.0,
    first_frame: asyncio.Event | None = None,
) -> Watched:
    """Connect to the progress socket and read until the server closes, or until
    ``until(message)`` is true (then the client disconnects). ``token`` goes in the
    query, ``bearer`` in ``Sec-WebSocket-Protocol: bearer, <jwt>``. ``first_frame``
    is set at the first message: the server sends it only once it has subscribed to
    the job's progress, so a test can wait for "subscribed" instead of sleeping."""
    url = f"{ws_url}/v1/backtest/{task_id}/progress"
    if token is not None:
        url += f"?token={token}"
    protocols = [Subprotocol("bearer"), Subprotocol(bearer)] if bearer else None
    messages: list[dict[str, Any]] = []
    arrivals: list[float] = []
    first: float | None = None
    started = time.monotonic()
    async with connect(
        url, subprotocols=protocols, open_timeout=30, close_timeout=10
    ) as ws:
        try:
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    if first is None:
                        first = time.monotonic() - started
                        if first_frame is not None:
                            first_frame.set()
                    messages.append(orjson.loads(raw))
                    arrivals.append(time.monotonic())
                    if until is not None and until(messages[-1]):
                        break
        except ConnectionClosed:
            pass
        except TimeoutError:
            pytest.fail(f"no close within {timeout} s; received {messages}")
        return Watched(
            messages,
            ws.close_code,
            ws.close_reason or "",
            ws.subprotocol,
            first,
            arrivals,
        )


@dataclass
class LiveUser:
    username: str
    password: str
    token: str
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class LiveApi:
    """Users and job polling over the real HTTP API (``base_url`` set by the host)."""

    base_url: str

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    def make_user(
        self, username: str | None = None, password: str = DEFAULT_PASSWORD
    ) -> LiveUser:
        """Register through ``POST /v1/auth/register``, then log in."""
        username = username or f"u_{uuid.uuid4().hex[:12]}"
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            created = http.post(
                "/v1/auth/register", json={"username": username, "password": password}
            )
            assert created.status_code == 201, created.text
        return self.login(username, password, user_id=created.json()["id"])

    def login(self, username: str, password: str, *, user_id: str = "") -> LiveUser:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            response = http.post(
                "/v1/auth/login", json={"username": username, "password": password}
            )
        assert response.status_code == 200, response.text
        return LiveUser(username, password, response.json()["access_token"], user_id)

    def client(self, user: LiveUser | None = None) -> httpx.AsyncClient:
        headers = user.headers if user else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    def processes(self) -> list[ManagedProcess]:
        raise NotImplementedError

    def diagnostics(self, lines: int = 60) -> str:
        return describe(self.processes(), lines)

    async def wait_status(
        self,
        http: httpx.AsyncClient,
        task_id: str,
        statuses: Iterable[str] = TERMINAL,
        *,
        timeout: float = 60.0,
        interval: float = 0.1,
    ) -> dict[str, Any]:
        """Poll ``GET /v1/backtest/{id}`` until its status is one of ``statuses``."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await http.get(f"/v1/backtest/{task_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            if body["status"] in wanted:
                return body
            await asyncio.sleep(interval)
        pytest.fail(
            f"backtest {task_id} not {sorted(wanted)} after {timeout} s "
            f"(last: {body.get('status')} {body.get('progress')}%)\n"
            + self.diagnostics()
        )


@dataclass
class StackOptions:
    """Settings of one live stack's processes (env vars of the API and workers)."""

    chunk_delay_seconds: float = 0.06
    concurrency: int = 2
    # Only without a redis-server binary (see start_redis_server): the DB index on the
    # machine's Redis. Other suites use DB 12 (benchmarks) and 13 (distributed stack).
    redis_db: int = 14
    with_beat: bool = False
    # The private redis-server persists with an AOF (see start_redis_server).
    redis_aof: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


def start_redis_server(
    log_dir: Path, *, port: int | None = None, aof: bool = False
) -> ManagedProcess | None:
    """A private ``redis-server`` on a free port (None when the binary is missing).
    Stacks share nothing then: the Celery queue name is fixed, so two stacks on one
    Redis database (two test runs at once) would steal each other's jobs and FLUSHDB
    each other's queues.

    Non-persistent by default. ``aof``: append-only file in ``log_dir/redis-data``,
    fsynced on every write, so a server SIGKILLed and started again on the same
    ``port`` comes back with everything it had acknowledged."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = port or free_port()
    data_dir = log_dir / "redis-data" if aof else log_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if aof else []
    args = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", *persistence, "--dir", str(data_dir),
    ]  # fmt: skip
    server = ManagedProcess.start("redis", args, env=os.environ, log_dir=log_dir)
    server.base_url = f"redis://127.0.0.1:{port}"
    client = redis.Redis.from_url(server.base_url, socket_connect_timeout=1)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not server.alive():
                pytest.fail(f"redis-server exited\n{describe([server])}")
            with contextlib.suppress(redis.RedisError):
                # BusyLoadingError (replaying the AOF) is a RedisError: keep waiting.
                if client.ping():
                    return server
            time.sleep(0.05)
    finally:
        client.close()
    pytest.fail(f"redis-server not answering\n{describe([server])}")


class PrivateServerError(RuntimeError):
    """A private server cannot be run on this machine (binary missing, no ``postgres``
    OS user while running as root, initdb failing): skip, or fail under
    REQUIRE_SERVICES=1."""


def _postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` (Debian), else ``initdb`` on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: (
            int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A private, throw-away PostgreSQL cluster that a test may stop and start again
    on the same port (the machine's server is shared and must never be touched).

    PostgreSQL refuses to run as root: when this process is root, ``initdb`` and
    ``postgres`` run as the ``postgres`` OS user, in a directory under the system temp
    dir that user owns (pytest's temp dirs are private to root). Durability is off
    (``fsync``, ``full_page_writes``): only process restarts are simulated, never a
    machine crash."""

    def __init__(self, log_dir: Path) -> None:
        binaries = _postgres_bin()
        if binaries is None:
            raise PrivateServerError("PostgreSQL server binaries (initdb) not found")
        self.bin = binaries
        self.log_dir = log_dir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PrivateServerError(
                    "running as root without a postgres user"
                ) from None
            self.user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="bt-chaos-pg-"))
        if self.user is not None:
            shutil.chown(self.root, self.user, self.user)
        self.data_dir = self.root / "data"
        self.port = free_port()
        self.process: ManagedProcess | None = None
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _initdb(self) -> None:
        args = [
            str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        ]  # fmt: skip
        init = ManagedProcess.start(
            "initdb", args, env=self._env(), log_dir=self.log_dir, user=self.user
        )
        if init.popen.wait(STARTUP_TIMEOUT) != 0:
            raise PrivateServerError(f"initdb failed\n{describe([init])}")

    def _env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}
        return env | {"HOME": str(self.root)}

    def start(self) -> None:
        """Start on ``self.port`` and wait until it accepts connections."""
        args = [
            str(self.bin / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200",
        ]  # fmt: skip
        self.process = ManagedProcess.start(
            "postgres", args, env=self._env(), log_dir=self.log_dir, user=self.user
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise PrivateServerError(f"postgres exited\n{describe([self.process])}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.admin_url, connect_timeout=1).close()
                return
            time.sleep(0.05)
        raise PrivateServerError(f"postgres not answering\n{describe([self.process])}")

    def stop(self, *, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT: clients disconnected, open transactions rolled
        back), or ``immediate`` (SIGQUIT: like a crash, WAL replay at the next
        start). Returns once the server has exited and its port is free."""
        if self.process is None or not self.process.alive():
            return
        self.process.popen.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def destroy(self) -> None:
        self.stop()
        if self.process is not None and self.process.alive():
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class LiveStack(LiveApi):
    """uvicorn + Celery worker (+ beat) on a fresh database and its own Redis."""

    def __init__(
        self,
        *,
        database: str,
        database_url: str,
        redis_url: str,
        options: StackOptions,
        log_dir: Path,
        redis_server: ManagedProcess | None = None,
        postgres: PostgresServer | None = None,
    ) -> None:
        self.database = database
        self.postgres = postgres  # a private cluster the test may restart
        self.database_url = database_url  # postgresql+asyncpg://
        self.sync_database_url = database_url.replace("+asyncpg", "", 1)
        self.redis_url = redis_url
        self.redis_server = redis_server
        self.options = options
        self.log_dir = log_dir
        self.jwt_secret = uuid.uuid4().hex + uuid.uuid4().hex
        self.env = clean_env(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": self.redis_url,
                "JWT_SECRET": self.jwt_secret,
                "VAR_DIR": str(log_dir / "var"),
                "TEST_ENGINE_CHUNK_DELAY_SECONDS": str(options.chunk_delay_seconds),
                # Several stacks (and other suites) run on one machine: no fixed port.
                "WORKER_METRICS_PORT": "0",
                # The connection budget: several stacks and the test session share
                # one PostgreSQL (max_connections 100); 8 per process at most.
                "DB_POOL_SIZE": "4",
                "DB_MAX_OVERFLOW": "4",
                # These tests register many users and submit bursts from one IP;
                # the limits have their own tests.
                "RATE_LIMIT_ENABLED": "false",
                **options.extra_env,
            }
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.beat: ManagedProcess | None = None
        # The maintenance queue's own worker (the sweeper, webhooks), with beat.
        self.maintenance: ManagedProcess | None = None
        self._worker_count = 0

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> LiveStack:
        redis.Redis.from_url(self.redis_url).flushdb()
        self.api = ManagedProcess.start(
            "api", uvicorn_args(self.port), env=self.env, log_dir=self.log_dir
        )
        # Every process starts at once and is waited for afterwards: each spends
        # seconds importing and warming up, and the suite starts a dozen stacks.
        ready = [self._launch_worker("jobs")]
        if self.options.with_beat:
            ready.append(self._launch_maintenance_worker())
            self.start_beat()
        for worker, node in ready:
            self._wait_ping(worker, node)
        wait_http_ok(self.api, f"{self.base_url}/health", STARTUP_TIMEOUT)
        return self

    def start_worker(self, queues: str = "jobs") -> ManagedProcess:
        """Start a worker (``w<N>@<host>``) on ``queues`` (comma-separated; the
        maintenance queue carries webhook deliveries) and wait for its ping."""
        worker, node = self._launch_worker(queues)
        self._wait_ping(worker, node)
        return worker

    def _launch_worker(self, queues: str) -> tuple[ManagedProcess, str]:
        self._worker_count += 1
        node = f"w{self._worker_count}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        args = _python(
            "-m", "celery", "-A", "tests.integration.slow_worker", "worker",
            "--loglevel=INFO",
            f"--concurrency={self.options.concurrency}", "--pool=prefork",
            "-Q", queues, "-n", node, "--without-gossip", "--without-mingle",
        )  # fmt: skip
        worker = ManagedProcess.start(
            f"worker{self._worker_count}", args, env=self.env, log_dir=self.log_dir
        )
        self.workers.append(worker)
        return worker, node

    def start_maintenance_worker(self) -> ManagedProcess:
        """The maintenance queue's worker, as scripts/run-distributed.sh runs it
        (threads): beat's sweeps run there, never behind the job runs."""
        worker, node = self._launch_maintenance_worker()
        self._wait_ping(worker, node)
        return worker

    def _launch_maintenance_worker(self) -> tuple[ManagedProcess, str]:
        node = f"maint-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        args = _python(
            "-m", "celery", "-A", "tests.integration.slow_worker", "worker",
            "--loglevel=INFO", "--concurrency=2", "--pool=threads",
            "-Q", "maintenance", "-n", node, "--without-gossip", "--without-mingle",
        )  # fmt: skip
        self.maintenance = ManagedProcess.start(
            "maintenance", args, env=self.env, log_dir=self.log_dir
        )
        return self.maintenance, node

    @property
    def worker(self) -> ManagedProcess:
        """The most recently started worker."""
        return self.workers[-1]

    def start_beat(self) -> ManagedProcess:
        args = _python(
            "-m", "celery", "-A", "tests.integration.slow_worker", "beat",
            "--loglevel=INFO",
            "-s", str(self.log_dir / f"beat-schedule-{uuid.uuid4().hex[:6]}"),
        )  # fmt: skip
        self.beat = ManagedProcess.start(
            "beat", args, env=self.env, log_dir=self.log_dir
        )
        return self.beat

    def _wait_ping(self, worker: ManagedProcess, node: str) -> None:
        """``celery inspect ping``, in-process (the CLI would re-import the app)."""
        control = Celery(broker=self.redis_url)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline:
                if not worker.alive():
                    pytest.fail(f"worker exited during startup\n{describe([worker])}")
                if control.control.ping(destination=[node], timeout=1.0):
                    return
            pytest.fail(f"worker {node} did not answer ping\n{describe([worker])}")
        finally:
            control.close()

    def start_api(self, name: str, **env: str) -> ManagedProcess:
        """Another API process on this stack's database with some env changed."""
        port = free_port()
        process = ManagedProcess.start(
            name, uvicorn_args(port), env={**self.env, **env}, log_dir=self.log_dir
        )
        process.base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(process, f"{process.base_url}/health", STARTUP_TIMEOUT)
        return process

    def processes(self) -> list[ManagedProcess]:
        postgres = self.postgres.process if self.postgres else None
        found = [
            postgres, self.redis_server, self.api, *self.workers, self.maintenance,
            self.beat,
        ]  # fmt: skip
        return [p for p in found if p is not None]

    def kill_redis(self) -> None:
        """SIGKILL the private redis-server (a crash; the AOF keeps what it had)."""
        assert self.redis_server is not None, "needs a private redis-server"
        self.redis_server.kill()

    def restart_redis(self) -> None:
        """Start the private redis-server again on the same port, with the same
        persistence (``options.redis_aof``), and wait until it answers."""
        assert self.redis_server is not None, "needs a private redis-server"
        port = int(self.redis_server.base_url.rsplit(":", 1)[1])
        server = start_redis_server(self.log_dir, port=port, aof=self.options.redis_aof)
        assert server is not None
        self.redis_server = server

    def stop(self) -> None:
        """All processes shut down at once (warm shutdowns overlap), Redis last."""
        postgres = self.postgres.process if self.postgres else None
        servers = (self.redis_server, postgres)  # redis last; postgres: its owner's
        processes = [p for p in self.processes() if all(p is not s for s in servers)]
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()
        if self.redis_server is not None:
            self.redis_server.stop()

    def assert_alive(self) -> None:
        processes = [self.api, self.worker] if self.api else []
        if not all(p.alive() for p in processes):
            pytest.fail("a live-stack process died\n" + self.diagnostics())

    # --- rows the API does not expose ---------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.sync_database_url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def job_row(self, task_id: str) -> dict[str, Any]:
        with psycopg.connect(self.sync_database_url, autocommit=True) as conn:
            cursor = conn.execute("SELECT * FROM jobs WHERE id = %s", (task_id,))
            names = [c.name for c in cursor.description or ()]
            row = cursor.fetchone()
        assert row is not None, f"no row for {task_id}"
        return dict(zip(names, row, strict=True))

    def count(self, table: str, task_id: str) -> int:
        assert table in {"trades", "backtest_series"}
        rows = self.query(
            f"SELECT count(*) FROM {table} WHERE backtest_id = %s",
            task_id,
        )
        return int(rows[0][0])


class EmbeddedServer(LiveApi):
    """One API process in embedded mode: SQLite file and in-process worker in
    ``var_dir``, no DATABASE_URL and no REDIS_URL."""

    def __init__(
        self,
        *,
        var_dir: Path,
        log_dir: Path,
        chunk_delay: float,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(
            {
                "VAR_DIR": str(var_dir),
                "JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
                "TEST_ENGINE_CHUNK_DELAY_SECONDS": str(chunk_delay),
                "RATE_LIMIT_ENABLED": "false",
                **(extra_env or {}),
            }
        )
        self.log_dir = log_dir
        self.api: ManagedProcess | None = None

    def start(self) -> EmbeddedServer:
        self.api = ManagedProcess.start(
            "embedded-api", uvicorn_args(self.port), env=self.env, log_dir=self.log_dir
        )
        wait_http_ok(self.api, f"{self.base_url}/health", STARTUP_TIMEOUT)
        return self

    def processes(self) -> list[ManagedProcess]:
        return [self.api] if self.api else []

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
