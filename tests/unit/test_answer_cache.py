"""The hot path: stored wire answers, patched per query, equal to what the slow path renders."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.cache import answer as answer_module
from resolver.cache.answer import AnswerCache, PrefetchDue
from resolver.core.compose import render_result
from resolver.lab.authority import authoritative_answer, load_zone
from resolver.model import Result, Transport
from resolver.records import Reply, WireRRset
from resolver.screen import read_plain_query
from resolver.wire import FastQuery, read_fast_query
from tests.helpers import lab_with

DESCRIPTION = lab_with()
ZONES = {z: load_zone(str(p), z) for z, p in DESCRIPTION.zone_files.items()}
T0 = 1_000_000.0


UDP = Transport.UDP
TCP = Transport.TCP


def reply_of(outcome: bytes | PrefetchDue | FastQuery | None) -> bytes | None:
    """The reply a hit gives (with or without a prefetch due), or None on a miss."""
    if isinstance(outcome, PrefetchDue):
        return outcome.reply
    return outcome if isinstance(outcome, bytes) else None


QUESTIONS = [
    ("www.example.lab.", "A"),
    ("www.example.lab.", "AAAA"),
    ("nx.example.lab.", "A"),
    ("www.example.lab.", "MX"),
    ("inzone.example.lab.", "A"),
    ("big.example.lab.", "TXT"),
    ("anything.wild.example.lab.", "A"),
    ("www.other.example.", "A"),
]


def lab_result(qname: str, qtype: str) -> Result:
    zone = dns.name.from_text(qname).parent()
    while zone not in ZONES:
        zone = zone.parent()
    reply = authoritative_answer({zone: ZONES[zone]}, dns.message.make_query(qname, qtype))
    parsed = Reply.from_message(reply)
    return Result(reply.rcode(), tuple(parsed.answer), tuple(parsed.authority))


def aged(result: Result, age: int) -> Result:
    def older(rrsets: tuple[WireRRset, ...]) -> tuple[WireRRset, ...]:
        return tuple(r.with_ttl(max(0, r.ttl - age)) for r in rrsets)

    return Result(result.rcode, older(result.answer), older(result.authority))


def random_case(text: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if flip else c for c, flip in zip(text, flips + [False] * len(text), strict=False)
    )


def make_query(
    qname: str, qtype: str, *, edns: bool, payload: int, do: bool, cd: bool, message_id: int
) -> dns.message.Message:
    query = dns.message.make_query(
        qname, qtype, use_edns=0 if edns else False, payload=payload, want_dnssec=do, id=message_id
    )
    if cd:
        query.flags |= dns.flags.CD
    return query


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, len(QUESTIONS) - 1),
    edns=st.booleans(),
    payload=st.sampled_from([512, 1232, 4096]),
    do=st.booleans(),
    cd=st.booleans(),
    first_case=st.lists(st.booleans(), max_size=30),
    second_case=st.lists(st.booleans(), max_size=30),
    first_id=st.integers(0, 0xFFFF),
    second_id=st.integers(0, 0xFFFF),
    age=st.integers(0, 59),
)
def test_a_hit_equals_the_slow_path_rendering(
    index: int,
    edns: bool,
    payload: int,
    do: bool,
    cd: bool,
    first_case: list[bool],
    second_case: list[bool],
    first_id: int,
    second_id: int,
    age: int,
) -> None:
    qname, qtype = QUESTIONS[index]
    do = do and edns
    result = lab_result(qname, qtype)
    first = make_query(
        random_case(qname, first_case),
        qtype,
        edns=edns,
        payload=payload,
        do=do,
        cd=cd,
        message_id=first_id,
    )
    cache = AnswerCache(1 << 20)
    first_wire = first.to_wire()
    fast = read_fast_query(first_wire)
    assert fast is not None
    slow_path = render_result(read_plain_query(first_wire, fast), result, 65535)
    assert cache.store(fast.key, slow_path, fast.question_end, T0)

    second = make_query(
        random_case(qname, second_case),
        qtype,
        edns=edns,
        payload=payload,
        do=do,
        cd=cd,
        message_id=second_id,
    )
    second_wire = second.to_wire()
    second_fast = read_fast_query(second_wire)
    assert second_fast is not None and second_fast.key == fast.key
    expected_full = render_result(
        read_plain_query(second_wire, second_fast), aged(result, age), 65535
    )
    hit = reply_of(cache.hit(second_wire, T0 + age, TCP))
    assert hit == expected_full
    repeat = bytes([second_wire[1], second_wire[0]]) + second_wire[2:]  # the same, another ID
    assert reply_of(cache.hit(repeat, T0 + age, TCP)) == repeat[:2] + expected_full[2:]

    limit = second_fast.udp_limit
    small = reply_of(cache.hit(second_wire, T0 + age, UDP))
    assert small is not None
    reply = dns.message.from_wire(small)
    assert reply.id == second_id
    assert reply.question[0].name.to_text() == second.question[0].name.to_text()
    if len(expected_full) <= limit:
        assert small == expected_full
    else:
        assert reply.flags & dns.flags.TC
        assert len(small) <= limit
        assert reply.answer == []
        assert (reply.edns >= 0) == edns


def store_one(
    cache: AnswerCache, qname: str = "www.example.lab.", qtype: str = "A"
) -> tuple[bytes, int]:
    query = dns.message.make_query(qname, qtype)
    wire = query.to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    assert cache.store(
        fast.key,
        render_result(read_plain_query(wire, fast), lab_result(qname, qtype), 65535),
        fast.question_end,
        T0,
    )
    return wire, fast.question_end


def test_ttls_count_down_and_the_entry_expires_with_its_smallest_ttl() -> None:
    cache = AnswerCache(1 << 20)
    wire, _ = store_one(cache, "nx.example.lab.")  # SOA with negative TTL 60
    at_10 = dns.message.from_wire(reply_of(cache.hit(wire, T0 + 10.9, UDP)) or b"")
    assert at_10.authority[0].ttl == 50
    assert reply_of(cache.hit(wire, T0 + 59.5, UDP)) is not None
    assert isinstance(cache.hit(wire, T0 + 60, UDP), FastQuery)  # a miss hands on the query
    assert cache.counters.expired == 1
    assert len(cache) == 0


def test_different_flags_are_different_entries() -> None:
    cache = AnswerCache(1 << 20)
    store_one(cache)
    with_edns = dns.message.make_query("www.example.lab.", "A", use_edns=0).to_wire()
    assert reply_of(cache.hit(with_edns, T0, UDP)) is None


def test_type_65_is_not_lowered_into_type_97() -> None:
    a = read_fast_query(dns.message.make_query("x.lab.", 65).to_wire())
    b = read_fast_query(dns.message.make_query("x.lab.", 97).to_wire())
    assert a is not None and b is not None and a.key != b.key


def test_unusual_queries_take_the_slow_path() -> None:
    no_rd = dns.message.make_query("x.lab.", "A")
    no_rd.flags &= ~dns.flags.RD
    two = dns.message.make_query("x.lab.", "A")
    two.question.append(two.question[0])
    version1 = dns.message.make_query("x.lab.", "A", use_edns=1)
    for message in (
        no_rd,
        two,
        version1,
        dns.message.make_response(dns.message.make_query("x.lab.", "A")),
    ):
        assert read_fast_query(message.to_wire()) is None
    good = dns.message.make_query("x.lab.", "A", use_edns=0).to_wire()
    for length in range(len(good)):
        assert read_fast_query(good[:length]) is None


def test_eviction_under_a_small_size_limit_keeps_the_newest() -> None:
    cache = AnswerCache(4000)
    names = [f"n{i}.wild.example.lab." for i in range(40)]
    for name in names:
        store_one(cache, name)
    assert cache.evictions > 0
    assert cache.bytes_used <= 4000
    last = dns.message.make_query(names[-1], "A").to_wire()
    first = dns.message.make_query(names[0], "A").to_wire()
    assert reply_of(cache.hit(last, T0, UDP)) is not None
    assert reply_of(cache.hit(first, T0, UDP)) is None


def test_flush_one_name_a_subtree_or_all() -> None:
    cache = AnswerCache(1 << 20)
    store_one(cache, "www.example.lab.")
    store_one(cache, "a.wild.example.lab.")
    store_one(cache, "www.other.example.")
    assert cache.flush(dns.name.from_text("wild.example.lab.")) == 0
    assert cache.flush(dns.name.from_text("example.lab."), subtree=True) == 2
    assert len(cache) == 1
    assert cache.flush() == 1
    assert len(cache) == 0


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The queries the answer cache reads (a repeat answered ready reads none)."""
    read: list[bytes] = []

    def counting(wire: bytes) -> FastQuery | None:
        read.append(wire)
        return read_fast_query(wire)

    monkeypatch.setattr(answer_module, "read_fast_query", counting)
    return read


