"""DNAME as pure functions (RFC 6672 §2.2, §2.3, §3.4), the classifier's use of them, and
the RRset cache's look-up of a DNAME above a name."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.rrset import Rank, RRsetCache
from resolver.core.classify import ReplyKind, classify_reply
from resolver.core.dname import (
    agrees,
    applies_to,
    cacheable,
    is_overflow,
    rewritten_wire,
    synthesised_cname,
)
from resolver.names import name_key, name_wire
from resolver.records import WireRRset, read_reply

N = dns.name.from_text
A = dns.rdatatype.A
LONG = "x" * 63


def rr(name: str, rdtype: str, *values: str, ttl: int = 300) -> WireRRset:
    return WireRRset.from_rrset(dns.rrset.from_text(name, ttl, "IN", rdtype, *values))


DNAME = rr("Moved.dname.lab.", "DNAME", "New.Example.", ttl=600)


def w(name: str) -> bytes:
    return name_wire(N(name))


def test_applies_only_strictly_below_the_owner() -> None:
    assert applies_to(DNAME, name_key(N("www.moved.dname.lab.")))
    assert applies_to(DNAME, name_key(N("a.b.MOVED.dname.lab.")))
    assert not applies_to(DNAME, name_key(N("moved.dname.lab.")))
    assert not applies_to(DNAME, name_key(N("dname.lab.")))
    assert not applies_to(DNAME, name_key(N("xmoved.dname.lab.")))


def test_rewrite_keeps_the_labels_below_and_their_letter_case() -> None:
    assert rewritten_wire(w("WwW.moved.dname.lab."), DNAME) == w("WwW.New.Example.")
    assert rewritten_wire(w("a.b.moved.dname.lab."), DNAME) == w("a.b.New.Example.")


def test_overflow_past_255_octets() -> None:
    long_target = rr("long.dname.lab.", "DNAME", f"{LONG}.{LONG}.{LONG}.new.example.")
    fits = w("a.long.dname.lab.")
    too_long = w(f"{LONG}.long.dname.lab.")
    assert not is_overflow(fits, long_target)
    assert len(rewritten_wire(fits, long_target) or b"") == 207
    assert is_overflow(too_long, long_target)
    assert rewritten_wire(too_long, long_target) is None
    assert synthesised_cname(too_long, long_target) is None
    # exactly 255 octets is allowed
    edge = rr("e.", "DNAME", f"{LONG}.{LONG}.{LONG}.{'y' * 59}.")  # 4 * 64 - 4 + 1 = 253 octets
    assert len(edge.rdatas[0]) == 253
    assert not is_overflow(w("a.e."), edge) and is_overflow(w("ab.e."), edge)


def test_synthesised_cname_has_the_dnames_ttl() -> None:
    cname = synthesised_cname(w("www.moved.dname.lab."), DNAME)
    assert cname is not None
    assert cname.rdtype == dns.rdatatype.CNAME and cname.ttl == 600
    assert cname.name == N("www.moved.dname.lab.")
    assert cname.target() == N("www.new.example.")


def test_agrees_ignores_case_and_ttl_but_not_the_target() -> None:
    cname = synthesised_cname(w("www.moved.dname.lab."), DNAME)
    assert cname is not None
    assert agrees(rr("WWW.moved.dname.lab.", "CNAME", "www.NEW.example.", ttl=0), cname)
    assert not agrees(rr("www.moved.dname.lab.", "CNAME", "www.wrong.dname.lab."), cname)
    assert not agrees(rr("ftp.moved.dname.lab.", "CNAME", "www.new.example."), cname)


def test_cacheable_leaves_out_the_cnames_made_from_a_dname() -> None:
    cname = synthesised_cname(w("www.moved.dname.lab."), DNAME)
    assert cname is not None
    plain = rr("alias.example.lab.", "CNAME", "www.example.lab.")
    answer = rr("www.new.example.", "A", "192.0.2.82")
    kept = list(cacheable([plain, DNAME, cname, answer]))
    assert [r.rdtype for r in kept] == [dns.rdatatype.CNAME, dns.rdatatype.DNAME, A]


# --- the classifier ----------------------------------------------------------------------


def dname_reply(qname: str, *rrsets: dns.rrset.RRset, rcode: int = 0) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query(qname, "A"))
    message.flags |= dns.flags.AA
    message.set_rcode(dns.rcode.Rcode(rcode))
    message.answer.extend(rrsets)
    return message


def classify(message: dns.message.Message, qname: str, qtype: int = A):  # type: ignore[no-untyped-def]
    return classify_reply(
        read_reply(message.to_wire()), N("dname.lab."), N(qname), qtype, used_edns=True
    )


DNAME_RR = dns.rrset.from_text("moved.dname.lab.", 600, "IN", "DNAME", "new.example.")


def test_a_dname_without_a_cname_is_followed() -> None:
    result = classify(dname_reply("www.moved.dname.lab.", DNAME_RR), "www.moved.dname.lab.")
    assert result.kind is ReplyKind.CNAME
    assert result.next_qname == N("www.new.example.")
    assert [r.rdtype for r in result.chain] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]
    assert [r.ttl for r in result.chain] == [600, 600]


def test_a_disagreeing_cname_is_replaced_and_its_chase_ignored() -> None:
    lie = dns.rrset.from_text("www.moved.dname.lab.", 600, "IN", "CNAME", "www.lie.dname.lab.")
    lie_a = dns.rrset.from_text("www.lie.dname.lab.", 600, "IN", "A", "192.0.2.66")
    result = classify(
        dname_reply("www.moved.dname.lab.", DNAME_RR, lie, lie_a), "www.moved.dname.lab."
    )
    assert result.kind is ReplyKind.CNAME
    assert result.next_qname == N("www.new.example.")
    assert [r.rdtype for r in result.chain] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]
    assert result.detail == "CNAME disagreed with its DNAME and was replaced"


def test_a_cname_with_ttl_0_gets_the_dnames_ttl() -> None:
    old = dns.rrset.from_text("www.moved.dname.lab.", 0, "IN", "CNAME", "www.new.example.")
    result = classify(dname_reply("www.moved.dname.lab.", DNAME_RR, old), "www.moved.dname.lab.")
    assert [r.ttl for r in result.chain] == [600, 600]
    assert result.detail == ""


def test_yxdomain_with_an_overflowing_dname() -> None:
    qname = f"{LONG}.long.dname.lab."
    long_dname = dns.rrset.from_text(
        "long.dname.lab.", 600, "IN", "DNAME", f"{LONG}.{LONG}.{LONG}.new.example."
    )
    result = classify(dname_reply(qname, long_dname, rcode=dns.rcode.YXDOMAIN), qname)
    assert result.kind is ReplyKind.YXDOMAIN
    assert [r.rdtype for r in result.chain] == [dns.rdatatype.DNAME]
    # YXDOMAIN that no DNAME explains is a server error
    bare = classify(dname_reply("www.dname.lab.", rcode=dns.rcode.YXDOMAIN), "www.dname.lab.")
    assert bare.kind is ReplyKind.SERVER_ERROR and bare.detail == "YXDOMAIN"


def test_the_dname_owner_itself_is_answered_not_redirected() -> None:
    own = dns.rrset.from_text("moved.dname.lab.", 300, "IN", "A", "192.0.2.81")
    result = classify(dname_reply("moved.dname.lab.", DNAME_RR, own), "moved.dname.lab.")
    assert result.kind is ReplyKind.ANSWER
    assert [r.rdtype for r in result.chain] == [A]


# --- the RRset cache ---------------------------------------------------------------------


def test_dname_above_finds_the_closest_live_dname_at_answer_rank() -> None:
    cache = RRsetCache(1 << 20)
    assert cache.dname_above(N("www.moved.dname.lab."), 0.0) is None
    assert cache.dnames_stored == 0
    cache.put(DNAME, Rank.AUTH_ANSWER, 0.0)
    found = cache.dname_above(N("a.b.www.moved.dname.lab."), 10.0)
    assert found is not None and found.ttl == 590 and found.owner_key == DNAME.owner_key
    assert cache.dname_above(N("moved.dname.lab."), 10.0) is None  # not its own owner
    assert cache.dname_above(N("www.other.dname.lab."), 10.0) is None
    assert cache.dname_above(N("www.moved.dname.lab."), 600.0) is None  # expired
    low = RRsetCache(1 << 20)
    low.put(DNAME, Rank.ADDITIONAL, 0.0)
    assert low.dname_above(N("www.moved.dname.lab."), 1.0) is None
