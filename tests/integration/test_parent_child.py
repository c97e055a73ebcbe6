"""Parent and child over real sockets: glue is a hint, DS is the parent's, and the parent's
glue is the last resort when the child's own address for its server is wrong."""

from __future__ import annotations

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from tests.integration.conftest import RESOLVER_PORT
from tests.integration.stack import Stack

SERVER = "127.0.0.1"


def ask(qname: str, qtype: str) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    return dns.query.udp(query, SERVER, timeout=5, port=RESOLVER_PORT)


def values(reply: dns.message.Message, qtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(qtype)
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset)


def queries_at(stack: Stack, *addresses: str) -> int:
    return sum(stack.lab_server.authority(a).queries_received for a in addresses)


def test_glue_only_names_are_answered_by_the_child(stack: Stack) -> None:
    assert values(ask("www.pc.lab.", "A"), "A") == ["192.0.2.71"]  # the referral's glue cached
    assert values(ask("ns1.pc.lab.", "A"), "A") == ["127.53.24.1", "127.53.24.3"]
    assert ask("ns2.pc.lab.", "A").rcode() == dns.rcode.NXDOMAIN
    assert values(ask("pc.lab.", "NS"), "NS") == ["ns1.pc.lab.", "ns3.pc.lab."]


def test_ds_is_asked_of_the_parent_and_denied_with_its_soa(stack: Stack) -> None:
    ask("www.fb.lab.", "A")  # fb.lab.'s delegation cached (no other test asks its DS)
    child_before = queries_at(stack, "127.53.24.4")
    parent_before = queries_at(stack, "127.53.1.1", "127.53.1.2")
    reply = ask("fb.lab.", "DS")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    assert [r.name for r in reply.authority] == [dns.name.from_text("lab.")]
    assert queries_at(stack, "127.53.24.4") == child_before
    assert queries_at(stack, "127.53.1.1", "127.53.1.2") == parent_before + 1


def test_the_parents_glue_reaches_a_child_whose_own_address_is_wrong(stack: Stack) -> None:
    assert values(ask("www.fb.lab.", "A"), "A") == ["192.0.2.72"]
    assert values(ask("ns1.fb.lab.", "A"), "A") == ["127.53.24.5"]  # nothing listens there
    roots = queries_at(stack, "127.53.0.1", "127.53.0.2", "127.53.1.1", "127.53.1.2")
    assert values(ask("www2.fb.lab.", "A"), "A") == ["192.0.2.73"]
    # reached through the kept glue, without walking again from the root
    assert queries_at(stack, "127.53.0.1", "127.53.0.2", "127.53.1.1", "127.53.1.2") == roots
