"""The Resolution state machine walking the lab's zones in memory, with virtual time."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.core.events import Failure
from resolver.limits import Limits
from resolver.model import ExtendedError
from resolver.records import WireRRset
from tests.core.harness import Responder, lab_responder, resolve
from tests.helpers import lab_with

LAB = lab_responder(lab_with())


def addresses(walk_result_answer: tuple[WireRRset, ...], rdtype: str = "A") -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return [
        rdata.to_text() for rrset in walk_result_answer if rrset.rdtype == wanted for rdata in rrset
    ]


def test_referrals_from_the_root_to_the_answer() -> None:
    walk = resolve("www.example.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert addresses(walk.result.answer) == ["192.0.2.10"]
    zones = [send.zone.to_text() for send in walk.sent]
    assert zones == [".", "lab.", "example.lab."]


def test_aaaa() -> None:
    walk = resolve("www.example.lab.", "AAAA", LAB)
    assert addresses(walk.result.answer, "AAAA") == ["2001:db8::10"]


def test_cname_across_tlds_restarts_at_the_target() -> None:
    walk = resolve("alias.example.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert [r.rdtype for r in walk.result.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert addresses(walk.result.answer) == ["192.0.2.20"]
    assert "other.example." in [s.zone.to_text() for s in walk.sent]


def test_three_cname_hops_through_three_zones() -> None:
    walk = resolve("chain.example.lab.", "A", LAB)
    cnames = [r for r in walk.result.answer if r.rdtype == dns.rdatatype.CNAME]
    assert len(cnames) == 3
    assert addresses(walk.result.answer) == ["192.0.2.60"]
    asked = {s.zone.to_text() for s in walk.sent}
    assert {"example.lab.", "other.example.", "third.lab."} <= asked


def test_in_zone_cname_is_followed_within_one_reply() -> None:
    walk = resolve("inzone.example.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.10"]
    assert len(walk.sent) == 3


def test_nxdomain_carries_the_soa_with_the_negative_ttl() -> None:
    walk = resolve("nx.example.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert walk.result.answer == ()
    (soa,) = walk.result.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name == dns.name.from_text("example.lab.")
    assert soa.ttl == 60  # min(SOA TTL 300, MINIMUM 60), RFC 2308 §3


def test_nodata_is_noerror_with_soa() -> None:
    walk = resolve("www.example.lab.", "MX", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert walk.result.answer == ()
    assert walk.result.authority[0].rdtype == dns.rdatatype.SOA


def test_empty_non_terminal_is_nodata_not_nxdomain() -> None:
    walk = resolve("ent.example.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert walk.result.answer == ()


def test_wildcard() -> None:
    walk = resolve("anything.wild.example.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.50"]
    assert walk.result.answer[0].name == dns.name.from_text("anything.wild.example.lab.")


def test_glueless_delegation_resolves_the_name_server_first() -> None:
    walk = resolve("www.glueless.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.30"]
    sub = [s for s in walk.sent if s.qname == dns.name.from_text("nsg.other.example.")]
    assert sub, "the name server's address was never asked for"
    assert walk.sent[-1].server == "127.53.6.1"


def test_a_dead_server_costs_one_timeout_then_the_other_answers() -> None:
    for seed in range(8):
        walk = resolve("www.deadns.lab.", "A", LAB, seed=seed)
        assert addresses(walk.result.answer) == ["192.0.2.40"]
        assert walk.by_server["127.53.7.1"] <= 1
        assert walk.by_server["127.53.7.2"] == 1


def test_lame_zone_fails_fast_with_a_reason() -> None:
    walk = resolve("www.lame.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "all servers for lame.lab. answered REFUSED"
    assert walk.result.error_code is ExtendedError.NO_REACHABLE_AUTHORITY
    assert walk.by_server["127.53.8.1"] == 1
    assert walk.by_server["127.53.8.2"] == 1
    assert walk.elapsed_s < 0.1  # virtual time: no timeout was waited on


def test_cname_loop_across_zones_is_servfail() -> None:
    walk = resolve("loop.example.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "CNAME loop at loop.example.lab."


def test_all_servers_timing_out_says_so() -> None:
    dead = lab_responder(lab_with().with_faults("127.53.7.2", drop=1.0))
    walk = resolve("www.deadns.lab.", "A", dead)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "no server of deadns.lab. answered"
    assert walk.by_server["127.53.7.1"] == 1
    assert walk.by_server["127.53.7.2"] == 1


def test_formerr_to_edns_retries_the_same_server_without_edns() -> None:
    old = lab_responder(lab_with().with_faults("127.53.3.1", "127.53.3.2", formerr_edns=True))
    walk = resolve("www.example.lab.", "A", old)
    assert addresses(walk.result.answer) == ["192.0.2.10"]
    last_two = walk.sent[-2:]
    assert [s.use_edns for s in last_two] == [True, False]
    assert last_two[0].server == last_two[1].server


# --- canned replies: bailiwick, lameness, budgets -------------------------------------------


def poisoning(section: str, name: str, rdtype: str, value: str) -> Responder:
    """The lab, but example.lab.'s servers add a record in ``section``."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        reply = LAB(address, query)
        if address.startswith("127.53.3.") and isinstance(reply, dns.message.Message):
            getattr(reply, section).append(dns.rrset.from_text(name, 86400, "IN", rdtype, value))
        return reply

    return respond


