"""Who is calling: the client address behind trusted proxies.

A forwarding header (``CLIENT_IP_HEADER``, ``X-Forwarded-For`` by default) is believed only
when the request comes from a peer in ``TRUSTED_PROXIES``, and then only its right-most
untrusted hop counts: every proxy appends the address it saw, so the hops to the left of the
last trusted one are whatever the client chose to send. Anyone else's header is ignored, so a
new header value per request cannot dodge a lockout keyed on the address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_LENGTH = 64


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` entries (addresses or CIDR blocks) as networks."""
    parsed = []
    for entry in entries:
        try:
            parsed.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise SystemExit(
                f"config: TRUSTED_PROXIES has {entry!r}, which is no address or network"
            ) from exc
    return tuple(parsed)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def resolve(peer: str, forwarded: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` itself, unless it is a trusted proxy that forwarded the
    request, in which case the right-most hop of ``forwarded`` that is not one of ours."""
    if not forwarded or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:_MAX_LENGTH]
    return hops[0][:_MAX_LENGTH] if hops else peer
