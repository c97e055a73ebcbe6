"""DNAME (RFC 6672): the machine over the lab in memory. dname.lab. redirects moved.,
here., wild. and long. (servers 127.53.21.x); liar.lab. and rfc2672.lab. send CNAMEs that
disagree with their DNAME or carry TTL 0."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.limits import Limits
from resolver.records import WireRRset
from tests.core.harness import lab_responder, resolve
from tests.core.test_resolution import addresses
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
N = dns.name.from_text
T0 = 1_000_000.0
DNAME_SERVER = "127.53.21.1"
TARGET_SERVER = "127.53.21.2"
LONG = "x" * 63


def records(answer: tuple[WireRRset, ...]) -> list[tuple[str, str, list[str]]]:
    """Each RRset as (owner, type, records), in order, TTLs left out."""
    return [
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            sorted(r.to_text().lower() for r in rrset),
        )
        for rrset in answer
    ]


def ttls(answer: tuple[WireRRset, ...]) -> list[int]:
    return [rrset.ttl for rrset in answer]


def test_a_name_below_a_dname_answers_the_dname_its_cname_then_the_chase() -> None:
    walk = resolve("www.moved.dname.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert records(walk.result.answer) == [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("www.moved.dname.lab.", "CNAME", ["www.new.example."]),
        ("www.new.example.", "A", ["192.0.2.82"]),
    ]
    assert ttls(walk.result.answer) == [600, 600, 300]  # the CNAME has the DNAME's TTL


def test_the_dname_owner_itself_is_not_redirected() -> None:
    walk = resolve("moved.dname.lab.", "A", LAB)
    assert records(walk.result.answer) == [("moved.dname.lab.", "A", ["192.0.2.81"])]
    dname = resolve("moved.dname.lab.", "DNAME", LAB)
    assert records(dname.result.answer) == [("moved.dname.lab.", "DNAME", ["new.example."])]


def test_several_labels_are_rewritten() -> None:
    walk = resolve("a.b.moved.dname.lab.", "A", LAB)
    assert records(walk.result.answer)[:2] == [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("a.b.moved.dname.lab.", "CNAME", ["a.b.new.example."]),
    ]
    assert addresses(walk.result.answer) == ["192.0.2.83"]


def test_a_rewrite_to_a_missing_name_is_nxdomain_after_the_dname_and_cname() -> None:
    walk = resolve("nx.moved.dname.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert records(walk.result.answer) == [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("nx.moved.dname.lab.", "CNAME", ["nx.new.example."]),
    ]
    assert [r.name for r in walk.result.authority] == [N("new.example.")]


def test_a_rewrite_past_255_octets_is_yxdomain_and_so_is_the_cached_answer() -> None:
    caches = Caches()
    walk = resolve(f"{LONG}.long.dname.lab.", "A", LAB, caches=caches)
    assert walk.result.rcode == dns.rcode.YXDOMAIN
    assert [(r.name, r.rdtype) for r in walk.result.answer] == [
        (N("long.dname.lab."), dns.rdatatype.DNAME)
    ]
    again = resolve(f"{LONG}.long.dname.lab.", "A", LAB, caches=caches, now=T0 + 5)
    assert again.sent == []
    assert again.result.rcode == dns.rcode.YXDOMAIN
    assert records(again.result.answer) == records(walk.result.answer)
    # a shorter name under the same DNAME fits, and is redirected
    short = resolve("a.long.dname.lab.", "A", LAB, caches=caches, now=T0 + 5)
    assert short.result.rcode == dns.rcode.NXDOMAIN
    assert DNAME_SERVER not in short.by_server


def test_a_dname_inside_its_own_zone_is_chased_by_the_server() -> None:
    walk = resolve("www.here.dname.lab.", "A", LAB)
    assert records(walk.result.answer) == [
        ("here.dname.lab.", "DNAME", ["there.dname.lab."]),
        ("www.here.dname.lab.", "CNAME", ["www.there.dname.lab."]),
        ("www.there.dname.lab.", "A", ["192.0.2.84"]),
    ]
    # the minimised here.dname.lab. A (NODATA at the DNAME's owner), then the full name
    assert walk.by_server[DNAME_SERVER] == 2


def test_a_wildcard_under_the_dname_target_answers() -> None:
    walk = resolve("anything.wild.dname.lab.", "A", LAB)
    assert records(walk.result.answer)[1] == (
        "anything.wild.dname.lab.",
        "CNAME",
        ["anything.wild.new.example."],
    )
    assert addresses(walk.result.answer) == ["192.0.2.85"]


def test_a_cname_question_below_a_dname_is_answered_by_the_synthesised_cname() -> None:
    caches = Caches()
    walk = resolve("www.moved.dname.lab.", "CNAME", LAB, caches=caches)
    expected = [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("www.moved.dname.lab.", "CNAME", ["www.new.example."]),
    ]
    assert records(walk.result.answer) == expected
    again = resolve("www.moved.dname.lab.", "CNAME", LAB, caches=caches, now=T0 + 1)
    assert again.sent == []
    assert records(again.result.answer) == expected


def test_a_cname_that_disagrees_with_its_dname_is_replaced() -> None:
    """liar.lab.'s server sends www.moved.liar.lab. CNAME www.wrong.liar.lab. (and its
    address) beside moved.liar.lab. DNAME new.example.: RFC 6672 §3.4."""
    caches = Caches()
    walk = resolve("www.moved.liar.lab.", "A", LAB, caches=caches)
    assert records(walk.result.answer) == [
        ("moved.liar.lab.", "DNAME", ["new.example."]),
        ("www.moved.liar.lab.", "CNAME", ["www.new.example."]),
        ("www.new.example.", "A", ["192.0.2.82"]),
    ]
    assert caches.rrsets.get(N("www.wrong.liar.lab."), dns.rdatatype.A, T0 + 1) is None
    assert caches.rrsets.get(N("www.moved.liar.lab."), dns.rdatatype.CNAME, T0 + 1) is None


def test_an_rfc2672_server_cname_with_ttl_0_gets_the_dnames_ttl() -> None:
    walk = resolve("www.moved.rfc2672.lab.", "A", LAB)
    assert ttls(walk.result.answer)[:2] == [600, 600]
    assert addresses(walk.result.answer) == ["192.0.2.82"]


def test_a_cached_dname_answers_other_names_below_it_without_asking_its_zone() -> None:
    caches = Caches()
    first = resolve("www.moved.dname.lab.", "A", LAB, caches=caches)
    assert first.by_server[DNAME_SERVER] == 2  # moved.dname.lab. A minimised, then the name
    again = resolve("www.moved.dname.lab.", "A", LAB, caches=caches, now=T0 + 10.5)
    assert again.sent == []
    assert records(again.result.answer) == records(first.result.answer)  # same order too
    assert ttls(again.result.answer) == [590, 590, 290]
    other = resolve("a.b.moved.dname.lab.", "A", LAB, caches=caches, now=T0 + 10)
    assert addresses(other.result.answer) == ["192.0.2.83"]
    assert {s.server for s in other.sent} == {TARGET_SERVER}  # the target's zone only
    assert records(other.result.answer)[0] == ("moved.dname.lab.", "DNAME", ["new.example."])
    nx = resolve("nx.moved.dname.lab.", "A", LAB, caches=caches, now=T0 + 10)
    assert nx.result.rcode == dns.rcode.NXDOMAIN
    assert DNAME_SERVER not in nx.by_server
    assert [r.rdtype for r in nx.result.answer] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]


def test_a_dname_rewrite_counts_against_the_cname_hop_limit() -> None:
    caches = Caches()
    resolve("www.moved.dname.lab.", "A", LAB, caches=caches)
    walk = resolve(
        "a.b.moved.dname.lab.",
        "A",
        LAB,
        caches=caches,
        now=T0 + 1,
        limits=Limits(max_cname_hops=0),
    )
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "CNAME chain longer than 0 at a.b.new.example."
    assert walk.sent == []  # the cached DNAME rewrote it, nothing was asked
