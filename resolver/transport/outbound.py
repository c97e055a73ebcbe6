"""Where the resolver may send a query: the outbound allow-list and this host's own
addresses, checked before any socket exists (Unbound's ``do-not-query-localhost``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


LOCAL_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("::/128"),
)
"""This host's own addresses: loopback, and "this network" / unspecified, which Linux
delivers locally too (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2-3). Never queried unless the
outbound allow-list names them (as Unbound's ``do-not-query-localhost: yes``)."""


def _local_network_of(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IPNetwork | None:
    return next((network for network in LOCAL_NETWORKS if ip in network), None)


def is_local_address(address: str) -> bool:
    """True for an address of this host (:data:`LOCAL_NETWORKS`; an IPv4-mapped IPv6
    address counts as its IPv4 address)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return _local_network_of(ip) is not None


def is_allowed(address: str, allow: Sequence[IPNetwork]) -> bool:
    """True when ``address`` lies in one of the ``allow`` networks. A local address
    (:data:`LOCAL_NETWORKS`) must be named: only an entry inside a local range counts, so
    ``0.0.0.0/0`` allows the internet but not 127.0.0.1, while ``127.0.0.0/8`` or
    ``127.53.0.0/16`` allow the lab (Unbound's ``do-not-query-localhost``)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    local = _local_network_of(ip)
    if local is None:
        return any(ip in network for network in allow)
    return any(ip in network and _is_inside(network, local) for network in allow)


def _is_inside(network: IPNetwork, outer: IPNetwork) -> bool:
    """``network`` lies wholly inside ``outer`` (same family)."""
    return (
        network.version == outer.version
        and int(network.network_address) >= int(outer.network_address)
        and int(network.broadcast_address) <= int(outer.broadcast_address)
    )
