"""Which addresses the server may call for a customer, and how a URL is pinned to one."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from shared import public_address
from shared.public_address import NotPublic, Pinned

INSIDE = [
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # a cloud's metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "fd00::1",
    "fe80::1",
    "::",
]


@pytest.mark.parametrize("address", INSIDE)
def test_private_reserved_and_multicast_addresses_are_refused(address):
    assert public_address.refused(ipaddress.ip_address(address), allow_loopback=True)


def test_loopback_only_when_allowed_and_public_addresses_always():
    for loopback in ("127.0.0.1", "127.9.9.9", "::1"):
        assert public_address.refused(ipaddress.ip_address(loopback), allow_loopback=False)
        assert not public_address.refused(ipaddress.ip_address(loopback), allow_loopback=True)
    for public in ("8.8.8.8", "2001:4860:4860::8888"):
        assert not public_address.refused(ipaddress.ip_address(public), allow_loopback=False)


def test_an_address_is_read_in_every_form_a_resolver_accepts():
    for form in ("127.1", "2130706433", "0x7f.0.0.1", "::ffff:127.0.0.1"):
        assert public_address.ip_named(form) == ipaddress.ip_address("127.0.0.1")
    assert public_address.ip_named("hooks.example.com") is None
    assert public_address.is_loopback("localhost") and public_address.is_loopback("api.localhost")
    assert not public_address.is_loopback("hooks.example.com")


def pin(url: str, allow_loopback: bool = False) -> Pinned:
    return asyncio.run(public_address.pin(url, allow_loopback=allow_loopback))


def test_a_public_url_is_pinned_to_its_address_keeping_the_name_for_host_and_tls():
    assert pin("https://8.8.8.8/hook?x=1") == Pinned("https://8.8.8.8/hook?x=1", "8.8.8.8", "8.8.8.8")
    assert pin("https://[2001:4860:4860::8888]:8443/h") == Pinned(
        "https://[2001:4860:4860::8888]:8443/h", "[2001:4860:4860::8888]:8443", "2001:4860:4860::8888"
    )
    assert pin("http://\u24dbocalhost:9/h", allow_loopback=True) == Pinned(  # IDNA maps it to "l"
        "http://127.0.0.1:9/h", "localhost:9", "localhost"
    )
    assert pin("http://localhost:9/h", allow_loopback=True) == Pinned(
        "http://127.0.0.1:9/h", "localhost:9", "localhost"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://10.0.0.5/hook", "resolves to 10.0.0.5"),
        ("https://[::ffff:169.254.169.254]/hook", "resolves to 169.254.169.254"),
        ("http://localhost:9/hook", "resolves to 127.0.0.1"),
        ("http://\u24dbocalhost:9/hook", "resolves to 127.0.0.1"),  # a name set-time checks cannot read
        ("https://b\u00fccher.invalid/hook", "does not resolve"),
        ("https://a..b/hook", "not a valid name"),
        ("https://nothing.invalid/hook", "does not resolve"),
    ],
)
def test_a_url_that_is_or_resolves_inside_is_not_pinned(url, says):
    with pytest.raises(NotPublic, match=says):
        pin(url)
