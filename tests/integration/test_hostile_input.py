"""Hostile input against live servers, in both modes (the embedded server: SQLite;
the live stack: PostgreSQL + Redis): every answer is < 500 and in the error envelope.

Each reproduced request of the hostile-input issue, then a generated set: control
characters in every string field of every body and in every query parameter,
extreme dates and numbers."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.stack import LiveApi, LiveUser

pytestmark = pytest.mark.integration

MODES = ["embedded_server", "live_stack"]
VALID_BODY: dict[str, Any] = {
    "start_date": "2015-01-01",
    "end_date": "2015-03-31",
    "strategy_id": 2,
}
CONTROL_CHARACTERS = ["\x00", "\x01", "\x1b", "\n", "\x7f", "\x85", "\ud800"]


@pytest.fixture(params=MODES, scope="module")
def server(request: pytest.FixtureRequest) -> LiveApi:
    live: LiveApi = request.getfixturevalue(request.param)
    return live


@pytest.fixture(scope="module")
def hostile_user(server: LiveApi) -> LiveUser:
    return server.make_user()


def assert_envelope(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    if statuses:
        assert response.status_code in statuses, response.text
    body = response.json()
    assert isinstance(body.get("error"), str), body
    assert isinstance(body.get("message"), str), body
    return body  # type: ignore[no-any-return]


async def post_json(
    http: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> httpx.Response:
    """POST ``body`` as ASCII JSON (``\\ud800`` escapes: httpx cannot encode a lone
    surrogate itself)."""
    return await http.post(
        path,
        content=json.dumps(body, ensure_ascii=True),
        headers={"Content-Type": "application/json"},
    )


def named_fields(body: dict[str, Any]) -> list[str]:
    return [d.get("field") for d in body.get("details") or []]


# --- dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("created_after", "2024-01-01"),
        ("created_after", "2024-01-01T00:00:00"),
        ("created_before", "2030-01-01T00:00:00"),
        ("created_after", "2024-01-01T00:00:00Z"),
    ],
)
async def test_history_dates_without_zone_are_utc(
    server: LiveApi, hostile_user: LiveUser, param: str, value: str
) -> None:
    async with server.client(hostile_user) as http:
        response = await http.get("/v1/backtest/history", params={param: value})
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("created_after", "0001-01-01T00:00:00+14:00"),
        ("created_before", "9999-12-31T23:59:59-14:00"),
        ("created_after", "10000-01-01"),
        ("created_before", "2024-13-01"),
    ],
)
async def test_history_dates_out_of_range_are_400_naming_the_field(
    server: LiveApi, hostile_user: LiveUser, param: str, value: str
) -> None:
    async with server.client(hostile_user) as http:
        response = await http.get("/v1/backtest/history", params={param: value})
    body = assert_envelope(response, 400)
    assert f"query.{param}" in named_fields(body)


async def test_history_date_window_filters_in_utc(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    """A naive bound means UTC: a window ending a minute ago excludes a job created
    now, one ending in a minute includes it (both written without a zone)."""
    async with server.client(hostile_user) as http:
        created = await http.post("/v1/backtest", json=VALID_BODY)
        assert created.status_code == 200, created.text
        task_id = created.json()["task_id"]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        seen = []
        for delta in (-60, 60):
            bound = (now + dt.timedelta(seconds=delta)).isoformat()
            page = await http.get(
                "/v1/backtest/history", params={"created_before": bound, "limit": 100}
            )
            assert page.status_code == 200, page.text
            seen.append(task_id in [item["task_id"] for item in page.json()])
        await server.wait_status(http, task_id)
    assert seen == [False, True]


# --- control characters ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/auth/register"])
async def test_nul_in_username_is_400_without_login(server: LiveApi, path: str) -> None:
    async with server.client() as http:
        response = await http.post(
            path, json={"username": "a\u0000b", "password": "whatever1"}
        )
    body = assert_envelope(response, 400)
    assert "body.username" in named_fields(body)


async def test_nul_in_token_form_is_400(server: LiveApi) -> None:
    async with server.client() as http:
        response = await http.post(
            "/v1/auth/token", data={"username": "a\u0000b", "password": "whatever1"}
        )
    body = assert_envelope(response, 400)
    assert "body.username" in named_fields(body)


async def test_nul_in_backtest_name_is_400_and_stores_nothing(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    async with server.client(hostile_user) as http:
        before = await http.get("/v1/backtest/history")
        response = await http.post("/v1/backtest", json={**VALID_BODY, "name": "a\0b"})
        after = await http.get("/v1/backtest/history")
    body = assert_envelope(response, 400)
    assert "body.name" in named_fields(body)
    assert before.headers["X-Total-Count"] == after.headers["X-Total-Count"]


async def test_nul_in_trades_symbol_is_400(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    async with server.client(hostile_user) as http:
        response = await http.get(f"/v1/backtest/{uuid.uuid4()}/trades?symbol=%00")
    body = assert_envelope(response, 400)
    assert "query.symbol" in named_fields(body)


def _body_variants(char: str) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, field named in the 400) with ``char`` in each string field."""
    bad = f"x{char}y"
    credentials = {"username": "someone", "password": "long-enough-1"}
    variants: list[tuple[str, dict[str, Any], str]] = []
    for path in ("/v1/auth/login", "/v1/auth/register"):
        for field in credentials:
            variants.append((path, {**credentials, field: bad}, f"body.{field}"))
    backtest_strings = {
        "name": bad,
        "benchmark": bad,
        "dataset": bad,
        "symbols": ["AAPL", bad],
        "strategy_params": {bad: 1},
        "start_date": bad,
    }
    for field, value in backtest_strings.items():
        variants.append(("/v1/backtest", {**VALID_BODY, field: value}, f"body.{field}"))
    screen = {"filters": [{"field": bad, "op": ">", "value": 1}], "top_n": 5}
    variants.append(
        (
            "/v1/backtest",
            {**VALID_BODY, "strategy_id": None, "filter_criteria": screen},
            "body.filter_criteria",
        )
    )
    # The round-2 bodies inherit the same schema base: sweeps, templates, webhooks,
    # schedules and the profile.
    variants += [
        ("/v1/sweeps", {"base": {**VALID_BODY, "name": bad}, "grid": {}}, "body.base"),
        ("/v1/sweeps", {"name": bad, "base": VALID_BODY, "grid": {}}, "body.name"),
        ("/v1/templates", {"name": bad, "config": VALID_BODY}, "body.name"),
        (
            "/v1/templates",
            {"name": "t", "config": {**VALID_BODY, "name": bad}},
            "body.config",
        ),
        (
            "/v1/webhooks",
            {"url": f"https://example.com/{bad}", "events": ["backtest.completed"]},
            "body.url",
        ),
        (
            "/v1/schedules",
            {"template_id": str(uuid.uuid4()), "cron": bad, "timezone": "UTC"},
            "body.cron",
        ),
    ]
    return variants


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=repr)
async def test_control_characters_in_every_body_field_are_400(
    server: LiveApi, hostile_user: LiveUser, char: str
) -> None:
    async with server.client(hostile_user) as http:
        before = (await http.get("/v1/backtest/history")).headers["X-Total-Count"]
        for path, body, field in _body_variants(char):
            response = await post_json(http, path, body)
            answer = assert_envelope(response, 400)
            assert field in named_fields(answer), (path, body, answer)
        after = (await http.get("/v1/backtest/history")).headers["X-Total-Count"]
    assert before == after


