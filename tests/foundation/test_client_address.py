"""The client address behind trusted proxies: the right-most hop that is not ours."""

from __future__ import annotations

import pytest

from shared.client_address import networks, resolve

OURS = networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # a stranger's header is ignored
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own hop is not believed
        ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),  # our inner proxy is skipped
        ("127.0.0.1", "10.1.2.3, 10.4.5.6", "10.1.2.3"),  # only our proxies: the farthest
        ("127.0.0.1", "garbage, 10.4.5.6", "garbage"),
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", " , ", "127.0.0.1"),
        ("127.0.0.1", "x" * 500, "x" * 64),
    ],
)
def test_resolve(peer, forwarded, client):
    assert resolve(peer, forwarded, OURS) == client


def test_a_trusted_proxy_list_entry_must_be_an_address():
    with pytest.raises(SystemExit, match="TRUSTED_PROXIES"):
        networks(["not-an-ip"])
