"""PROXY protocol v2 from a listed source (``proxy_protocol_from``), over real sockets.

The test plays the balancer from 127.0.0.1 (the listed source) and speaks for clients in
TEST-NET ranges: the access list, the rate limits and the query log see the client the
header names, not 127.0.0.1. A datagram from the listed source without a valid header is
dropped and counted; a header from any other source (127.0.0.2 here) is not read as one.
dnsdist itself speaking it to ``rootwalk serve``: ``tests/deploy/test_dnsdist.py``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.access import AccessRule
from resolver.transport.proxy import proxy_header
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port

ALLOWED = ("192.0.2.7", 40000)
"""A client the access list lets recurse (``allow_clients``)."""
OTHER_ALLOWED = ("192.0.2.8", 40001)
STRANGER = ("198.51.100.7", 40002)
"""A client the access list refuses: the header is all that makes it a stranger."""


@pytest.fixture(scope="module")
def proxied(stack: Stack) -> Iterator[Stack]:
    """A resolver of its own, on the session's lab (``stack`` runs it)."""
    settings = lab_settings(
        free_port(),
        proxy_protocol_from=(ipaddress.ip_network("127.0.0.1/32"),),
        allow_clients=(AccessRule.parse("192.0.2.0/24"),),
        client_rate_limit=1.0,
        client_rate_burst=3.0,
        rate_limit_action="refuse",
        query_log=True,
    )
    running = Stack(settings).start()
    yield running
    running.stop()


def query(qname: str = "www.example.lab.", message_id: int = 1) -> bytes:
    return dns.message.make_query(qname, "A", id=message_id).to_wire()


def udp(stack: Stack, *datagrams: bytes, source: str = "127.0.0.1") -> dns.message.Message:
    """Send ``datagrams`` from one socket bound to ``source``; the first reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(5)
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", stack.port))
        return dns.message.from_wire(sock.recvfrom(4096)[0])


def rejected(stack: Stack) -> int:
    return stack.service.frontend.rejected.get("proxy_header", 0)  # type: ignore[union-attr]


def test_the_access_list_sees_the_client_the_header_names(proxied: Stack) -> None:
    reply = udp(proxied, proxy_header(ALLOWED) + query())
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rr in reply.answer[0]] == ["192.0.2.10"]
    # 127.0.0.1 itself (loopback) would be let in: the header's stranger is not.
    assert udp(proxied, proxy_header(STRANGER) + query()).rcode() == dns.rcode.REFUSED


def test_rate_limits_count_each_named_client_apart(proxied: Stack) -> None:
    """Burst 3 per client: the fourth query naming one client is refused, while another
    client named by the same balancer is still answered."""
    rcodes = [
        udp(proxied, proxy_header(OTHER_ALLOWED) + query(message_id=i)).rcode() for i in range(4)
    ]
    assert rcodes == [dns.rcode.NOERROR] * 3 + [dns.rcode.REFUSED]
    reply = udp(proxied, proxy_header(("192.0.2.9", 1)) + query())
    assert reply.rcode() == dns.rcode.NOERROR


def test_the_query_log_names_the_real_client(
    proxied: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rootwalk.query"):
        udp(proxied, proxy_header(("192.0.2.77", 9)) + query())
    lines = [r.getMessage() for r in caplog.records if r.name == "rootwalk.query"]
    assert any("www.example.lab. A NOERROR udp from 192.0.2.77" in line for line in lines), lines


def test_a_datagram_without_a_header_from_the_listed_source_is_dropped(proxied: Stack) -> None:
    before = rejected(proxied)
    # The reply to the good datagram comes first: the bad ones got none.
    version_1 = bytearray(proxy_header(("192.0.2.20", 1)))
    version_1[12] = 0x11
    bad = [query(message_id=7), bytes(version_1) + query(message_id=8)]
    reply = udp(proxied, *bad, proxy_header(("192.0.2.20", 1)) + query(message_id=9))
    assert reply.id == 9
    assert rejected(proxied) == before + 2


def test_a_header_from_an_unlisted_source_is_not_read(proxied: Stack) -> None:
    """From 127.0.0.2 the header's bytes are the start of the DNS message: the resolver
    answers what they are (not a query for the name after them), as from the client
    127.0.0.2, and counts no bad header."""
    before = rejected(proxied)
    plain = udp(proxied, query(message_id=3), source="127.0.0.2")
    assert plain.id == 3 and plain.rcode() == dns.rcode.NOERROR
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(5)
        sock.sendto(proxy_header(ALLOWED) + query(message_id=4), ("127.0.0.1", proxied.port))
        sock.sendto(query(message_id=5), ("127.0.0.1", proxied.port))
        replies: list[bytes] = []
        while not replies or replies[-1][:2] != (5).to_bytes(2, "big"):
            replies.append(sock.recv(4096))
    # One error reply, its ID the signature's first two bytes, no answer, then query 5's.
    assert len(replies) == 2 and replies[0][:2] == b"\r\n", replies
    assert replies[0][3] & 0xF != dns.rcode.NOERROR and replies[0][6:8] == b"\x00\x00"
    assert rejected(proxied) == before


def tcp_exchange(stack: Stack, head: bytes, *queries: bytes) -> list[dns.message.Message]:
    """One TCP connection from 127.0.0.1: ``head``, then each query framed; the replies."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as sock:
        sock.sendall(head + b"".join(len(q).to_bytes(2, "big") + q for q in queries))
        replies = []
        for _ in queries:
            size = int.from_bytes(receive(sock, 2), "big")
            replies.append(dns.message.from_wire(receive(sock, size)))
        return replies


def receive(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def test_tcp_connections_carry_one_header_first(proxied: Stack) -> None:
    # Each test speaks for clients of its own: the rate limit counts per client.
    header = proxy_header(("192.0.2.30", 2), datagram=False)
    replies = tcp_exchange(proxied, header, query(message_id=1), query(message_id=2))
    assert sorted(r.id for r in replies) == [1, 2]
    assert all(r.rcode() == dns.rcode.NOERROR for r in replies)
    stranger = tcp_exchange(proxied, proxy_header(STRANGER, datagram=False), query())
    assert stranger[0].rcode() == dns.rcode.REFUSED


def test_a_header_split_over_several_segments_is_put_together(proxied: Stack) -> None:
    header = proxy_header(STRANGER, datagram=False)
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(header[:5])
        sock.sendall(header[5:20])
        wire = query()
        sock.sendall(header[20:] + len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(receive(sock, 2), "big")
        assert dns.message.from_wire(receive(sock, size)).rcode() == dns.rcode.REFUSED


def test_a_tcp_connection_without_a_header_is_closed(proxied: Stack) -> None:
    before = rejected(proxied)
    with pytest.raises(ConnectionError):
        tcp_exchange(proxied, b"", query())
    assert rejected(proxied) == before + 1
