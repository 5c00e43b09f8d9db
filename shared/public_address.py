"""Where the server may connect on a customer's behalf: a public address, never its own network.

A customer's webhook URL is checked twice. When it is set (``shared.portal.webhook``), an
address named outright is judged: a private, link-local or reserved IP is refused, and in
production loopback too. A name cannot be judged then, since its owner's DNS may answer
differently later; so when a delivery is sent, :func:`pin` resolves the name, judges every
address it resolves to by the same rule, and the request goes to the judged address itself,
the name kept for the ``Host`` header and for TLS (SNI and the certificate's check). A DNS
answer that changes between the check and the connection (rebinding) cannot point it inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import NamedTuple
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NotPublic(Exception):
    """The URL's host is, or resolves to, an address the server must not call."""


class Pinned(NamedTuple):
    """A request to one judged address: ``url`` names the address, ``host`` is the original
    ``Host`` header and ``server_name`` the name TLS checks the certificate against."""

    url: str
    host: str
    server_name: str


def ascii_name(host: str) -> str:
    """``host`` as a resolver (and a Host header) reads it: "bücher.example" is
    "xn--bcher-kva.example", and "ⓛocalhost" is "localhost"."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise NotPublic("the webhook's host is not a valid name") from None


def ip_named(host: str) -> Address | None:
    """The address ``host`` names outright, in any form a resolver accepts (``127.1``,
    ``2130706433`` and ``0x7f.0.0.1`` are all 127.0.0.1), or None for a name."""
    try:
        return _unmapped(ipaddress.ip_address(host))
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None


def is_loopback(host: str) -> bool:
    """A host that is this machine: a loopback address, or ``localhost`` by name."""
    address = ip_named(host)
    if address is None:
        return host == "localhost" or host.endswith(".localhost")
    return address.is_loopback


def refused(address: Address, *, allow_loopback: bool) -> bool:
    """Not on the public internet (loopback only when ``allow_loopback``)."""
    if address.is_loopback:
        return not allow_loopback
    return not address.is_global or address.is_multicast


async def pin(url: str, *, allow_loopback: bool) -> Pinned:
    """Resolve ``url``'s host and point the request at one of its addresses, or raise
    :class:`NotPublic` when it does not resolve or any address it resolves to is refused.
    IPv4 is preferred: a serverless function often has no IPv6 route out."""
    parts = urlsplit(url)
    host = ascii_name(parts.hostname or "")
    default_port = 443 if parts.scheme == "https" else 80
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or default_port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise NotPublic(f"the webhook's host does not resolve ({exc})") from None
    addresses = [_unmapped(ipaddress.ip_address(answer[4][0])) for answer in answers]
    for address in addresses:
        if refused(address, allow_loopback=allow_loopback):
            raise NotPublic(f"the webhook's host resolves to {address}, which is not a public address")
    if not addresses:
        raise NotPublic("the webhook's host resolves to no address")
    chosen = min(addresses, key=lambda address: address.version)
    port = f":{parts.port}" if parts.port else ""
    netloc, host_header = _literal(chosen) + port, _literal(host) + port
    return Pinned(parts._replace(netloc=netloc).geturl(), host_header, host)


def _literal(host: Address | str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in str(host) else str(host)


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