QUERY_ROUTES = [
    ("/v1/backtest/history", ["status", "created_after", "created_before", "sort"]),
    ("/v1/backtest", ["status", "limit", "offset"]),
    ("/v1/backtest/{id}/trades", ["symbol", "start_date", "end_date", "sort"]),
    ("/v1/backtest/{id}/chart", ["max_points"]),
    ("/v1/backtest/{id}", ["anything"]),
    ("/v1/strategies", ["dataset"]),
    ("/v1/symbols", ["dataset"]),
    ("/v1/datasets", ["x"]),
]


# A URL carries UTF-8: a lone surrogate cannot be written in one (its bytes decode
# to U+FFFD), so it is tested in bodies only, and invalid UTF-8 separately.
@pytest.mark.parametrize("char", CONTROL_CHARACTERS[:-1], ids=repr)
async def test_control_characters_in_every_query_parameter_are_400(
    server: LiveApi, hostile_user: LiveUser, char: str
) -> None:
    job = str(uuid.uuid4())
    async with server.client(hostile_user) as http:
        for template, params in QUERY_ROUTES:
            for param in params:
                response = await http.get(
                    template.replace("{id}", job), params={param: f"a{char}b"}
                )
                answer = assert_envelope(response, 400)
                assert f"query.{param}" in named_fields(answer), (template, param)


