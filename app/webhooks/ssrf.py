"""The SSRF guard: the service only calls public addresses over https.

Checked twice: when a URL is registered (``check_url``: scheme, host, every address
the name resolves to) and again on every delivery, on the address the socket is
actually connected to (``app.webhooks.client.GuardedTransport``, worker side: it
imports httpx, which the API process does not need), so a name that resolved to a
public address at registration and to 10.0.0.5 later (DNS rebinding) is refused
then.

A host in ``WEBHOOK_ALLOWED_HOSTS`` (e.g. ``127.0.0.1`` in the tests, an internal
receiver in an intranet deployment) may be called over http and on any address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Cloud metadata services that are not in a private or link-local range.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack (also link-local)
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata"})


class UnsafeUrl(ValueError):  # noqa: N818 - reads as what the URL is
    """The URL may not be called; ``str(exc)`` says why (shown to the user)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_refusal(address: str) -> str | None:
    """Why ``address`` may not be called, or None for a public unicast address."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for refused, label in (
        (ip.is_unspecified, "a reserved address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
    ):
        if refused:
            return label
    return None


def is_allowed_host(host: str, allowed_hosts: Iterable[str]) -> bool:
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in allowed_hosts}


def check_url(
    url: str, *, allowed_hosts: Iterable[str], resolver: Resolver = resolve
) -> None:
    """Raise :class:`UnsafeUrl` unless ``url`` may be called."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed")
    allowed = is_allowed_host(host, allowed_hosts)
    if parts.scheme != "https" and not (parts.scheme == "http" and allowed):
        raise UnsafeUrl("the URL must use https")
    if allowed:
        return
    if host in METADATA_HOSTS:
        raise UnsafeUrl(f"{host} is a cloud metadata host")
    default_port = 443 if parts.scheme == "https" else 80
    for address in resolver(host, port or default_port):
        if reason := address_refusal(address):
            raise UnsafeUrl(f"{host} resolves to {reason} ({address})")
