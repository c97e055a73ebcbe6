"""The caches over real sockets: coalescing counted at the lab server, hits from stored
wire bytes, TTLs on an injected clock, EDNS size fitting on hits."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.clock import FakeClock
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port

PORT = free_port()
SERVER = "127.0.0.1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cached(stack: Stack, clock: FakeClock) -> Iterator[Stack]:
    """A resolver with an injected clock, sharing the session's lab servers."""
    running = Stack(
        lab_settings(PORT, upstream_timeout_s=2.0, client_deadline_s=4.0), clock=clock
    ).start()
    yield running
    running.stop()


def ask(qname: str, qtype: str = "A", **kwargs: object) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, **kwargs)  # type: ignore[arg-type]
    return dns.query.udp(query, SERVER, timeout=5, port=PORT)


def test_concurrent_identical_questions_cause_one_walk(stack: Stack, cached: Stack) -> None:
    slow = stack.lab_server.authority("127.53.9.1")  # answers 0.5 s late
    before = slow.queries_received
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    try:
        for index, sock in enumerate(sockets):
            sock.settimeout(5)
            sock.sendto(
                dns.message.make_query("www.slow.lab.", "A", id=index).to_wire(), (SERVER, PORT)
            )
        replies = [dns.message.from_wire(sock.recvfrom(4096)[0]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert sorted(r.id for r in replies) == list(range(20))
    assert all(r.answer[0][0].to_text() == "192.0.2.42" for r in replies)
    assert slow.queries_received == before + 1
    assert cached.service.mesh is not None
    assert cached.service.mesh.counters.merged >= 19


def test_hits_come_from_the_answer_cache_with_ttls_counting_down(
    stack: Stack, cached: Stack, clock: FakeClock
) -> None:
    example = [stack.lab_server.authority(a) for a in ("127.53.3.1", "127.53.3.2")]
    asked = sum(a.queries_received for a in example)
    first = ask("www.example.lab.")
    assert first.answer[0].ttl == 300
    assert sum(a.queries_received for a in example) == asked + 1
    hits = cached.service.answers.counters.hits
    clock.now += 100
    second = ask("WWW.EXAMPLE.lab.")
    assert second.question[0].name.to_text() == "WWW.EXAMPLE.lab."
    assert second.answer[0].ttl == 200
    assert cached.service.answers.counters.hits == hits + 1
    assert sum(a.queries_received for a in example) == asked + 1
    clock.now += 200
    third = ask("www.example.lab.")
    assert third.answer[0].ttl == 300  # expired everywhere: walked again
    assert sum(a.queries_received for a in example) == asked + 2


def test_negative_answer_hit_counts_the_soa_down(cached: Stack, clock: FakeClock) -> None:
    first = ask("nx.example.lab.", use_edns=0)
    assert first.rcode() == dns.rcode.NXDOMAIN
    clock.now += 30
    second = ask("nx.example.lab.", use_edns=0)
    assert second.rcode() == dns.rcode.NXDOMAIN
    assert second.authority[0].ttl == first.authority[0].ttl - 30


def test_hits_fit_the_clients_edns_size(cached: Stack) -> None:
    small = ask("big.example.lab.", "TXT", use_edns=0, payload=1232)
    assert small.flags & dns.flags.TC
    hits = cached.service.answers.counters.hits
    again = ask("big.example.lab.", "TXT", use_edns=0, payload=1232)
    assert again.flags & dns.flags.TC
    assert again.answer == []
    assert again.edns == 0
    assert cached.service.answers.counters.hits == hits + 1
    over_tcp = dns.query.tcp(
        dns.message.make_query("big.example.lab.", "TXT", use_edns=0, payload=1232),
        SERVER,
        timeout=5,
        port=PORT,
    )
    assert len(over_tcp.answer[0]) == 16
    assert cached.service.answers.counters.hits == hits + 2
    large = ask("big.example.lab.", "TXT", use_edns=0, payload=4096)
    assert not large.flags & dns.flags.TC
    assert len(large.answer[0]) == 16


def test_servfail_is_never_stored_as_an_answer(cached: Stack) -> None:
    ask("www.lame.lab.")
    stored = cached.service.answers.counters.stored
    ask("www.lame.lab.")
    assert cached.service.answers.counters.stored == stored


def test_a_burst_of_hits_gets_each_client_its_own_reply(cached: Stack) -> None:
    """Hits that arrive together are answered together (one batch of sends at the end of
    the loop's turn, repeats of a query from its ready reply): each client must still get
    its own ID and its question as it asked it."""
    assert ask("www.example.lab.").answer[0][0].to_text() == "192.0.2.10"
    hits = cached.service.answers.counters.hits
    names = ["www.example.lab.", "WWW.example.lab.", "www.EXAMPLE.LAB."]
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(30)]
    try:
        for index, sock in enumerate(sockets):
            sock.settimeout(5)
            query = dns.message.make_query(names[index % 3], "A", id=1000 + index)
            sock.sendto(query.to_wire(), (SERVER, PORT))
        replies = [dns.message.from_wire(sock.recvfrom(4096)[0]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    for index, reply in enumerate(replies):
        assert reply.id == 1000 + index
        assert reply.question[0].name.to_text() == names[index % 3]
        assert reply.answer[0][0].to_text() == "192.0.2.10"
    assert cached.service.answers.counters.hits == hits + 30
