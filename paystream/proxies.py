"""Who the client is behind trusted proxies (``PAYSTREAM_TRUSTED_PROXIES``): plain functions.

A proxy (an ingress, a load balancer) appends the address of whoever connected to it to
``X-Forwarded-For`` and says in ``X-Forwarded-Proto`` whether that connection was https.
Anybody can send those headers, so they are believed only when the peer that connected to
us is a configured proxy, and ``X-Forwarded-For`` is read from the right: every hop that is
itself a trusted proxy is skipped, and the first one that is not is the client (what nginx's
``real_ip_recursive on`` does). Addresses to the left of it were written by the client and
mean nothing.

An IPv6 client is named by its /64 network: one host usually has a whole /64 to pick
addresses from, and a throttle keyed on single addresses would give it 2^64 buckets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: longest header we look at (a proxy chain is a handful of hops)
MAX_HEADER = 2048
#: hops read from the right of ``X-Forwarded-For`` at most
MAX_HOPS = 16


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7, fd00::/8"`` → networks; ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not an address or CIDR network") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_key(address: Address) -> str:
    """The throttle's name for a client: its IPv4 address, or its IPv6 /64 network."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client a request comes from, as ``client_key`` names it.

    ``peer`` is the connected address (aiohttp's ``request.remote``); without a parseable
    one the answer is ``"unknown"``. ``X-Forwarded-For`` counts only from a trusted peer.
    """
    hop = _address(peer or "")
    if hop is None:
        return "unknown"
    if not _trusted(hop, trusted) or not forwarded_for:
        return client_key(hop)
    for item in reversed(forwarded_for[:MAX_HEADER].split(",")[-MAX_HOPS:]):
        found = _address(item)
        if found is None:
            break  # not an address: the proxy to its right is the last hop we know
        hop = found
        if not _trusted(hop, trusted):
            break
    return client_key(hop)


def forwarded_https(
    scheme: str, peer: str | None, forwarded_proto: str | None, trusted: Sequence[Network]
) -> bool:
    """True when the browser's connection was https: ours, or a trusted proxy's (it says so
    in ``X-Forwarded-Proto``; the first value is the one facing the browser)."""
    if scheme == "https":
        return True
    hop = _address(peer or "")
    if hop is None or not forwarded_proto or not _trusted(hop, trusted):
        return False
    return forwarded_proto[:MAX_HEADER].split(",")[0].strip().lower() == "https"
