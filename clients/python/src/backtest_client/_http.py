"""HTTP plumbing shared by :class:`Client` and :class:`AsyncClient`: bearer auth with
re-login on 401, bounded retries on 429/503 that honour ``Retry-After``, error
envelopes turned into exceptions, and what the server's OpenAPI document offers.

The decisions (may this be retried, how long to wait) are plain functions; the two
transports only differ in how they wait and send.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from backtest_client.errors import (
    BacktestClientError,
    error_from_response,
    parse_retry_after,
)
from backtest_client.models import Token

__version__ = "0.1.0"
USER_AGENT = f"backtest-client/{__version__}"
# Safe to send twice whatever happened to the first try. DELETE is not: on this API
# a second DELETE deletes the job the first one cancelled.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# Answers that mean "not done, try later" (the server did nothing).
_RETRY_STATUSES = frozenset({429, 503})
# The request never reached the server: safe to resend any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_PARAM = re.compile(r"\{[^}]*\}")

Params = Mapping[str, Any] | None


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429 and 503 (and connection failures).

    ``max_retries``: extra attempts after the first. ``max_wait``: the longest single
    wait (seconds) the client accepts; a ``Retry-After`` beyond it raises at once
    rather than blocking. Without ``Retry-After`` the wait is ``backoff · 2^attempt``.
    """

    max_retries: int = 3
    max_wait: float = 60.0
    backoff: float = 0.5


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each wait."""

    method: str
    url: str
    attempt: int  # 1 for the first retry
    wait_seconds: float
    status_code: int | None  # None: a transport error
    reason: str


OnRetry = Callable[[RetryEvent], None]


class ConnectionFailed(BacktestClientError):  # noqa: N818 - reads as a state
    """The server could not be reached (after the allowed retries)."""


def retry_delay(
    policy: RetryPolicy,
    *,
    attempt: int,
    method: str,
    retry_allowed: bool,
    response: httpx.Response | None = None,
    error: Exception | None = None,
) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``, or None: don't retry."""
    if attempt >= policy.max_retries:
        return None
    default = policy.backoff * 2**attempt
    if response is not None:
        if response.status_code not in _RETRY_STATUSES or not retry_allowed:
            return None
        asked = parse_retry_after(response.headers.get("Retry-After"))
        wait = default if asked is None else asked
    elif isinstance(error, _NOT_SENT) or (
        isinstance(error, httpx.TransportError) and method in _IDEMPOTENT
    ):
        wait = default
    else:
        return None
    return wait if wait <= policy.max_wait else None


def normalise_base_url(base_url: str) -> str:
    """``http://host:8000/`` or ``…/v1`` → ``http://host:8000``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def websocket_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    return "ws://" + base_url.removeprefix("http://")


def route_key(template: str) -> str:
    """``/v1/backtest/{task_id}/equity`` → ``/v1/backtest/{}/equity``."""
    return _PARAM.sub("{}", template)


class _TransportBase:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        username: str | None,
        password: str | None,
        retry: RetryPolicy,
        on_retry: OnRetry | None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.base_url = normalise_base_url(base_url)
        self.ws_url = websocket_url(self.base_url)
        self.token = token
        self.username = username
        self.password = password
        self.retry = retry
        self.on_retry = on_retry
        self._routes: dict[str, set[str]] | None = None
        self._paths: dict[str, Any] = {}

    @property
    def can_login(self) -> bool:
        return self.username is not None and self.password is not None

    def _headers(self, headers: Mapping[str, str] | None, auth: bool) -> dict[str, str]:
        out = {"User-Agent": USER_AGENT, **(headers or {})}
        if auth and self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def _retry_allowed(self, method: str, headers: Mapping[str, str]) -> bool:
        keyed = any(k.lower() == "idempotency-key" for k in headers)
        return method in _IDEMPOTENT or method == "DELETE" or keyed

    def _notify(
        self,
        *,
        method: str,
        path: str,
        attempt: int,
        wait: float,
        response: httpx.Response | None,
        error: Exception | None,
    ) -> None:
        if self.on_retry is None:
            return
        reason = repr(error) if error is not None else ""
        if response is not None:
            reason = f"{response.status_code} {response.reason_phrase}"
        self.on_retry(
            RetryEvent(
                method=method,
                url=self.base_url + path,
                attempt=attempt,
                wait_seconds=wait,
                status_code=response.status_code if response is not None else None,
                reason=reason,
            )
        )

    def _login_body(self) -> dict[str, str]:
        assert self.username is not None and self.password is not None
        return {"username": self.username, "password": self.password}

    def _store_routes(self, response: httpx.Response) -> dict[str, set[str]]:
        routes: dict[str, set[str]] = {}
        if response.status_code == 200:
            paths = response.json().get("paths", {})
            self._paths = {route_key(t): ops for t, ops in paths.items()}
            for template, operations in paths.items():
                routes[route_key(template)] = {m.upper() for m in operations}
        self._routes = routes
        return routes

    @property
    def knows_routes(self) -> bool:
        """Whether the server's OpenAPI document was read."""
        return bool(self._routes)

    def _maximum(self, method: str, template: str, name: str) -> int | None:
        operation = self._paths.get(route_key(template), {}).get(method.lower(), {})
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == name and parameter.get("in") == "query":
                maximum = parameter.get("schema", {}).get("maximum")
                return int(maximum) if maximum is not None else None
        return None

    @staticmethod
    def _offers(routes: dict[str, set[str]], method: str, template: str) -> bool:
        """Unknown (no OpenAPI document) counts as offered: try and see."""
        if not routes:
            return True
        return method.upper() in routes.get(route_key(template), set())


