"""Scrubbing and classification of canned replies (RFC 2181 §5.4.1, RFC 2308 §2)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.core.classify import ReplyKind, classify_reply
from resolver.core.scrub import scrub_reply
from resolver.names import name_key
from resolver.records import Reply, read_reply

N = dns.name.from_text
A = dns.rdatatype.A


def reply(qname: str = "www.example.lab.", rcode: int = 0, aa: bool = True) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query(qname, "A"))
    message.set_rcode(dns.rcode.Rcode(rcode))
    if aa:
        message.flags |= dns.flags.AA
    return message


def rr(name: str, rdtype: str, *values: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *values)


def parsed(message: dns.message.Message) -> Reply:
    """The reply as the transport hands it to the core: read from its bytes."""
    return read_reply(message.to_wire())


def classify(
    message: dns.message.Message, zone: str, qname: str = "www.example.lab.", edns: bool = True
):  # type: ignore[no-untyped-def]
    return classify_reply(parsed(message), N(zone), N(qname), A, used_edns=edns)


def test_answer() -> None:
    message = reply()
    message.answer.append(rr("www.example.lab.", "A", "192.0.2.10"))
    assert classify(message, "example.lab.").kind is ReplyKind.ANSWER


def test_out_of_zone_answer_is_scrubbed_away() -> None:
    message = reply()
    message.answer.append(rr("www.example.lab.", "A", "192.0.2.10"))
    assert scrub_reply(parsed(message), N("other.example.")).answer == ()
    assert classify(message, "other.example.").kind is ReplyKind.NODATA


def test_glue_only_for_named_servers_inside_the_zone() -> None:
    message = reply(aa=False)
    message.authority.append(rr("example.lab.", "NS", "ns1.example.lab.", "ns.other.example."))
    message.additional.append(rr("ns1.example.lab.", "A", "127.53.3.1"))
    message.additional.append(rr("ns.other.example.", "A", "203.0.113.1"))
    message.additional.append(rr("unrelated.lab.", "A", "203.0.113.2"))
    scrubbed = scrub_reply(parsed(message), N("lab."))
    assert [r.name.to_text() for r in scrubbed.additional] == ["ns1.example.lab."]
    classified = classify(message, "lab.")
    assert classified.kind is ReplyKind.REFERRAL
    assert classified.referral is not None
    assert classified.referral.nameservers == {
        name_key(N("NS1.example.lab.")): ["127.53.3.1"],
        name_key(N("ns.other.example.")): [],
    }


def test_cname_leaving_the_zone() -> None:
    message = reply("alias.example.lab.")
    message.answer.append(rr("alias.example.lab.", "CNAME", "www.other.example."))
    classified = classify(message, "example.lab.", "alias.example.lab.")
    assert classified.kind is ReplyKind.CNAME
    assert classified.next_qname == N("www.other.example.")


def test_cname_loop_inside_one_reply() -> None:
    message = reply("a.example.lab.")
    message.answer.append(rr("a.example.lab.", "CNAME", "b.example.lab."))
    message.answer.append(rr("b.example.lab.", "CNAME", "a.example.lab."))
    assert classify(message, "example.lab.", "a.example.lab.").kind is ReplyKind.CNAME_LOOP


def test_nxdomain_takes_min_of_soa_ttl_and_minimum() -> None:
    message = reply(rcode=dns.rcode.NXDOMAIN)
    message.authority.append(
        rr("example.lab.", "SOA", "ns.example.lab. hm.example.lab. 1 2 3 4 60", ttl=300)
    )
    classified = classify(message, "example.lab.")
    assert classified.kind is ReplyKind.NXDOMAIN
    assert classified.soa is not None and classified.soa.ttl == 60


def test_error_rcodes_and_edns_formerr() -> None:
    assert classify(reply(rcode=dns.rcode.REFUSED), "lab.").kind is ReplyKind.SERVER_ERROR
    assert classify(reply(rcode=dns.rcode.SERVFAIL), "lab.").kind is ReplyKind.SERVER_ERROR
    formerr = reply(rcode=dns.rcode.FORMERR)
    assert classify(formerr, "lab.").kind is ReplyKind.EDNS_UNSUPPORTED
    assert classify(formerr, "lab.", edns=False).kind is ReplyKind.SERVER_ERROR


def test_empty_reply_is_nodata_unless_it_comes_from_a_recursive_server() -> None:
    """As Unbound's response_type_from_server: an empty NOERROR is NODATA (RFC 2308 §2.2),
    but one with RA and without AA is a recursive server answering from its empty cache."""
    assert classify(reply(aa=False), "example.lab.").kind is ReplyKind.NODATA
    recursive = reply(aa=False)
    recursive.flags |= dns.flags.RA
    assert classify(recursive, "example.lab.").kind is ReplyKind.LAME


def test_records_for_other_names_or_types_leave_nodata_and_are_not_kept() -> None:
    """RFC 2308 §2.2: nothing of the asked name and type, no CNAME: NODATA, not lame; the
    unrelated records are neither answered nor handed on to be cached."""
    message = reply()
    message.answer.append(rr("mail.example.lab.", "A", "192.0.2.99"))
    message.answer.append(rr("www.example.lab.", "TXT", '"not asked"'))
    classified = classify(message, "example.lab.")
    assert classified.kind is ReplyKind.NODATA
    assert classified.chain == ()


def test_authoritative_reply_pointing_upward_is_lame_not_nodata() -> None:
    """An AA reply with an empty answer whose authority names the root's or a parent's
    servers does not come from a server of the zone: try the next server."""
    for owner in (".", "lab.", "example.lab."):
        message = reply(aa=True)
        message.authority.append(rr(owner, "NS", "a.root.lab."))
        expected = ReplyKind.NODATA if owner == "example.lab." else ReplyKind.LAME
        assert classify(message, "example.lab.").kind is expected, owner


def test_referral_to_the_same_zone_is_lame() -> None:
    message = reply(aa=False)
    message.authority.append(rr("example.lab.", "NS", "ns1.example.lab."))
    assert classify(message, "example.lab.").kind is ReplyKind.LAME


def test_cname_to_an_in_zone_target_not_answered_nor_denied_restarts() -> None:
    message = reply("a.example.lab.")
    message.answer.append(rr("a.example.lab.", "CNAME", "b.example.lab."))
    classified = classify(message, "example.lab.", "a.example.lab.")
    assert classified.kind is ReplyKind.CNAME
    assert classified.next_qname == N("b.example.lab.")
    message.authority.append(
        rr("example.lab.", "SOA", "ns.example.lab. hm.example.lab. 1 2 3 4 60")
    )
    assert classify(message, "example.lab.", "a.example.lab.").kind is ReplyKind.NODATA
