"""The API process of distributed mode never loads the price matrices (issue 18, "A
lean API process"): it validates against the light catalog (app/data/catalog.py).

A fresh Python process builds the real app (``create_app``) with distributed
settings (this session's PostgreSQL database, a Redis DB of the machine), serves it
through Starlette's TestClient (lifespan included), registers a user, then asks
every route that touches market data: ``/v1/symbols``, ``/v1/datasets``, a
dataset's coverage, valid and invalid submissions. Before building the app the
child wraps the only functions that build price or membership matrices
(``app.data.store.read_dataset_directory``, which ``load_dataset`` calls, and
``app.data.membership.membership_mask_for``) with call counters; both must stay at
zero while every validation error is still a 400 naming its field at submit time.

In embedded mode the worker runs inside the API process, which therefore holds the
dataset: it must be read once (the worker's warm-up), not a second time for
validation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import REDIS_HOST_URL, require_redis

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 8  # its own DB index: the child's job message must reach no test worker

# Imported by the API process of distributed mode only when it needs them: Celery
# at the first message sent (not before a submission), alembic only to migrate or to
# answer /ready, rich never (app.ops.serve), httpx (and the pygments it pulls in)
# only by the worker's webhook client, and none of the worker side (the task
# modules, the embedded worker). (kombu.exceptions is in: the outage classifier's.)
LAZY_AT_START = (
    "celery",
    "alembic",
    "mako",
    "rich",
    "pygments",
    "httpx",
    "app.jobs.embedded",
    "app.jobs.tasks",
    "app.webhooks.tasks",
    "app.webhooks.client",
    "app.emails.tasks",
)
NEVER = (
    "numba",
    "pandas",
    "alembic",
    "rich",
    "pygments",
    "httpx",
    "app.jobs.tasks",
    "app.webhooks.tasks",
)

CHILD = r"""
import json, sys
import app.ops.serve  # the API's entry point, imported first as the server does
from app.data import membership, store

calls = {"read_dataset_directory": 0, "membership_mask_for": 0}

def counting(name, original):
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)
    return wrapper

store.read_dataset_directory = counting(
    "read_dataset_directory", store.read_dataset_directory
)
membership.membership_mask_for = counting(
    "membership_mask_for", membership.membership_mask_for
)

watched = json.loads(sys.argv[1])

def loaded():
    return sorted(m for m in watched if sys.modules.get(m))

from app.main import create_app
application = create_app()
out = {"modules_built": loaded()}  # before the test client (httpx) is imported
from fastapi.testclient import TestClient

valid = {"symbols": ["AAPL", "MSFT"], "start_date": "2018-01-01",
         "end_date": "2018-12-31", "benchmark": "SPY"}
pit = {"start_date": "2018-01-01", "end_date": "2018-12-31"}
with TestClient(application) as client:
    # started (the lifespan ran), nothing submitted yet
    out["modules_at_start"] = loaded()
    user = {"username": "lean_api_user", "password": "correct-horse-battery"}
    assert client.post("/v1/auth/register", json=user).status_code in (200, 201)
    token = client.post("/v1/auth/login", json=user).json()["access_token"]
    client.headers["authorization"] = f"Bearer {token}"

    def call(method, path, body=None):
        response = client.request(method, path, json=body)
        body = response.json()
        details = body.get("details") if response.status_code >= 400 else None
        field = details[0].get("field") if isinstance(details, list) else None
        return {"status": response.status_code, "field": field,
                "body": body if response.status_code == 200 else None}

    symbols = call("GET", "/v1/symbols")
    out["symbols"] = {"status": symbols["status"],
                      "n": len(symbols["body"]["symbols"]),
                      "first_date": symbols["body"]["first_date"],
                      "benchmarks": symbols["body"]["benchmarks"]}
    out["datasets"] = call("GET", "/v1/datasets")
    coverage = call("GET", "/v1/datasets/sp500/coverage")
    out["coverage"] = {"status": coverage["status"],
                       "years": len(coverage["body"]["years"])}
    out["unknown_dataset_coverage"] = call("GET", "/v1/datasets/nope/coverage")
    out["unknown_dataset_symbols"] = call("GET", "/v1/symbols?dataset=nope")
    out["valid"] = client.post(
        "/v1/backtest", json=valid, headers={"x-request-id": "lean-api-request-1"}
    ).status_code
    out["valid_pit"] = call("POST", "/v1/backtest", pit)["status"]
    out["unknown_symbol"] = call("POST", "/v1/backtest",
                                 {**valid, "symbols": ["AAPL", "NOPE"]})
    out["outside_coverage"] = call("POST", "/v1/backtest",
                                   {**valid, "start_date": "1990-01-01",
                                    "end_date": "1990-12-31"})
    out["benchmark_not_etf"] = call("POST", "/v1/backtest",
                                    {**valid, "benchmark": "AAPL"})
    out["benchmark_no_first_price"] = call(
        "POST", "/v1/backtest",
        {**valid, "benchmark": "XLC", "start_date": "2010-01-04"})
    out["unknown_dataset"] = call("POST", "/v1/backtest", {**valid, "dataset": "nope"})