def test_a_repeated_query_is_answered_ready_until_its_ttls_change(reads: list[bytes]) -> None:
    cache = AnswerCache(1 << 20)
    wire, _ = store_one(cache, "nx.example.lab.")  # SOA with negative TTL 60
    first = reply_of(cache.hit(wire, T0 + 10.2, UDP))
    assert first is not None and len(reads) == 1
    again = b"\x12\x34" + wire[2:]
    assert cache.hit(again, T0 + 10.9, UDP) == b"\x12\x34" + first[2:]
    assert len(reads) == 1  # answered ready: not read again
    assert cache.counters.hits == 2
    later = reply_of(cache.hit(again, T0 + 11.0, UDP))  # the TTLs age: patched again
    assert later is not None and len(reads) == 2
    assert dns.message.from_wire(later).authority[0].ttl == 49
    other_case = dns.message.make_query("NX.example.lab.", "A").to_wire()
    assert reply_of(cache.hit(other_case, T0 + 11.0, UDP)) is not None
    assert len(reads) == 3  # other letters: other bytes, read


def test_a_ready_reply_goes_with_its_entry(reads: list[bytes]) -> None:
    cache = AnswerCache(1 << 20)
    wire, question_end = store_one(cache)
    fast = read_fast_query(wire)
    assert fast is not None
    assert reply_of(cache.hit(wire, T0, UDP)) is not None
    assert reply_of(cache.hit(wire, T0, UDP)) is not None and len(reads) == 1
    replaced = render_result(
        read_plain_query(wire, fast), aged(lab_result("www.example.lab.", "A"), 100), 65535
    )
    assert cache.store(fast.key, replaced, question_end, T0)  # a refresh: the old one is gone
    assert reply_of(cache.hit(wire, T0, UDP)) == replaced  # not the old ready reply
    assert len(reads) == 2
    assert cache.flush() == 1
    assert isinstance(cache.hit(wire, T0, UDP), FastQuery)
    assert len(reads) == 3


