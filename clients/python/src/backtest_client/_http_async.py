"""The asyncio transport: :class:`~backtest_client._http.SyncTransport`'s twin."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from backtest_client._http import (
    ConnectionFailed,
    OnRetry,
    Params,
    RetryPolicy,
    _TransportBase,
    retry_delay,
)
from backtest_client.errors import error_from_response
from backtest_client.models import Token


class AsyncTransport(_TransportBase):
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
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token=token,
            username=username,
            password=password,
            retry=retry or RetryPolicy(),
            on_retry=on_retry,
        )
        self.http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._login_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    async def login(self) -> Token:
        response = await self.request(
            "POST", "/v1/auth/login", json=self._login_body(), auth=False, retry=True
        )
        token = Token.from_json(response.json())
        self.token = token.access_token
        return token

    async def ensure_token(self) -> str | None:
        if self.token is None and self.can_login:
            async with self._login_lock:  # concurrent first requests: one login
                if self.token is None:
                    await self.login()
        return self.token

    async def request(
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
        """See :meth:`SyncTransport.request`."""
        if auth:
            await self.ensure_token()
        allowed = self._retry_allowed(method, headers or {}) if retry is None else retry
        attempt, relogged = 0, False
        while True:
            sent = self._headers(headers, auth)
            try:
                response = await self.http.request(
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
                await asyncio.sleep(wait)
                continue
            if response.status_code < 400:
                return response
            if response.status_code == 401 and auth and self.can_login and not relogged:
                relogged = True
                await self.login()
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
            await asyncio.sleep(wait)

    async def _load_routes(self) -> dict[str, set[str]]:
        if self._routes is None:
            try:
                self._store_routes(await self.http.get("/openapi.json"))
            except httpx.TransportError:
                return {}
        return self._routes or {}

    async def offers(self, method: str, template: str) -> bool:
        return self._offers(await self._load_routes(), method, template)

    async def query_maximum(self, method: str, template: str, name: str) -> int | None:
        await self._load_routes()
        return self._maximum(method, template, name)
