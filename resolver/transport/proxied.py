"""Listeners that take the PROXY protocol v2 from trusted sources (``proxy_protocol_from``).

Used only when that setting lists networks: the plain listeners
(:mod:`resolver.transport.listeners`) stay as they are, so the hit path pays nothing when no
balancer speaks the protocol. From a listed source, each datagram must start with a version
2 header (:func:`~resolver.transport.proxy.parse_proxy_header`) and each TCP connection
with one; the client the header names is the ``client`` that ``on_query`` gets, so the
access list, the rate limits, the query log and the metrics see it rather than the
balancer. The reply goes back to the balancer's socket address, without a header (as
dnsdist expects). A datagram from a listed source without a valid header is dropped, and a
TCP connection closed, counted as ``rejected["proxy_header"]``. From any other source
nothing is read as a header: the bytes are a DNS message like any other, so an unlisted
client cannot choose its address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable

from resolver.model import Transport
from resolver.transport.listeners import (
    Address,
    Listeners,
    OnQuery,
    TcpConnection,
    TcpLimits,
    TcpServerState,
    _UdpProtocol,
)
from resolver.transport.proxy import ProxyHeaderError, parse_proxy_header

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REJECTED_REASON = "proxy_header"
"""The ``rootwalk_client_rejected_total`` reason of a query dropped for its header."""
REMEMBERED_SOURCES = 1024
"""Source addresses whose trust is remembered (balancers are few; past this, each datagram
from a new address is checked against the networks again)."""


class ProxyTrust:
    """Which sources must send a header, and the count of those that sent a bad one."""

    def __init__(self, networks: Iterable[Network], rejected: dict[str, int]) -> None:
        self._networks = tuple(networks)
        self._rejected = rejected
        self._known: dict[str, bool] = {}

    def expects_header(self, host: str) -> bool:
        """Whether ``host`` (a socket's peer address) is a listed source."""
        known = self._known.get(host)
        if known is None:
            address = ipaddress.ip_address(host.partition("%")[0])
            known = any(address in network for network in self._networks)
            if len(self._known) < REMEMBERED_SOURCES:
                self._known[host] = known
        return known

    def reject(self, host: str, why: str) -> None:
        self._rejected[REJECTED_REASON] = self._rejected.get(REJECTED_REASON, 0) + 1
        log.debug("dropped a query from %s: bad PROXY header: %s", host, why)


class _ProxiedUdp(_UdpProtocol):
    def __init__(self, on_query: OnQuery, listeners: ProxiedListeners) -> None:
        super().__init__(on_query, listeners.counters)
        self._trust = listeners.trust

    def datagram_received(self, data: bytes, addr: Address) -> None:
        host = str(addr[0])
        if not self._trust.expects_header(host):
            super().datagram_received(data, addr)
            return
        try:
            header = parse_proxy_header(data)
            if header is None:
                raise ProxyHeaderError("truncated")
        except ProxyHeaderError as exc:
            self._trust.reject(host, str(exc))
            return
        client = header.source[0] if header.source is not None else host
        try:
            reply = self._on_query(
                data[header.length :], client, Transport.UDP, self._reply_to, addr
            )
        except Exception:
            self._counters.handler_errors += 1
            log.exception("handler failed for a UDP query from %s", client)
            return
        if type(reply) is bytes:
            self._outbox.add((reply, addr))


class _ProxiedTcp(TcpConnection):
    def __init__(self, server: TcpServerState, trust: ProxyTrust) -> None:
        super().__init__(server)
        self._trust = trust
        self._header_due = False
        self._head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._header_due = bool(self._client) and self._trust.expects_header(self._client)

    def data_received(self, data: bytes) -> None:
        if self._header_due:
            self._head.extend(data)
            try:
                header = parse_proxy_header(self._head)
            except ProxyHeaderError as exc:
                self._trust.reject(self._client, str(exc))
                self.close()
                return
            if header is None:  # the rest of the header is still on its way
                return
            self._header_due = False
            if header.source is not None:
                self._client = header.source[0]
            data = bytes(self._head[header.length :])
            self._head.clear()
            if not data:
                return
        super().data_received(data)


class ProxiedListeners(Listeners):
    """:class:`Listeners` whose sockets read a PROXY v2 header from the ``trusted``
    networks; bad headers are counted in ``rejected`` (the frontend's counts by reason)."""

    def __init__(
        self,
        on_query: OnQuery,
        tcp_limits: TcpLimits | None = None,
        *,
        trusted: Iterable[Network],
        rejected: dict[str, int],
    ) -> None:
        super().__init__(on_query, tcp_limits)
        self.trust = ProxyTrust(trusted, rejected)

    def _udp_protocol(self) -> asyncio.DatagramProtocol:
        return _ProxiedUdp(self.on_query, self)

    def _tcp_connection(self) -> asyncio.Protocol:
        return _ProxiedTcp(self.tcp, self.trust)
