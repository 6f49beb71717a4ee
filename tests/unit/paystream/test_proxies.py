"""The client behind trusted proxies, and whether its connection was https."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.proxies import (
    client_address,
    forwarded_https,
    parse_trusted_proxies,
)

PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.7, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: header ignored
        ("10.1.2.3", None, "10.1.2.3"),  # a proxy that says nothing is the client
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "1.1.1.1, 198.51.100.1", "198.51.100.1"),  # left of it: client's lies
        ("10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"),  # proxy chain
        ("10.1.2.3", "10.4.4.4, 10.5.5.5", "10.4.4.4"),  # all proxies: the farthest
        ("10.1.2.3", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "198.51.100.1, garbage", "10.1.2.3"),  # the proxy wrote no address
        ("10.1.2.3", "198.51.100.1:4711", "198.51.100.1"),
        ("10.1.2.3", "[2001:db8::1]:443", "2001:db8::/64"),
        ("10.1.2.3", "2001:db8::1", "2001:db8::/64"),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),  # a v6 client is its /64
        ("fd00::1", "2001:db8::9", "2001:db8::/64"),
        ("::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"),  # v4-mapped peer
        ("192.168.1.7", "198.51.100.1", "198.51.100.1"),
        ("192.168.1.8", "198.51.100.1", "192.168.1.8"),
        (None, "198.51.100.1", "unknown"),
        ("not-an-ip", "198.51.100.1", "unknown"),
    ],
)
def test_client_address(peer: str | None, xff: str | None, client: str) -> None:
    assert client_address(peer, xff, PROXIES) == client


@pytest.mark.parametrize(
    ("scheme", "peer", "proto", "https"),
    [
        ("https", "203.0.113.5", None, True),
        ("http", "203.0.113.5", None, False),
        ("http", "203.0.113.5", "https", False),  # not from a proxy: ignored
        ("http", "10.0.0.1", "https", True),
        ("http", "10.0.0.1", "HTTPS, http", True),
        ("http", "10.0.0.1", "http", False),
        ("http", None, "https", False),
    ],
)
def test_forwarded_https(scheme: str, peer: str | None, proto: str | None, https: bool) -> None:
    assert forwarded_https(scheme, peer, proto, PROXIES) is https


@pytest.mark.parametrize("text", ["10.0.0.0/33", "example.com", "10.0.0.0/8, nope"])
def test_a_bad_proxy_list_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not an address or CIDR"):
        parse_trusted_proxies(text)


def test_no_proxies_is_an_empty_list() -> None:
    assert parse_trusted_proxies(" , ") == ()


_v4 = st.ip_addresses(v=4).map(str)


@given(peer=_v4, xff=st.lists(_v4, max_size=6).map(", ".join) | st.text(max_size=80))
def test_an_untrusted_peer_is_always_the_client(peer: str, xff: str) -> None:
    if ipaddress.ip_address(peer) in ipaddress.ip_network("10.0.0.0/8") or peer == "192.168.1.7":
        return
    assert client_address(peer, xff, PROXIES) == peer


@given(client=_v4, lies=st.lists(_v4, max_size=4), hops=st.lists(st.just("10.2.3.4"), max_size=3))
def test_whatever_the_client_prepends_the_proxy_reported_address_counts(
    client: str, lies: list[str], hops: list[str]
) -> None:
    if ipaddress.ip_address(client) in ipaddress.ip_network("10.0.0.0/8"):
        return
    if client == "192.168.1.7":
        return
    xff = ", ".join([*lies, client, *hops])
    assert client_address("10.0.0.1", xff, PROXIES) == client
