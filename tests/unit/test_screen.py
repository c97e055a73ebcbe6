"""What the resolver does with a client's bytes before resolving (pure screening,
:mod:`resolver.screen`): each reject rule."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from resolver.access import LOOPBACK_RULES, Access, AccessList, AccessRule
from resolver.model import ClientQuery as Accepted
from resolver.screen import Rejected, reject_question, screen_query
from resolver.wire import read_fast_query

ACCESS = AccessList(
    [
        *LOOPBACK_RULES,
        AccessRule.parse("10.1.0.0/16 allow_snoop"),
        AccessRule.parse("10.0.0.0/8 deny"),
    ]
)


def screen(wire: bytes, client: str) -> Accepted | Rejected:
    """Screen as the frontend does: the access decision and the plain query read first."""
    return screen_query(wire, ACCESS.decide(client), read_fast_query(wire))


def query(**changes: object) -> dns.message.Message:
    message = dns.message.make_query("www.example.lab.", "A", use_edns=0)
    for key, value in changes.items():
        setattr(message, key, value)
    return message


def rcode_of(outcome: Accepted | Rejected) -> int:
    assert isinstance(outcome, Rejected) and outcome.reply is not None
    return dns.message.from_wire(outcome.reply).rcode()


def test_a_good_query_is_accepted() -> None:
    outcome = screen(query().to_wire(), "127.0.0.1")
    assert isinstance(outcome, Accepted)
    assert outcome.question.qname.to_text() == "www.example.lab."


def test_short_packets_and_responses_are_dropped() -> None:
    assert screen(b"\x12\x34\x01", "127.0.0.1") == Rejected(None, "malformed")
    response = dns.message.make_response(query())
    assert screen(response.to_wire(), "127.0.0.1") == Rejected(None, "response")


def test_unparseable_question_is_formerr() -> None:
    wire = query().to_wire()[:15]
    assert rcode_of(screen(wire, "127.0.0.1")) == dns.rcode.FORMERR


def test_other_opcodes_are_notimp() -> None:
    message = query()
    message.set_opcode(dns.opcode.UPDATE)
    assert rcode_of(screen(message.to_wire(), "::1")) == dns.rcode.NOTIMP


def test_edns_version_1_is_badvers() -> None:
    message = dns.message.make_query("www.example.lab.", "A", use_edns=1)
    outcome = screen(message.to_wire(), "127.0.0.1")
    assert isinstance(outcome, Rejected) and outcome.reply is not None
    reply = dns.message.from_wire(outcome.reply)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


def test_clients_outside_the_access_list() -> None:
    assert rcode_of(screen(query().to_wire(), "192.0.2.1")) == dns.rcode.REFUSED
    assert screen(query().to_wire(), "10.2.3.4") == Rejected(None, "denied")
    assert isinstance(screen(query().to_wire(), "::ffff:127.0.0.1"), Accepted)


def test_rd0_needs_snoop_permission() -> None:
    message = query()
    message.flags &= ~dns.flags.RD
    assert rcode_of(screen(message.to_wire(), "127.0.0.1")) == dns.rcode.REFUSED
    assert isinstance(screen(message.to_wire(), "10.1.2.3"), Accepted)


@pytest.mark.parametrize(
    ("qtype", "rcode"), [("AXFR", dns.rcode.REFUSED), ("OPT", dns.rcode.FORMERR)]
)
def test_transfer_and_meta_types(qtype: str, rcode: int) -> None:
    message = dns.message.make_query("example.lab.", qtype)
    assert rcode_of(screen(message.to_wire(), "127.0.0.1")) == rcode


def test_two_questions_are_formerr() -> None:
    message = query()
    message.question.append(message.question[0])
    assert rcode_of(screen(message.to_wire(), "127.0.0.1")) == dns.rcode.FORMERR


def test_longest_prefix_wins() -> None:
    assert ACCESS.decide("10.1.9.9") is Access.ALLOW_SNOOP
    assert ACCESS.decide("10.9.9.9") is Access.DENY
    assert ACCESS.decide("not an address") is Access.REFUSE


def test_a_configured_rule_overrides_the_built_in_loopback_rule() -> None:
    access = AccessList([*LOOPBACK_RULES, AccessRule.parse("127.0.0.0/8 refuse")])
    assert access.decide("127.0.0.1") is Access.REFUSE
    assert access.decide("::1") is Access.ALLOW


@pytest.mark.parametrize(
    ("qtype", "qclass", "expected"),
    [
        (dns.rdatatype.A, dns.rdataclass.IN, None),
        (dns.rdatatype.ANY, dns.rdataclass.IN, None),
        (dns.rdatatype.A, dns.rdataclass.CH, (dns.rcode.REFUSED, "refused")),
        (dns.rdatatype.AXFR, dns.rdataclass.IN, (dns.rcode.REFUSED, "refused")),
        (dns.rdatatype.IXFR, dns.rdataclass.IN, (dns.rcode.REFUSED, "refused")),
        (dns.rdatatype.OPT, dns.rdataclass.IN, (dns.rcode.FORMERR, "malformed")),
        (128, dns.rdataclass.IN, (dns.rcode.FORMERR, "malformed")),
        (dns.rdatatype.MAILA, dns.rdataclass.IN, (dns.rcode.FORMERR, "malformed")),
        (256, dns.rdataclass.IN, None),
    ],
)
def test_questions_a_resolver_does_not_answer(
    qtype: int, qclass: int, expected: tuple[int, str] | None
) -> None:
    assert reject_question(qtype, qclass) == expected


def test_a_plain_query_of_another_class_is_refused_though_read_fast() -> None:
    wire = dns.message.make_query("version.bind.", "TXT", "CH").to_wire()
    assert read_fast_query(wire) is not None
    assert rcode_of(screen(wire, "127.0.0.1")) == dns.rcode.REFUSED


def test_a_plain_query_is_accepted_without_dnspython_and_keyed_for_the_cache() -> None:
    wire = query().to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    outcome = screen_query(wire, Access.ALLOW, fast)
    assert isinstance(outcome, Accepted) and outcome.cache_key == fast.key
    assert outcome.edns_do is False and outcome.udp_limit == fast.udp_limit


def test_the_access_decision_comes_before_the_query_is_read() -> None:
    """A denied or refused client is dropped or refused without the plain query read (the
    frontend does not read it for them), with the same outcome as when it was read."""
    wire = query().to_wire()
    for access, why in ((Access.DENY, "denied"), (Access.REFUSE, "refused")):
        unread = screen_query(wire, access, None)
        assert unread == screen_query(wire, access, read_fast_query(wire))
        assert isinstance(unread, Rejected) and unread.why == why