@pytest.mark.parametrize("section", ["answer", "authority", "additional"])
def test_out_of_bailiwick_records_are_never_used(section: str) -> None:
    responder = poisoning(section, "www.other.example.", "A", "203.0.113.66")
    walk = resolve("www.example.lab.", "A", responder)
    assert addresses(walk.result.answer) == ["192.0.2.10"]
    for rrset in walk.result.answer + walk.result.authority:
        assert rrset.name.is_subdomain(dns.name.from_text("example.lab."))
    alias = resolve("alias.example.lab.", "A", responder)
    assert addresses(alias.result.answer) == ["192.0.2.20"]


def test_ns_for_a_parent_zone_in_authority_is_ignored() -> None:
    responder = poisoning("authority", "lab.", "NS", "ns.evil.example.")
    walk = resolve("www.example.lab.", "A", responder)
    assert addresses(walk.result.answer) == ["192.0.2.10"]
    assert walk.result.authority == ()


def test_upward_referral_is_lame() -> None:
    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        if address.startswith("127.53.3."):
            reply = dns.message.make_response(query)
            reply.authority.append(dns.rrset.from_text(".", 3600, "IN", "NS", "a.root.lab."))
            return reply
        return LAB(address, query)

    walk = resolve("www.example.lab.", "A", respond)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "all servers for example.lab. sent a lame reply"


def test_upstream_query_budget_ends_in_servfail() -> None:
    walk = resolve("chain.example.lab.", "A", LAB, limits=Limits(max_upstream_queries=5))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "work limit" in walk.result.reason
    assert len(walk.sent) == 5


def test_cname_hop_budget_ends_in_servfail() -> None:
    walk = resolve("chain.example.lab.", "A", LAB, limits=Limits(max_cname_hops=2))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "CNAME chain longer than 2" in walk.result.reason


def test_referral_budget_ends_in_servfail() -> None:
    walk = resolve("www.example.lab.", "A", LAB, limits=Limits(max_referrals=1))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "referrals" in walk.result.reason


def test_subquery_budget_fails_glueless_delegations() -> None:
    walk = resolve("www.glueless.lab.", "A", LAB, limits=Limits(max_subqueries=0))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "no address for any name server of glueless.lab."


def test_glueless_name_server_inside_its_own_zone_is_never_asked_for() -> None:
    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        if address.startswith("127.53.1."):  # lab. delegates example.lab. without glue
            reply = dns.message.make_response(query)
            reply.authority.append(
                dns.rrset.from_text("example.lab.", 3600, "IN", "NS", "ns1.example.lab.")
            )
            return reply
        return LAB(address, query)

    walk = resolve("www.example.lab.", "A", respond)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    # only www.example.lab. and its ancestors (QNAME minimisation), never ns1.example.lab.
    assert all(dns.name.from_text("www.example.lab.").is_subdomain(s.qname) for s in walk.sent)


def test_dependency_cycle_between_glueless_zones_fails() -> None:
    """a.lab's server lives in b.lab and b.lab's in a.lab: the mesh sees the cycle."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        qname = query.question[0].name
        if address.startswith("127.53.1."):
            zone = "a.lab." if qname.is_subdomain(dns.name.from_text("a.lab.")) else "b.lab."
            other = "b.lab." if zone == "a.lab." else "a.lab."
            reply = dns.message.make_response(query)
            reply.authority.append(dns.rrset.from_text(zone, 3600, "IN", "NS", f"ns.{other}"))
            return reply
        return LAB(address, query)

    walk = resolve("www.a.lab.", "A", respond)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert len(walk.sent) < 12


@pytest.mark.parametrize("failure", [Failure.TIMEOUT, Failure.NETWORK_ERROR, Failure.MALFORMED])
def test_failures_of_one_root_move_to_the_other(failure: Failure) -> None:
    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        return failure if address == "127.53.0.1" else LAB(address, query)

    for seed in range(4):
        walk = resolve("www.example.lab.", "A", respond, seed=seed)
        assert addresses(walk.result.answer) == ["192.0.2.10"]
