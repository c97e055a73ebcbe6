"""Work limits under attack (NXNS, referral chains, long CNAME chains, deep delegations, a
zone whose servers all time out): each ends in SERVFAIL within a bounded number of upstream
queries and bounded (virtual) time. The costs are printed for the report (pytest -s)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rrset

from resolver.core.events import Failure
from resolver.limits import MAX_CNAME_HOPS, MAX_REFERRALS, MAX_UPSTREAM_QUERIES, Limits
from tests.core.harness import Responder, lab_responder, resolve
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
N = dns.name.from_text


def attacker(answer: object) -> Responder:
    """The lab, but the TLD server for lab. answers questions under attack.lab. itself."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        qname = query.question[0].name
        if address.startswith("127.53.1.") and qname.is_subdomain(N("attack.lab.")):
            return answer(query)  # type: ignore[operator, no-any-return]
        if address == "127.53.66.1":
            return answer(query)  # type: ignore[operator, no-any-return]
        return LAB(address, query)

    return respond


def report(case: str, sent: int, limit: int, elapsed_s: float) -> None:
    print(f"\nattack {case}: {sent} upstream queries (limit {limit}), {elapsed_s:.1f} s virtual")


def test_nxns_many_glueless_name_servers() -> None:
    """A referral to 100 name servers under another zone, none of which exists (CVE-2020-12662)."""

    def referral(query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.request_payload = 65535  # as if over TCP: the whole referral arrives
        names = [f"ns{i}.victim.example." for i in range(100)]
        reply.authority.append(dns.rrset.from_text("attack.lab.", 3600, "IN", "NS", *names))
        return reply

    walk = resolve("www.attack.lab.", "A", attacker(referral))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    victim = sum(1 for s in walk.sent if s.qname.is_subdomain(N("victim.example.")))
    report("NXNS (100 glueless NS)", len(walk.sent), MAX_UPSTREAM_QUERIES, walk.elapsed_s)
    assert len(walk.sent) <= MAX_UPSTREAM_QUERIES
    assert victim <= Limits().max_subqueries * 3  # root, example., the NXDOMAIN at most


def test_endless_chain_of_referrals() -> None:
    """Every answer refers one label deeper (a delegation 60 levels deep), always in bailiwick."""
    depth = [0]

    def deeper(query: dns.message.Message) -> dns.message.Message:
        depth[0] += 1
        qname = query.question[0].name
        labels = len(N("attack.lab.")) + depth[0]
        # a minimised question (RFC 9156) may be for the next cut itself: refer to it
        cut = qname if len(qname) <= labels else qname.split(labels)[1]
        reply = dns.message.make_response(query)
        reply.authority.append(dns.rrset.from_text(cut, 3600, "IN", "NS", f"ns.{cut}"))
        reply.additional.append(dns.rrset.from_text(f"ns.{cut}", 3600, "IN", "A", "127.53.66.1"))
        return reply

    deep_name = ".".join(f"l{i}" for i in range(60)) + ".attack.lab."
    walk = resolve(deep_name, "A", attacker(deeper))
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert f"more than {MAX_REFERRALS} referrals" in walk.result.reason
    report("referral chain (60 levels)", len(walk.sent), MAX_REFERRALS, walk.elapsed_s)
    assert len(walk.sent) <= MAX_REFERRALS + 2


def test_long_cname_chain() -> None:
    """c0.attack.lab. -> c1.attack.example. -> c2.attack.lab. -> ... each answered by its
    TLD's server, so every hop leaves the zone and restarts the walk."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        qname = query.question[0].name
        tld_server = address.startswith(("127.53.1.", "127.53.2."))
        if tld_server and qname.labels[0] == b"attack":  # minimised (RFC 9156): NODATA
            reply = dns.message.make_response(query)
            reply.flags |= 0x0400  # AA
            soa = f"ns1.{qname.parent()} hostmaster.{qname.parent()} 1 1800 900 604800 300"
            reply.authority.append(dns.rrset.from_text(qname.parent(), 300, "IN", "SOA", soa))
            return reply
        if (
            tld_server
            and qname.labels[0].startswith(b"c")
            and qname.parent().labels[0] == b"attack"
        ):
            hop = int(qname.labels[0][1:])
            target = f"c{hop + 1}.attack.{'example' if hop % 2 == 0 else 'lab'}."
            reply = dns.message.make_response(query)
            reply.flags |= 0x0400  # AA
            reply.answer.append(dns.rrset.from_text(qname, 300, "IN", "CNAME", target))
            return reply
        return LAB(address, query)

    walk = resolve("c0.attack.lab.", "A", respond)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "CNAME chain longer than" in walk.result.reason
    report("CNAME chain", len(walk.sent), MAX_CNAME_HOPS, walk.elapsed_s)
    assert len(walk.sent) <= 2 * (MAX_CNAME_HOPS + 2)


def test_zone_whose_servers_all_time_out() -> None:
    def silent(query: dns.message.Message) -> Failure:
        del query
        return Failure.TIMEOUT

    def referral(query: dns.message.Message) -> dns.message.Message | Failure:
        if query.question[0].name.is_subdomain(N("attack.lab.")):
            reply = dns.message.make_response(query)
            reply.authority.append(
                dns.rrset.from_text(
                    "attack.lab.", 3600, "IN", "NS", *[f"ns{i}.attack.lab." for i in range(20)]
                )
            )
            reply.additional.extend(
                dns.rrset.from_text(f"ns{i}.attack.lab.", 3600, "IN", "A", f"127.53.67.{i}")
                for i in range(20)
            )
            return reply
        return silent(query)

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        if address.startswith("127.53.67."):
            return silent(query)
        if address.startswith("127.53.1."):
            return referral(query)
        return LAB(address, query)

    walk = resolve("www.attack.lab.", "A", respond)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == "no server of attack.lab. answered"
    report("20 dead servers", len(walk.sent), MAX_UPSTREAM_QUERIES, walk.elapsed_s)
    assert len(walk.sent) == 22  # root, lab., then each dead server once
