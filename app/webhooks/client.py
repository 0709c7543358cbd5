"""The HTTP client for user-supplied URLs (webhook deliveries): httpx over a network
backend that applies the SSRF guard (:mod:`app.webhooks.ssrf`) to the address it
dials and to the peer of the connected socket. Worker side: the API process only
checks URLs at registration and never imports httpx.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from app.webhooks.ssrf import (
    Resolver,
    UnsafeUrl,
    address_refusal,
    is_allowed_host,
    resolve,
)


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses :func:`address_refusal` accepts, checking both
    the resolved address it dials and the peer address of the connected socket."""

    def __init__(self, allowed_hosts: Iterable[str], resolver: Resolver) -> None:
        self.inner = httpcore.SyncBackend()
        self.allowed_hosts = list(allowed_hosts)
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if is_allowed_host(host, self.allowed_hosts):
            return self.inner.connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        try:
            addresses = self.resolver(host, port)
        except UnsafeUrl as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        for address in addresses:
            if reason := address_refusal(address):
                raise httpcore.ConnectError(f"{host} resolves to {reason}")
        stream = self.inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )
        peer = stream.get_extra_info("server_addr")
        if peer and (reason := address_refusal(str(peer[0]))):
            stream.close()
            raise httpcore.ConnectError(f"connected to {reason}")
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle costs tens of milliseconds."""
    return ssl.create_default_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_GuardedBackend`. TLS still verifies the
    certificate against the URL's host name (SNI), not the dialled address."""

    def __init__(
        self, *, allowed_hosts: Iterable[str], resolver: Resolver = resolve
    ) -> None:
        super().__init__(verify=_tls_context(), trust_env=False)
        # The pool is httpx's own attribute: replaced (same TLS settings) with one
        # whose network backend is guarded; httpx offers no public hook for that.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(),
            max_connections=10,
            network_backend=_GuardedBackend(allowed_hosts, resolver),
        )


def guarded_client(
    *, allowed_hosts: Iterable[str], timeout: float, resolver: Resolver = resolve
) -> httpx.Client:
    """An HTTP client for user-supplied URLs: guarded addresses, no redirects, no
    proxies from the environment, a total timeout per request."""
    return httpx.Client(
        transport=GuardedTransport(allowed_hosts=allowed_hosts, resolver=resolver),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "backtest-service-webhooks/1"},
    )
