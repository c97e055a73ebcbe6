"""A busy event loop is not a silent server (issue 12: the cold signed path asked 3.31
upstream queries per never-seen name under load where the in-process count is 3.00). Under
load one turn of the loop handles many replies; a try queued early in it is sent at its end
(``SocketWatch.send_soon``), and its wait (the RTO, 50 ms at least) used to count from the
queueing, so it could be over before the server had a chance: a second try for nothing.
Real sockets on loopback, the real :class:`Upstream`, on uvloop as ``rootwalk serve`` runs."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from resolver.core.events import QueryFailed, ReplyReceived, SendQuery
from resolver.transport.upstream import Upstream

uvloop = pytest.importorskip("uvloop")
QNAME = dns.name.from_text("www.example.lab.")


@pytest.fixture
def server() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def answer_one(server: socket.socket) -> None:
    """The server's part, done inside the loop's turn (the turn the loop is busy with)."""
    wire, address = server.recvfrom(65535)
    query = dns.message.from_wire(wire)
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(QNAME, 300, "IN", "A", "192.0.2.1"))
    server.sendto(reply.to_wire(), address)


def ask(
    server: socket.socket, timeout_s: float, *, busy_after_send: bool
) -> list[ReplyReceived | QueryFailed]:
    """Send one query whose wait is ``timeout_s``; the server answers in the turn the query
    leaves in, and with ``busy_after_send`` that turn then works on for twice the wait (a
    CPU-bound stretch, as validating a few replies is). The outcomes reported over the next
    few turns."""
    upstream = Upstream(port=server.getsockname()[1], allow=[ipaddress.ip_network("127.0.0.0/8")])
    send = SendQuery(
        ref=1,
        server="127.0.0.1",
        qname=QNAME,
        qtype=dns.rdatatype.A,
        use_edns=True,
        zone=dns.name.root,
        timeout_s=timeout_s,
        qname_key=QNAME.canonicalize().to_wire(),
        zone_key=b"\x00",
    )
    outcomes: list[ReplyReceived | QueryFailed] = []

    async def run() -> None:
        upstream.send(send, outcomes.append, owner="resolution")
        await asyncio.sleep(0)  # the query leaves at the end of this turn, before we go on
        answer_one(server)
        if busy_after_send:
            until = time.monotonic() + 2 * timeout_s
            while time.monotonic() < until:  # the loop is busy, not waiting
                pass
        for _ in range(10):
            await asyncio.sleep(0)
            if outcomes:
                break
        upstream.close()

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    return outcomes


def test_the_wait_starts_when_the_query_leaves(server: socket.socket) -> None:
    """A try queued in a turn is sent at its end (``SocketWatch.send_soon``); its wait
    (here 0 s: due at the next turn) counts from then, not from when it was queued."""
    outcomes = ask(server, timeout_s=0.0, busy_after_send=False)
    assert [type(outcome) for outcome in outcomes] == [ReplyReceived]


def test_a_reply_that_came_during_a_busy_turn_is_no_timeout(server: socket.socket) -> None:
    """The reply is in the socket before the wait ends, but the loop is busy past it: the
    loop polls the sockets before it runs due timers (uvloop's libuv does since 1.45), so
    the reply wins and the transport needs no check of its own at the timer. A guard on
    that order: if a loop ran timers first, this fails."""
    outcomes = ask(server, timeout_s=0.02, busy_after_send=True)
    assert [type(outcome) for outcome in outcomes] == [ReplyReceived]
