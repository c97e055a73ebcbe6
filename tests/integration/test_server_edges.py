"""TCP pipelining and limits, malformed input, access and outbound allow-lists."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.core.events import Action, Event
from resolver.core.machine import Resolution
from resolver.model import Question
from resolver.transport.framing import frame
from tests.helpers import lab_with
from tests.integration.conftest import RESOLVER_PORT, lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port

SERVER = "127.0.0.1"


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    (length,) = struct.unpack("!H", exactly(2))
    return exactly(length)


def good_query_is_answered(port: int = RESOLVER_PORT) -> None:
    reply = dns.query.udp(
        dns.message.make_query("www.example.lab.", "A"), SERVER, timeout=5, port=port
    )
    assert reply.answer[0][0].to_text() == "192.0.2.10"


def test_pipelined_queries_on_one_connection_are_all_answered(stack: Stack) -> None:
    names = [
        "www.example.lab.",
        "www.lame.lab.",
        "alias.example.lab.",
        "nx.example.lab.",
        "www.glueless.lab.",
        "chain.example.lab.",
    ]
    queries = {}
    for index, name in enumerate(names):
        query = dns.message.make_query(name, "A", id=1000 + index)
        queries[query.id] = name
    with socket.create_connection((SERVER, RESOLVER_PORT), timeout=10) as sock:
        sock.sendall(
            b"".join(
                frame(dns.message.make_query(n, "A", id=i).to_wire()) for i, n in queries.items()
            )
        )
        replies = [dns.message.from_wire(read_frame(sock)) for _ in names]
    assert {r.id for r in replies} == set(queries)
    for reply in replies:
        assert reply.question[0].name.to_text() == queries[reply.id]


def test_malformed_packets_do_not_stop_the_server(stack: Stack) -> None:
    good = dns.message.make_query("www.example.lab.", "A", id=77).to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for junk in [
            b"",
            b"\x00",
            b"\xff" * 11,
            good[:14],
            good[:12] + b"\xc0\x0c\x00\x01\x00\x01",
            bytes(range(256)) * 4,
        ]:
            sock.sendto(junk, (SERVER, RESOLVER_PORT))
        sock.sendto(good[:14], (SERVER, RESOLVER_PORT))
        reply = None
        while reply is None or reply.id != 77:
            data, _ = sock.recvfrom(4096)
            reply = dns.message.from_wire(data)
            if reply.id == 77:
                assert reply.rcode() == dns.rcode.FORMERR
                break
    with socket.create_connection((SERVER, RESOLVER_PORT), timeout=5) as tcp:
        tcp.sendall(frame(b"\x01\x02\x03") + frame(good[:13]))
        first = read_frame(tcp)
        assert dns.message.from_wire(first).rcode() == dns.rcode.FORMERR
    good_query_is_answered()


def test_zero_length_tcp_frame_closes_only_that_connection(stack: Stack) -> None:
    with socket.create_connection((SERVER, RESOLVER_PORT), timeout=5) as tcp:
        tcp.sendall(b"\x00\x00")
        assert tcp.recv(10) == b""
    good_query_is_answered()


def test_responses_are_dropped_not_answered(stack: Stack) -> None:
    response = dns.message.make_response(dns.message.make_query("www.example.lab.", "A"))
    with socket.create_connection((SERVER, RESOLVER_PORT), timeout=5) as tcp:
        tcp.sendall(
            frame(response.to_wire())
            + frame(dns.message.make_query("localhost.", "A", id=5).to_wire())
        )
        reply = dns.message.from_wire(read_frame(tcp))
        assert reply.id == 5  # the only reply is to the query


@pytest.fixture
def small_stack() -> Iterator[Stack]:
    settings = lab_settings(free_port(), max_tcp_connections=2, tcp_idle_timeout_s=0.2)
    running = Stack(settings).start()  # shares the session lab's servers
    yield running
    running.stop()


def test_tcp_connection_limit_and_idle_timeout(stack: Stack, small_stack: Stack) -> None:
    port = small_stack.port
    first = socket.create_connection((SERVER, port), timeout=5)
    second = socket.create_connection((SERVER, port), timeout=5)
    third = socket.create_connection((SERVER, port), timeout=5)
    try:
        first.sendall(frame(dns.message.make_query("localhost.", "A", id=9).to_wire()))
        assert dns.message.from_wire(read_frame(first)).id == 9
        assert third.recv(10) == b""  # over the limit: closed at once
        assert first.recv(10) == b""  # idle: closed by the server, not by this test
        assert second.recv(10) == b""
    finally:
        for sock in (first, second, third):
            sock.close()
    listeners = small_stack.service.listeners
    assert listeners is not None and listeners.tcp.rejected >= 1
    good_query_is_answered(port)


def test_outbound_allow_list_refuses_without_sending(tmp_path: Path) -> None:
    hints = tmp_path / "hints"
    hints.write_text(". 3600 NS a.root.test.\na.root.test. 3600 A 192.0.2.1\n")
    port = free_port()
    settings = lab_settings(
        port, root_hints=hints, outbound_allow=(ipaddress.ip_network("127.0.0.0/8"),)
    )
    running = Stack(settings).start()
    try:
        reply = dns.query.udp(
            dns.message.make_query("www.example.lab.", "A", use_edns=0),
            SERVER,
            timeout=5,
            port=port,
        )
        assert reply.rcode() == dns.rcode.SERVFAIL
        upstream = running.service.upstream
        assert upstream is not None
        assert upstream.counters.prohibited >= 1
        assert upstream.counters.sent_udp == 0
        assert "outbound allow-list" in reply.options[0].to_text()
    finally:
        running.stop()


def test_deadline_gives_servfail_while_the_zone_is_slow(stack: Stack, tmp_path: Path) -> None:
    """slow.lab.'s only server answers 0.5 s late; with a 0.1 s try timeout and a 0.3 s
    deadline the client gets SERVFAIL that names the zone, not silence."""
    port = free_port()
    settings = lab_settings(port, upstream_timeout_s=0.1, client_deadline_s=0.3)
    running = Stack(settings).start()
    try:
        reply = dns.query.udp(
            dns.message.make_query("www.slow.lab.", "A", use_edns=0),
            SERVER,
            timeout=5,
            port=port,
        )
        assert reply.rcode() == dns.rcode.SERVFAIL
        text = reply.options[0].to_text()
        assert "slow.lab." in text
    finally:
        running.stop()


def test_edns_fallback_over_real_sockets() -> None:
    faulty = lab_with().with_faults("127.53.3.1", "127.53.3.2", formerr_edns=True)
    port, faulty_lab_port = free_port(), lab_port()
    running = Stack(
        lab_settings(port, outbound_port=faulty_lab_port), faulty, faulty_lab_port
    ).start()
    try:
        good_query_is_answered(port)
    finally:
        running.stop()


def test_per_client_rate_limit_refuses_then_recovers() -> None:
    from tests.clock import FakeClock  # noqa: PLC0415

    clock = FakeClock()
    port = free_port()
    settings = lab_settings(
        port, client_rate_limit=5.0, client_rate_burst=5.0, rate_limit_action="refuse"
    )
    running = Stack(settings, clock=clock).start()
    try:
        rcodes = [
            dns.query.udp(
                dns.message.make_query("localhost.", "A"), SERVER, timeout=5, port=port
            ).rcode()
            for _ in range(8)
        ]
        assert rcodes == [dns.rcode.NOERROR] * 5 + [dns.rcode.REFUSED] * 3
        clock.now += 1.0  # five new tokens
        again = dns.query.udp(
            dns.message.make_query("localhost.", "A"), SERVER, timeout=5, port=port
        )
        assert again.rcode() == dns.rcode.NOERROR
        assert running.service.frontend is not None
        assert running.service.frontend.rejected["ratelimited"] == 3
    finally:
        running.stop()


def test_a_bug_while_answering_loses_that_answer_only(stack: Stack) -> None:
    """A failure while rendering a resolved answer (forced here: rendering raises) costs
    that query its answer, is counted as a bug, leaves nothing counted in flight, and the
    server answers the next query."""
    port = free_port()
    running = Stack(lab_settings(port)).start()
    frontend = running.service.frontend
    assert frontend is not None and running.service.driver is not None
    render_and_store = frontend._render_and_store

    def broken(*args: object) -> bytes:
        raise RuntimeError("a rendering bug")

    try:
        frontend._render_and_store = broken  # type: ignore[method-assign]
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(
                dns.message.make_query("www.example.lab.", "A"), SERVER, timeout=1, port=port
            )
        assert running.service.driver.bugs == 1
        assert frontend.pending == 0
        frontend._render_and_store = render_and_store  # type: ignore[method-assign]
        good_query_is_answered(port)
        assert frontend.pending == 0
    finally:
        running.stop()


def test_a_bug_in_a_sub_resolution_leaves_no_job_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug while resolving a name server's address (planted: the sub-resolution of
    nsg.other.example. raises once) SERVFAILs the client at once, is counted (the mesh
    fails the resolution whose step raised, not the driver), and ends the
    sub-resolution too: left in the mesh without a parent, it kept its question in flight,
    and the next client asking for www.glueless.lab. merged into it and waited out its whole
    deadline (3 s) for a SERVFAIL."""
    port, own_lab_port = free_port(), lab_port()
    running = Stack(lab_settings(port, outbound_port=own_lab_port), lab_with(), own_lab_port)
    running.start()
    handle = Resolution.handle
    raised: list[Question] = []

    def broken_once(self: Resolution, event: Event, now: float) -> list[Action]:
        if self.question.qname.to_text().startswith("nsg.") and not raised:
            raised.append(self.question)
            raise RuntimeError("a planted bug in a sub-resolution")
        return handle(self, event, now)

    monkeypatch.setattr(Resolution, "handle", broken_once)
    query = dns.message.make_query("www.glueless.lab.", "A")
    try:
        failed = dns.query.udp(query, SERVER, timeout=5, port=port)
        assert failed.rcode() == dns.rcode.SERVFAIL and raised
        mesh = running.service.mesh
        assert mesh is not None and mesh.counters.bugs == 1  # the mesh failed it, and counted
        assert len(mesh) == 0
        answered = dns.query.udp(query, SERVER, timeout=1, port=port)  # no 3 s merged wait
        assert answered.rcode() == dns.rcode.NOERROR and answered.answer
    finally:
        running.stop()
