"""What the resolver does with a client's bytes before resolving (pure screening)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from resolver.access import LOOPBACK_RULES, Access, AccessList, AccessRule
from resolver.frontend import Rejected, screen_query
from resolver.model import ClientQuery as Accepted

ACCESS = AccessList(
    [
        *LOOPBACK_RULES,
        AccessRule.parse("10.1.0.0/16 allow_snoop"),
        AccessRule.parse("10.0.0.0/8 deny"),
    ]
)


def query(**changes: object) -> dns.message.Message:
    message = dns.message.make_query("www.example.lab.", "A", use_edns=0)
    for key, value in changes.items():
        setattr(message, key, value)
    return message


def rcode_of(outcome: Accepted | Rejected) -> int:
    assert isinstance(outcome, Rejected) and outcome.reply is not None
    return dns.message.from_wire(outcome.reply).rcode()


def test_a_good_query_is_accepted() -> None:
    outcome = screen_query(query().to_wire(), "127.0.0.1", ACCESS)
    assert isinstance(outcome, Accepted)
    assert outcome.question.qname.to_text() == "www.example.lab."


def test_short_packets_and_responses_are_dropped() -> None:
    assert screen_query(b"\x12\x34\x01", "127.0.0.1", ACCESS) == Rejected(None, "malformed")
    response = dns.message.make_response(query())
    assert screen_query(response.to_wire(), "127.0.0.1", ACCESS) == Rejected(None, "response")


def test_unparseable_question_is_formerr() -> None:
    wire = query().to_wire()[:15]
    assert rcode_of(screen_query(wire, "127.0.0.1", ACCESS)) == dns.rcode.FORMERR


def test_other_opcodes_are_notimp() -> None:
    message = query()
    message.set_opcode(dns.opcode.UPDATE)
    assert rcode_of(screen_query(message.to_wire(), "::1", ACCESS)) == dns.rcode.NOTIMP


def test_edns_version_1_is_badvers() -> None:
    message = dns.message.make_query("www.example.lab.", "A", use_edns=1)
    outcome = screen_query(message.to_wire(), "127.0.0.1", ACCESS)
    assert isinstance(outcome, Rejected) and outcome.reply is not None
    reply = dns.message.from_wire(outcome.reply)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


def test_clients_outside_the_access_list() -> None:
    assert rcode_of(screen_query(query().to_wire(), "192.0.2.1", ACCESS)) == dns.rcode.REFUSED
    assert screen_query(query().to_wire(), "10.2.3.4", ACCESS) == Rejected(None, "denied")
    assert isinstance(screen_query(query().to_wire(), "::ffff:127.0.0.1", ACCESS), Accepted)


def test_rd0_needs_snoop_permission() -> None:
    message = query()
    message.flags &= ~dns.flags.RD
    assert rcode_of(screen_query(message.to_wire(), "127.0.0.1", ACCESS)) == dns.rcode.REFUSED
    assert isinstance(screen_query(message.to_wire(), "10.1.2.3", ACCESS), Accepted)


@pytest.mark.parametrize(
    ("qtype", "rcode"), [("AXFR", dns.rcode.REFUSED), ("OPT", dns.rcode.FORMERR)]
)
def test_transfer_and_meta_types(qtype: str, rcode: int) -> None:
    message = dns.message.make_query("example.lab.", qtype)
    assert rcode_of(screen_query(message.to_wire(), "127.0.0.1", ACCESS)) == rcode


def test_two_questions_are_formerr() -> None:
    message = query()
    message.question.append(message.question[0])
    assert rcode_of(screen_query(message.to_wire(), "127.0.0.1", ACCESS)) == dns.rcode.FORMERR


def test_longest_prefix_wins() -> None:
    assert ACCESS.decide("10.1.9.9") is Access.ALLOW_SNOOP
    assert ACCESS.decide("10.9.9.9") is Access.DENY
    assert ACCESS.decide("not an address") is Access.REFUSE


def test_a_configured_rule_overrides_the_built_in_loopback_rule() -> None:
    access = AccessList([*LOOPBACK_RULES, AccessRule.parse("127.0.0.0/8 refuse")])
    assert access.decide("127.0.0.1") is Access.REFUSE
    assert access.decide("::1") is Access.ALLOW
