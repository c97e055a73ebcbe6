"""Bad clients: random and mutated packets over UDP and TCP (Hypothesis, bounded), and TCP
abuse (idle connections, slow senders, unfinished messages). The server must not fail a
single handler, and must keep answering well-formed queries during and after."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.message
import dns.query
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.transport.framing import frame
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port

PORT = free_port()
GOOD = dns.message.make_query("www.example.lab.", "A", use_edns=0).to_wire()


@pytest.fixture(scope="module")
def target(stack: Stack) -> Iterator[Stack]:
    running = Stack(lab_settings(PORT, max_tcp_connections=16, tcp_idle_timeout_s=0.5)).start()
    yield running
    running.stop()


def still_answers() -> None:
    reply = dns.query.udp(
        dns.message.make_query("www.example.lab.", "A"), "127.0.0.1", port=PORT, timeout=5
    )
    assert reply.answer[0][0].to_text() == "192.0.2.10"


def mutated(data: st.DataObject) -> bytes:
    wire = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    return bytes(wire[:cut]) + data.draw(st.binary(max_size=16))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_udp_fuzz(target: Stack, data: st.DataObject) -> None:
    packet = data.draw(st.binary(max_size=600)) if data.draw(st.booleans()) else mutated(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, ("127.0.0.1", PORT))
    listeners = target.service.listeners
    assert listeners is not None and listeners.counters.handler_errors == 0


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_tcp_fuzz(target: Stack, data: st.DataObject) -> None:
    payload = (
        mutated(data)
        if data.draw(st.booleans())
        else data.draw(st.binary(min_size=1, max_size=300))
    )
    framed = frame(payload) if data.draw(st.booleans()) else payload
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as sock:
        sock.sendall(framed + frame(GOOD))
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):  # read until the server closes (idle timeout or framing error)
            pass
    listeners = target.service.listeners
    assert listeners is not None and listeners.counters.handler_errors == 0


def test_fuzzing_left_the_server_answering(target: Stack) -> None:
    still_answers()


def test_tcp_abuse_is_bounded_and_udp_keeps_working(target: Stack) -> None:
    idle = [socket.create_connection(("127.0.0.1", PORT), timeout=5) for _ in range(16)]
    slow = idle[0]
    try:
        slow.sendall(frame(GOOD)[:5])  # an unfinished message
        still_answers()  # UDP unaffected while TCP is full
        extra = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        assert extra.recv(10) == b""  # over the limit: closed at once
        extra.close()
        for sock in idle:
            assert sock.recv(10) == b""  # idle and unfinished connections time out
    finally:
        for sock in idle:
            sock.close()
    listeners = target.service.listeners
    assert listeners is not None and listeners.tcp.rejected >= 1
    assert listeners.counters.handler_errors == 0
    still_answers()


def test_fuzzing_left_nothing_behind(target: Stack) -> None:
    """Bounded state after the fuzzing: nothing in flight, caches within their limits."""
    service = target.service
    assert service.mesh is not None and len(service.mesh) == 0
    assert service.frontend is not None and service.frontend.pending == 0
    assert service.answers.bytes_used <= target.settings.answer_cache_bytes
    assert service.caches.rrsets.bytes_used <= target.settings.rrset_cache_bytes
