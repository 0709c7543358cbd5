"""The entry points: :class:`Client` (blocking) and :class:`AsyncClient`.

>>> client = Client("http://127.0.0.1:8000", username="demo", password="demo-password")
>>> bt = client.backtests.submit(strategy="momentum", params={"top_n": 20},
...                              start="2015-01-01", end="2019-12-31", benchmark="SPY")
>>> bt.wait(progress=True).metrics["sharpe_ratio"]
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Self

import httpx

from backtest_client._http import OnRetry, RetryPolicy, SyncTransport
from backtest_client._http_async import AsyncTransport
from backtest_client._requests import resolve_strategy
from backtest_client.async_backtests import AsyncBacktests
from backtest_client.backtests import Backtests
from backtest_client.models import Strategy, Token, User
from backtest_client.sweeps import AsyncSweeps, Sweeps

ENV_URL = "BACKTEST_URL"
ENV_TOKEN = "BACKTEST_TOKEN"  # noqa: S105 - the variable's name
ENV_USERNAME = "BACKTEST_USERNAME"
ENV_PASSWORD = "BACKTEST_PASSWORD"  # noqa: S105 - the variable's name
DEFAULT_URL = "http://127.0.0.1:8000"


def _env_settings(base_url: str | None) -> dict[str, str | None]:
    return {
        "base_url": base_url or os.environ.get(ENV_URL) or DEFAULT_URL,
        "token": os.environ.get(ENV_TOKEN),
        "username": os.environ.get(ENV_USERNAME),
        "password": os.environ.get(ENV_PASSWORD),
    }


class Auth:
    """``client.auth``: accounts."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def register(self, username: str, password: str) -> User:
        response = self._client.transport.request(
            "POST", "/v1/auth/register",
            json={"username": username, "password": password}, auth=False,
        )  # fmt: skip
        return User.from_json(response.json())

    def login(self) -> Token:
        """Log in with the client's username and password (done for you on first
        use and again after a 401)."""
        return self._client.transport.login()

    def me(self) -> User:
        return User.from_json(
            self._client.transport.request("GET", "/v1/auth/me").json()
        )


class Strategies:
    """``client.strategies``: the predefined strategies (listed once per client)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._cache: list[Strategy] | None = None

    def list(self) -> list[Strategy]:
        if self._cache is None:
            response = self._client.transport.request("GET", "/v1/strategies")
            self._cache = [Strategy.from_json(s) for s in response.json()]
        return self._cache

    def resolve(self, strategy: str | int) -> int:
        """The id of a strategy given by id or by name (``"momentum"``)."""
        if isinstance(strategy, int) or strategy.strip().isdigit():
            return resolve_strategy(strategy, [])
        return resolve_strategy(strategy, self.list())


class Client:
    """A blocking client of the backtest service.

    Authenticate with ``token``, or ``username`` and ``password`` (logged in on
    first use, and again when the token expires). ``max_retries`` and ``max_wait``
    bound the automatic retries of 429 and 503 answers (``Retry-After`` honoured),
    which apply to reads, DELETE and requests with an ``Idempotency-Key`` (every
    ``submit``). ``on_retry`` is called before each retry's wait.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float = 60.0,
        on_retry: OnRetry | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.transport = SyncTransport(
            base_url,
            token=token,
            username=username,
            password=password,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, max_wait=max_wait),
            on_retry=on_retry,
            http=http_client,
        )
        self.auth = Auth(self)
        self.strategies = Strategies(self)
        self.backtests = Backtests(self)
        self.sweeps = Sweeps(self)

    @classmethod
    def from_env(cls, base_url: str | None = None, **options: object) -> Client:
        """URL and credentials from ``BACKTEST_URL``, ``BACKTEST_TOKEN``,
        ``BACKTEST_USERNAME``, ``BACKTEST_PASSWORD``."""
        return cls(**_env_settings(base_url), **options)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def token(self) -> str | None:
        return self.transport.token

    def me(self) -> User:
        return self.auth.me()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncAuth:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def register(self, username: str, password: str) -> User:
        response = await self._client.transport.request(
            "POST", "/v1/auth/register",
            json={"username": username, "password": password}, auth=False,
        )  # fmt: skip
        return User.from_json(response.json())

    async def login(self) -> Token:
        return await self._client.transport.login()

    async def me(self) -> User:
        response = await self._client.transport.request("GET", "/v1/auth/me")
        return User.from_json(response.json())


class AsyncStrategies:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._cache: list[Strategy] | None = None

    async def list(self) -> list[Strategy]:
        if self._cache is None:
            response = await self._client.transport.request("GET", "/v1/strategies")
            self._cache = [Strategy.from_json(s) for s in response.json()]
        return self._cache

    async def resolve(self, strategy: str | int) -> int:
        if isinstance(strategy, int) or strategy.strip().isdigit():
            return resolve_strategy(strategy, [])
        return resolve_strategy(strategy, await self.list())


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same resources, awaited."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float = 60.0,
        on_retry: OnRetry | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.transport = AsyncTransport(
            base_url,
            token=token,
            username=username,
            password=password,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, max_wait=max_wait),
            on_retry=on_retry,
            http=http_client,
        )
        self.auth = AsyncAuth(self)
        self.strategies = AsyncStrategies(self)
        self.backtests = AsyncBacktests(self)
        self.sweeps = AsyncSweeps(self)

    @classmethod
    def from_env(cls, base_url: str | None = None, **options: object) -> AsyncClient:
        return cls(**_env_settings(base_url), **options)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def token(self) -> str | None:
        return self.transport.token

    async def me(self) -> User:
        return await self.auth.me()

    async def aclose(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
