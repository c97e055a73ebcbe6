"""The frontend's one way in (``Frontend.on_query``): a hit is answered at once; a miss is
read and access-checked once, handed on, and answered through the one way out."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Callable
from typing import Any

import dns.message
import dns.rcode
import pytest

from resolver import frontend as frontend_module
from resolver.access import LOOPBACK_RULES, Access, AccessList, AccessRule
from resolver.cache.answer import AnswerCache
from resolver.cache.view import Caches
from resolver.driver import Driver
from resolver.frontend import Frontend
from resolver.limits import Limits
from resolver.mesh import Mesh
from resolver.model import Question, Result, Transport
from resolver.transport.listeners import DROP, PENDING, Address
from resolver.transport.upstream import Upstream
from resolver.wire import FastQuery, read_fast_query
from tests.core.harness import lab_responder, lab_root, resolve
from tests.helpers import lab_with

NOW = 1_000_001.0
CLIENT = "127.0.0.1"
ADDRESS = ("127.0.0.1", 53000)
UDP = Transport.UDP


class CountingAccess(AccessList):
    """A real access list that counts how often it is asked."""

    def __init__(self, rules: list[AccessRule]) -> None:
        super().__init__(rules)
        self.asked = 0

    def decide(self, client: str) -> Access:
        self.asked += 1
        return super().decide(client)


class Replies:
    """The ``reply_to`` of a listener: what the slow path sent, and to whom."""

    def __init__(self) -> None:
        self.sent: list[tuple[Address, bytes | None]] = []

    def __call__(self, address: Address, reply: bytes | None) -> None:
        self.sent.append((address, reply))


def cached_caches() -> Caches:
    """Resolution caches that already hold www.example.lab A (walked in memory)."""
    caches = Caches()
    walk = resolve("www.example.lab.", "A", lab_responder(lab_with()), caches=caches)
    assert walk.result.rcode == dns.rcode.NOERROR
    return caches


def make_frontend(
    caches: Caches, access: AccessList | None = None, *, max_pending: int = 100
) -> Frontend:
    mesh = Mesh(root=lab_root(), caches=caches, limits=Limits(), rng=random.Random(1))
    upstream = Upstream(port=53, allow=[])  # nothing may be sent: answers come from caches
    driver = Driver(mesh, upstream, deadline_s=5.0, clock=lambda: NOW)
    return Frontend(
        driver,
        access or CountingAccess(list(LOOPBACK_RULES)),
        AnswerCache(1 << 20),
        lambda: NOW,
        max_pending=max_pending,
    )


def query_wire(qname: str = "www.example.lab.", message_id: int = 7) -> bytes:
    return dns.message.make_query(qname, "A", id=message_id).to_wire()


async def test_a_miss_is_read_and_checked_once_then_a_hit_is_answered_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[bytes] = []

    def counting_read(wire: bytes) -> FastQuery | None:
        reads.append(wire)
        return read_fast_query(wire)

    for name, module in list(sys.modules.items()):  # wherever the reader was imported
        if name.startswith("resolver") and hasattr(module, "read_fast_query"):
            monkeypatch.setattr(module, "read_fast_query", counting_read)
    access = CountingAccess(list(LOOPBACK_RULES))
    frontend = make_frontend(cached_caches(), access)
    replies = Replies()

    outcome = frontend.on_query(query_wire(), CLIENT, UDP, replies, ADDRESS)

    assert outcome is PENDING
    assert access.asked == 1  # not asked again by the slow path
    assert len(reads) == 1  # the query read by the hit is handed on, not read again
    assert len(replies.sent) == 1  # the mesh had it: answered before on_query returned
    address, reply = replies.sent[0]
    assert address == ADDRESS and reply is not None
    message = dns.message.from_wire(reply)
    assert message.id == 7 and message.rcode() == dns.rcode.NOERROR and message.answer
    assert frontend.pending == 0
    assert frontend.stats().answered == {("udp", b"\x00\x01", dns.rcode.NOERROR): 1}

    again = frontend.on_query(query_wire(message_id=8), CLIENT, UDP, replies, ADDRESS)
    assert isinstance(again, bytes) and again[:2] == b"\x00\x08" and again[2:] == reply[2:]
    assert access.asked == 2 and len(replies.sent) == 1
    assert frontend.answers.stats().counters.hits == 1


async def test_clients_without_recursion_are_answered_without_a_lookup() -> None:
    access = CountingAccess([*LOOPBACK_RULES, AccessRule.parse("10.0.0.0/8 deny")])
    frontend = make_frontend(Caches(), access)
    replies = Replies()
    refused = frontend.on_query(query_wire(), "192.0.2.1", UDP, replies, ADDRESS)
    assert isinstance(refused, bytes)
    assert dns.message.from_wire(refused).rcode() == dns.rcode.REFUSED
    assert frontend.on_query(query_wire(), "10.1.2.3", UDP, replies, ADDRESS) is DROP
    assert replies.sent == []
    assert access.asked == 2
    counters = frontend.answers.stats().counters
    assert counters.hits == counters.misses == 0  # the answer cache was not asked
    assert frontend.stats().rejected == {"refused": 1, "denied": 1}


async def test_a_miss_past_the_pending_limit_is_dropped_and_hits_still_answered() -> None:
    frontend = make_frontend(cached_caches(), max_pending=0)
    replies = Replies()
    assert frontend.on_query(query_wire(), CLIENT, UDP, replies, ADDRESS) is DROP
    assert frontend.stats().rejected == {"overloaded": 1}
    local = frontend.on_query(query_wire("localhost."), CLIENT, UDP, replies, ADDRESS)
    assert isinstance(local, bytes)  # answered without resolving: not a pending miss
    assert replies.sent == []


async def test_handle_is_the_one_call_awaited() -> None:
    frontend = make_frontend(cached_caches())
    reply = await frontend.handle(query_wire(), CLIENT, UDP)
    assert reply is not None and dns.message.from_wire(reply).answer
    assert await frontend.handle(query_wire(message_id=9), CLIENT, UDP) == b"\x00\x09" + reply[2:]
    assert await frontend.handle(b"\x00", CLIENT, UDP) is None  # no header: dropped


async def frontend_in_the_last_tenth_of_a_ttl() -> Frontend:
    """A frontend whose cached www.example.lab. A is in the last tenth of its TTL: the next
    hit finds a prefetch due."""
    frontend = make_frontend(cached_caches())
    clock = [NOW]
    frontend.clock = lambda: clock[0]
    first = await frontend.handle(query_wire(), CLIENT, UDP)
    assert first is not None
    ttl = min(rr.ttl for rr in dns.message.from_wire(first).answer)
    clock[0] = NOW + ttl - ttl / 20
    return frontend


async def test_a_hit_late_in_its_ttl_starts_one_prefetch() -> None:
    frontend = await frontend_in_the_last_tenth_of_a_ttl()
    refreshes: list[Question] = []
    resolve_then = frontend.driver.resolve_then

    def counting_resolve_then(
        question: Question, on_result: Callable[[Result], None], **options: Any
    ) -> int:
        if options.get("refresh"):
            refreshes.append(question)
        return resolve_then(question, on_result, **options)

    frontend.driver.resolve_then = counting_resolve_then  # type: ignore[method-assign]
    for message_id in (1, 2):
        hit = frontend.on_query(query_wire(message_id=message_id), CLIENT, UDP, Replies(), ADDRESS)
        assert isinstance(hit, bytes)
    assert frontend.answers.stats().counters.prefetches == 1
    assert refreshes == []  # started after this turn's replies, never inside the hit
    await asyncio.sleep(0)
    assert [str(q.qname) for q in refreshes] == ["www.example.lab."]  # one refresh, a mesh job


async def test_the_hit_that_makes_a_prefetch_due_replies_before_any_prefetch_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole prefetch start (the key read back into a question, a dnspython name, and
    the mesh job) runs on the next turn of the loop: the hit that found it due is answered
    with no more work than any hit."""
    frontend = await frontend_in_the_last_tenth_of_a_ttl()
    happened: list[str] = []
    read_plain_query = frontend_module.read_plain_query

    def reading(*args: Any) -> Any:
        happened.append("prefetch reads its question")
        return read_plain_query(*args)

    monkeypatch.setattr(frontend_module, "read_plain_query", reading)
    hit = frontend.on_query(query_wire(message_id=1), CLIENT, UDP, Replies(), ADDRESS)
    assert isinstance(hit, bytes)
    happened.append("reply")
    await asyncio.sleep(0)
    assert happened == ["reply", "prefetch reads its question"]
    assert frontend.answers.stats().counters.prefetches == 1


async def test_a_send_that_raises_fails_that_try_and_the_client_still_gets_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first upstream send raises (as ``socket.socket()`` does with no file descriptor
    left): the driver counts it, fails that try as a network error, and the resolution goes
    on (here to SERVFAIL: the upstream may send nowhere), instead of the exception ending
    the client's query with no reply and leaving its job in the mesh."""
    send = Upstream.send
    raised: list[str] = []

    def send_failing_once(self: Upstream, *args: Any, **kwargs: Any) -> None:
        if not raised:
            raised.append("EMFILE")
            raise OSError(24, "Too many open files")
        send(self, *args, **kwargs)

    monkeypatch.setattr(Upstream, "send", send_failing_once)
    frontend = make_frontend(Caches())
    reply = await frontend.handle(query_wire(), CLIENT, UDP)
    assert raised and reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL
    assert frontend.driver.bugs == 1 and frontend.bugs == 0
    assert frontend.pending == 0 and len(frontend.driver.mesh) == 0