class SyncTransport(_TransportBase):
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            username=username,
            password=password,
            retry=retry or RetryPolicy(),
            on_retry=on_retry,
        )
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def login(self) -> Token:
        response = self.request(
            "POST", "/v1/auth/login", json=self._login_body(), auth=False, retry=True
        )
        token = Token.from_json(response.json())
        self.token = token.access_token
        return token

    def ensure_token(self) -> str | None:
        if self.token is None and self.can_login:
            self.login()
        return self.token

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        retry: bool | None = None,
    ) -> httpx.Response:
        """Send, re-login once on 401, retry 429/503 within the policy; an error
        status raises its :mod:`~backtest_client.errors` exception."""
        if auth:
            self.ensure_token()
        allowed = self._retry_allowed(method, headers or {}) if retry is None else retry
        attempt, relogged = 0, False
        while True:
            sent = self._headers(headers, auth)
            response: httpx.Response | None = None
            try:
                response = self.http.request(
                    method, path, params=params, json=json, headers=sent
                )
            except httpx.TransportError as exc:
                wait = retry_delay(
                    self.retry, attempt=attempt, method=method,
                    retry_allowed=allowed, error=exc,
                )  # fmt: skip
                if wait is None:
                    raise ConnectionFailed(f"{method} {path}: {exc!r}") from exc
                attempt += 1
                self._notify(
                    method=method, path=path, attempt=attempt, wait=wait,
                    response=None, error=exc,
                )  # fmt: skip
                time.sleep(wait)
                continue
            if response.status_code < 400:
                return response
            if response.status_code == 401 and auth and self.can_login and not relogged:
                relogged = True
                self.login()
                continue
            wait = retry_delay(
                self.retry, attempt=attempt, method=method,
                retry_allowed=allowed, response=response,
            )  # fmt: skip
            if wait is None:
                raise error_from_response(response)
            attempt += 1
            self._notify(
                method=method, path=path, attempt=attempt, wait=wait,
                response=response, error=None,
            )  # fmt: skip
            time.sleep(wait)

    def _load_routes(self) -> dict[str, set[str]]:
        if self._routes is None:
            try:
                self._store_routes(self.http.get("/openapi.json"))
            except httpx.TransportError:
                return {}
        return self._routes or {}

    def offers(self, method: str, template: str) -> bool:
        """Whether the server's OpenAPI document lists ``method template``."""
        return self._offers(self._load_routes(), method, template)

    def query_maximum(self, method: str, template: str, name: str) -> int | None:
        """The documented maximum of a query parameter (e.g. ``max_points``)."""
        self._load_routes()
        return self._maximum(method, template, name)