def test_prefetch_is_due_once_even_when_repeats_are_answered_ready() -> None:
    cache = AnswerCache(1 << 20)
    wire, _ = store_one(cache, "nx.example.lab.")  # TTL 60: prefetch from 54 s
    fast = read_fast_query(wire)
    assert fast is not None
    assert type(cache.hit(wire, T0 + 53.5, UDP)) is bytes
    assert type(cache.hit(wire, T0 + 53.99, UDP)) is bytes
    due = cache.hit(wire, T0 + 54.01, UDP)
    assert isinstance(due, PrefetchDue) and due.key == fast.key
    assert dns.message.from_wire(due.reply).id == dns.message.from_wire(wire).id
    assert type(cache.hit(wire, T0 + 54.5, UDP)) is bytes  # due once per entry
    assert type(cache.hit(wire, T0 + 55.5, TCP)) is bytes
    assert cache.counters.prefetches == 1
    assert isinstance(cache.hit(wire, T0 + 60, UDP), FastQuery)  # expired at 60


def test_hits_are_counted_by_transport_and_kind() -> None:
    cache = AnswerCache(1 << 20)
    wire, _ = store_one(cache)  # NOERROR A
    nx_wire, _ = store_one(cache, "nx.example.lab.")  # NXDOMAIN A
    for _ in range(3):
        cache.hit(wire, T0, UDP)
    cache.hit(wire, T0, TCP)
    cache.hit(nx_wire, T0, TCP)
    cache.hit(wire, T0, Transport.DOT)  # the stream transports share ready replies...
    cache.hit(wire, T0, Transport.DOH)
    cache.hit(wire, T0, Transport.DOH)
    cache.hit(dns.message.make_query("missing.example.lab.", "A").to_wire(), T0, UDP)
    stats = cache.stats()
    a = b"\x00\x01"
    assert stats.hits == {  # ...but each counts its own hits
        ("udp", a, dns.rcode.NOERROR): 3,
        ("udp", a, dns.rcode.NXDOMAIN): 0,
        ("tcp", a, dns.rcode.NOERROR): 1,
        ("tcp", a, dns.rcode.NXDOMAIN): 1,
        ("dot", a, dns.rcode.NOERROR): 1,
        ("dot", a, dns.rcode.NXDOMAIN): 0,
        ("doh", a, dns.rcode.NOERROR): 2,
        ("doh", a, dns.rcode.NXDOMAIN): 0,
    }
    assert stats.counters.hits == 8 and stats.counters.misses == 1
    assert stats.size.entries == 2 == len(cache)
    assert stats.size.bytes_used == cache.bytes_used


def test_a_query_that_is_not_plain_is_not_looked_up() -> None:
    cache = AnswerCache(1 << 20)
    wire, _ = store_one(cache)
    no_rd = bytearray(wire)
    no_rd[2] &= ~0x01
    assert cache.hit(bytes(no_rd), T0, UDP) is None
    assert cache.counters.misses == 0 and cache.counters.hits == 0
