"""Bailiwick over real sockets: example.lab.'s servers add out-of-zone records to every
answer (answer, authority and additional sections); none of it may change what the resolver
answers for those names, or what it caches (RFC 2181 §5.4.1)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.lab.server import FORGED_ADDRESS
from tests.helpers import lab_with
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port

PORT, LYING_LAB_PORT = free_port(), lab_port()
LYING = lab_with().with_faults("127.53.3.1", "127.53.3.2", poison=True)


@pytest.fixture
def lied_to() -> Iterator[Stack]:
    running = Stack(lab_settings(PORT, outbound_port=LYING_LAB_PORT), LYING, LYING_LAB_PORT).start()
    yield running
    running.stop()


def values(qname: str, qtype: str = "A") -> list[str]:
    reply = dns.query.udp(dns.message.make_query(qname, qtype), "127.0.0.1", port=PORT, timeout=5)
    wanted = dns.rdatatype.from_text(qtype)
    return [r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset]


def test_out_of_zone_records_change_nothing(lied_to: Stack) -> None:
    assert values("www.example.lab.") == ["192.0.2.10"]  # the lying server's own data is fine
    other = lied_to.lab_server.authority("127.53.4.1")
    asked = other.queries_received
    assert values("www.other.example.") == ["192.0.2.20"]  # answer section lie ignored
    assert other.queries_received == asked + 1  # really asked, not taken from the lie
    assert values("www.deadns.lab.") == ["192.0.2.40"]  # lab.'s NS and glue intact
    rrsets = lied_to.service.caches.rrsets
    now = lied_to.service.clock()
    glue = rrsets.get(dns.name.from_text("ns1.nic.lab."), dns.rdatatype.A, now)
    assert glue is not None and [r.to_text() for r in glue] == ["127.53.1.1"]
    lab_ns = rrsets.get(dns.name.from_text("lab."), dns.rdatatype.NS, now)
    assert lab_ns is not None and "ns.evil.example." not in {r.to_text() for r in lab_ns}
    assert rrsets.get(dns.name.from_text("ns.evil.example."), dns.rdatatype.A, now) is None
    for rrset_name in ("www.other.example.", "ns1.nic.lab.", "ns.evil.example."):
        cached = rrsets.get(dns.name.from_text(rrset_name), dns.rdatatype.A, now)
        assert cached is None or FORGED_ADDRESS not in {r.to_text() for r in cached}


def test_nxns_delegation_costs_bounded_queries_at_the_lab_servers(stack: Stack) -> None:
    """attack.lab. is delegated to 30 glueless name servers under victim.example., none of
    which exists: the resolver gives up within its sub-resolution budget, counted at the
    example. TLD server that has to answer for them."""
    from resolver.limits import MAX_SUBQUERIES  # noqa: PLC0415

    port = free_port()
    running = Stack(lab_settings(port)).start()
    victim = stack.lab_server.authority("127.53.2.1")
    before = victim.queries_received
    try:
        reply = dns.query.udp(
            dns.message.make_query("www.attack.lab.", "A", use_edns=0),
            "127.0.0.1",
            port=port,
            timeout=5,
        )
    finally:
        running.stop()
    (ede,) = [o for o in reply.options if o.otype == dns.edns.OptionType.EDE]
    # The reasons are cut at a boundary, never mid-word, and the rest counted (issue 14).
    assert isinstance(ede, dns.edns.EDEOption) and ede.text is not None
    whole_reason = r"1 (no address for [a-z0-9.-]+\.|name server [a-z0-9.-]+\. does not exist)"
    assert re.search(rf"(, |: ){whole_reason} … and \d+ more$", ede.text), ede.text
    cost = victim.queries_received - before
    print(
        f"\nNXNS at the lab: {cost} queries reached the victim's TLD server (sub-resolution limit {MAX_SUBQUERIES})"
    )
    assert reply.rcode() == dns.rcode.SERVFAIL
    # QNAME minimisation (RFC 9156) adds one query: the first sub-resolution asks the
    # ancestor victim.example. (NXDOMAIN, not trusted without DNSSEC, so the full name is
    # asked too); its cached NXDOMAIN sends every later one to the full name at once.
    assert 1 <= cost <= MAX_SUBQUERIES + 1
    recent = [name for name, _ in list(victim.questions)[-cost:]]
    assert recent.count("victim.example.") <= 1
