"""The SSRF guard's address rules and URL check (names resolved by a fixed table:
the check must refuse a name by what it resolves to, whatever DNS says)."""

from __future__ import annotations

import pytest

from app.webhooks.ssrf import UnsafeUrl, address_refusal, check_url

TABLE = {
    "intranet.example": ["10.20.30.40"],
    "mixed.example": ["93.184.216.34", "192.168.1.10"],
    "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
}


def resolver(host: str, port: int) -> list[str]:
    return TABLE[host]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "reserved"),
        ("::ffff:10.0.0.1", "private"),
        ("100.100.100.200", "metadata"),
    ],
)
def test_address_refusal_names_the_reason(address: str, reason: str) -> None:
    assert reason in (address_refusal(address) or "")


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_address_refusal_accepts_public_unicast(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://intranet.example/hook", "private"),
        ("https://mixed.example/hook", "private"),  # any bad address refuses
        ("https://mapped.example/hook", "loopback"),
        ("http://public.example/hook", "https"),
        ("https:///nohost", "no host"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url, allowed_hosts=[], resolver=resolver)


def test_check_url_accepts_public_https_and_allowlisted_http() -> None:
    check_url("https://public.example/hook", allowed_hosts=[], resolver=resolver)
    check_url(
        "http://intranet.example:8080/hook",
        allowed_hosts=["intranet.example"],
        resolver=resolver,
    )
