"""The Python client (clients/python) against a LIVE server started here.

The client is its own distribution (``backtest-client``); the service never imports
it. These tests put its ``src`` directory on ``sys.path`` so they run in the
project's dev venv without installing it (an installed copy, ``pip install -e
clients/python``, is the same source).

``server`` (session): the integration suite's :class:`EmbeddedServer` (one uvicorn
process in embedded mode: SQLite, in-process Celery worker), with the rate limits ON
and a tiny submission limit, ``SUBMIT_LIMIT`` per ``SUBMIT_WINDOW_SECONDS`` per user,
so that the 429 path is real. Limits are per user, so every test gets its own user;
the per-IP auth limit is raised because all of them register from 127.0.0.1. The
engine is slowed (``chunk_delay``) so that a backtest runs about two seconds: long
enough to watch and to cancel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CLIENT_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))

from backtest_client import Backtest, Client  # noqa: E402

from tests.integration.stack import EmbeddedServer, LiveApi, LiveUser  # noqa: E402

SUBMIT_LIMIT = 2
SUBMIT_WINDOW_SECONDS = 4
CHUNK_DELAY_SECONDS = 0.04
MOMENTUM = {
    "strategy": "momentum",
    "params": {"top_n": 20},
    "start": "2015-01-01",
    "end": "2019-12-31",
    "benchmark": "SPY",
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    root = tmp_path_factory.mktemp("client_server")
    embedded = EmbeddedServer(
        var_dir=root / "var", log_dir=root, chunk_delay=CHUNK_DELAY_SECONDS
    )
    embedded.env["RATE_LIMIT_ENABLED"] = "true"
    embedded.env["RATE_LIMITS"] = json.dumps(
        {
            "submit": {"free": f"{SUBMIT_LIMIT} per {SUBMIT_WINDOW_SECONDS} seconds"},
            "active_jobs": {"free": 50},
            "auth_ip": "1000/minute",
        }
    )
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture
def user(server: EmbeddedServer) -> LiveUser:
    return server.make_user()


@pytest.fixture
def client(server: EmbeddedServer, user: LiveUser) -> Iterator[Client]:
    with Client(server.base_url, username=user.username, password=user.password) as c:
        yield c


@pytest.fixture(scope="session")
def completed(server: EmbeddedServer) -> Iterator[tuple[Client, Backtest]]:
    """One completed momentum backtest (the README's golden run), shared by the
    read-only tests, with its owner's client."""
    owner = server.make_user()
    with Client(server.base_url, username=owner.username, password=owner.password) as c:
        yield c, c.backtests.submit(**MOMENTUM).wait()  # type: ignore[arg-type]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A failing test gets the server's log tail."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveApi):
                report.sections.append(("live server log", value.diagnostics(80)))