async def test_invalid_utf8_in_query_and_path_is_never_5xx(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    async with server.client(hostile_user) as http:
        for url in (
            "/v1/backtest/history?sort=%FF%FE",
            "/v1/backtest/%ED%A0%80/trades?symbol=%C0%80",
            "/v1/backtest/%00",
            "/v1/symbols?dataset=%ED%A0%80",
        ):
            response = await http.get(url)
            assert_envelope(response)
            assert response.status_code in (400, 404), (url, response.text)


# --- extreme numbers and sizes -------------------------------------------------------


EXTREME_BODIES: list[dict[str, Any]] = [
    {**VALID_BODY, "initial_capital": 1e308},
    {**VALID_BODY, "initial_capital": -1},
    {**VALID_BODY, "strategy_id": 10**30},
    {**VALID_BODY, "strategy_id": -(10**30)},
    {**VALID_BODY, "strategy_params": {"top_n": 10**30}},
    {**VALID_BODY, "strategy_params": {"top_n": -1e308}},
    {**VALID_BODY, "commission": float("nan")},
    {**VALID_BODY, "slippage": float("inf")},
    {**VALID_BODY, "risk_free_rate": float("-inf")},
    {**VALID_BODY, "start_date": "0001-01-01", "end_date": "9999-12-31"},
    {**VALID_BODY, "start_date": "1900-01-01", "end_date": "1900-01-02"},
    {**VALID_BODY, "name": "n" * 10_000},
    {**VALID_BODY, "symbols": ["S" * 17]},
    {**VALID_BODY, "filter_criteria": {"top_n": 10**30}, "strategy_id": None},
    {**VALID_BODY, "filter_criteria": {"filters": [{}] * 500}, "strategy_id": None},
]


@pytest.mark.parametrize("body", EXTREME_BODIES, ids=range(len(EXTREME_BODIES)))
async def test_extreme_values_in_submission_are_4xx_and_store_nothing(
    server: LiveApi, hostile_user: LiveUser, body: dict[str, Any]
) -> None:
    async with server.client(hostile_user) as http:
        before = (await http.get("/v1/backtest/history")).headers["X-Total-Count"]
        response = await post_json(http, "/v1/backtest", body)  # NaN: raw JSON
        after = (await http.get("/v1/backtest/history")).headers["X-Total-Count"]
    assert_envelope(response, 400, 413)
    assert before == after


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 10**30},
        {"offset": 10**30},
        {"offset": -1},
        {"limit": "1e3"},
        {"created_after": "1" * 5000},
        {"created_after": "-999999999-01-01"},
    ],
    ids=repr,
)
async def test_extreme_query_values_are_400(
    server: LiveApi, hostile_user: LiveUser, params: dict[str, Any]
) -> None:
    async with server.client(hostile_user) as http:
        response = await http.get("/v1/backtest/history", params=params)
    assert_envelope(response, 400)


# --- tokens ---------------------------------------------------------------------------


def _secret(server: LiveApi) -> str:
    env: dict[str, str] = server.env  # type: ignore[attr-defined]
    return env["JWT_SECRET"]


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 10**20, "iat": 0},
        {"exp": -(10**20), "iat": 0},
        {"exp": 2**62, "iat": 2**62},
        {"exp": 10**400, "iat": 0},
    ],
    ids=["exp-1e20", "exp-negative", "iat-huge", "exp-1e400"],
)
async def test_token_with_extreme_times_is_401(
    server: LiveApi, hostile_user: LiveUser, claims: dict[str, Any]
) -> None:
    token = jwt.encode(
        {"sub": hostile_user.id, **claims}, _secret(server), algorithm="HS256"
    )
    async with server.client() as http:
        job = f"/v1/backtest/{uuid.uuid4()}"
        for path in ("/v1/auth/me", "/v1/backtest/history", job):
            response = await http.get(
                path, headers={"Authorization": f"Bearer {token}"}
            )
            assert_envelope(response, 401)


async def test_websocket_with_overflowing_token_closes_4001(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    token = jwt.encode(
        {"sub": hostile_user.id, "exp": 10**20, "iat": 0},
        _secret(server),
        algorithm="HS256",
    )
    url = f"{server.ws_url}/v1/backtest/{uuid.uuid4()}/progress?token={token}"
    async with connect(url, open_timeout=30) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4001


async def test_websocket_from_a_foreign_origin_closes_4003(
    server: LiveApi, hostile_user: LiveUser
) -> None:
    """As the README says: the handshake completes, then close 4003 (a refused
    handshake would only tell the client "403")."""
    job = uuid.uuid4()
    url = f"{server.ws_url}/v1/backtest/{job}/progress?token={hostile_user.token}"
    origin: Any = "https://evil.example"
    async with connect(url, origin=origin, open_timeout=30) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4003