out["calls"] = calls
# (pyarrow is in: this script imports the store to count its loads)
out["modules_at_end"] = loaded()
print("RESULT " + json.dumps(out, default=str))
"""


@pytest.fixture
def redis_url() -> str:
    require_redis()
    url = f"{REDIS_HOST_URL}/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


def test_distributed_api_process_never_loads_the_prices(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEST_")},
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "VAR_DIR": str(tmp_path / "var"),
        "AUTO_MIGRATE": "false",
        "DB_POOL_SIZE": "2",
        "DB_MAX_OVERFLOW": "2",
        "LOG_LEVEL": "WARNING",
        "QUEUE_DISPATCH_AHEAD": "1000",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(sorted({*LAZY_AT_START, *NEVER}))],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        # The messages the child queued (no worker consumes this DB index).
        queued = [
            json.loads(raw)
            for raw in redis.Redis.from_url(redis_url).lrange("jobs", 0, -1)
        ]
    finally:
        redis.Redis.from_url(redis_url).flushdb()
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))

    # Never loaded: no price matrix, no membership matrix in the API process.
    assert out["calls"] == {"read_dataset_directory": 0, "membership_mask_for": 0}
    # ... while the catalog answered everything the dataset used to.
    assert out["symbols"]["status"] == 200
    assert out["symbols"]["n"] > 500
    assert out["symbols"]["first_date"] == "2005-01-03"
    assert "SPY" in out["symbols"]["benchmarks"]
    assert out["datasets"]["status"] == 200
    assert out["datasets"]["body"][0]["name"] == "sp500"
    assert out["datasets"]["body"][0]["n_rows"] > 2_000_000
    assert out["coverage"] == {"status": 200, "years": 20}
    assert out["unknown_dataset_coverage"]["status"] == 404
    assert out["unknown_dataset_symbols"] == {
        "status": 400,
        "field": "body.dataset",
        "body": None,
    }
    assert out["valid"] == 200
    assert out["valid_pit"] == 200
    # Every validation error still happens at submit time, naming its field.
    for case, field in {
        "unknown_symbol": "body.symbols",
        "outside_coverage": "body.start_date",
        "benchmark_not_etf": "body.benchmark",
        "benchmark_no_first_price": "body.benchmarks",
        "unknown_dataset": "body.dataset",
    }.items():
        assert (out[case]["status"], out[case]["field"]) == (400, field), case
    # A lean start: neither Celery nor alembic nor rich nor httpx nor the worker
    # side, once the app is built and once it started (the test client brings its
    # own httpx, and with it pygments)...
    assert out["modules_built"] == []
    test_client = {"httpx", "pygments"}
    assert sorted(set(out["modules_at_start"]) - test_client) == []
    # ... and after the requests only what a submission needs (Celery, to send):
    # never the libraries only a run needs (the compiled kernels, pandas), alembic,
    # rich or the task definitions.
    assert sorted(set(out["modules_at_end"]) - test_client) == ["celery"]
    # Celery built at the first submission still carries the request id into the
    # message headers (app.core.task_context), for the worker's logs.
    request_ids = [m["headers"].get("request_id") for m in queued]
    assert len(queued) == 2  # the two valid submissions
    assert "lean-api-request-1" in request_ids


EMBEDDED_CHILD = r"""
import json, time
from app.data import store

calls = {"read_dataset_directory": 0}
original = store.read_dataset_directory

def wrapper(*args, **kwargs):
    calls["read_dataset_directory"] += 1
    return original(*args, **kwargs)

store.read_dataset_directory = wrapper

from fastapi.testclient import TestClient
from app.main import create_app

body = {"symbols": ["AAPL", "MSFT"], "start_date": "2018-01-01",
        "end_date": "2018-12-31", "benchmark": "SPY"}
out = {}
with TestClient(create_app()) as client:
    user = {"username": "lean_embedded", "password": "correct-horse-battery"}
    assert client.post("/v1/auth/register", json=user).status_code in (200, 201)
    token = client.post("/v1/auth/login", json=user).json()["access_token"]
    client.headers["authorization"] = f"Bearer {token}"
    out["symbols"] = client.get("/v1/symbols").status_code
    out["invalid"] = client.post(
        "/v1/backtest", json={**body, "symbols": ["NOPE"]}).status_code
    statuses = []
    for _ in range(2):
        task = client.post("/v1/backtest", json=body).json()["task_id"]
        deadline = time.monotonic() + 240
        status = "pending"
        while status not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
            status = client.get(f"/v1/backtest/{task}").json()["status"]
        statuses.append(status)
    out["statuses"] = statuses
out["calls"] = calls
print("RESULT " + json.dumps(out))
"""


def test_embedded_mode_reads_the_dataset_once(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("TEST_")
    }
    env.update(
        {
            "ENVIRONMENT": "test",
            "JWT_SECRET": uuid.uuid4().hex * 2,
            "VAR_DIR": str(tmp_path / "var"),
            "LOG_LEVEL": "WARNING",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED_CHILD],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["symbols"] == 200
    assert out["invalid"] == 400
    assert out["statuses"] == ["completed", "completed"]
    # the worker's warm-up read it; validation and both runs reused that copy
    assert out["calls"] == {"read_dataset_directory": 1}
