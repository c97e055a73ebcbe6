"""Parent and child are different sources (RFC 2181 §5.4.1, RFC 1034 §4.2.2), DS lives at
the parent (RFC 4035 §3.1.4.1), delegations do not outlive the parent's TTL (CVE-2012-1191),
what a server says that was not asked, and TTL bounds: the machine over the lab in memory."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.rrset import TtlBounds
from resolver.cache.view import Caches
from resolver.core.events import Failure
from tests.core.harness import Responder, lab_responder, resolve
from tests.core.test_resolution import addresses
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
N = dns.name.from_text
T0 = 1_000_000.0


def values(walk_answer: tuple[object, ...], rdtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(
        rdata.to_text()
        for rrset in walk_answer
        if rrset.rdtype == wanted  # type: ignore[attr-defined]
        for rdata in rrset  # type: ignore[attr-defined]
    )


def warmed() -> Caches:
    """Caches that hold pc.lab.'s and fb.lab.'s referrals with their glue."""
    caches = Caches()
    for name in ("www.pc.lab.", "www.fb.lab."):
        assert resolve(name, "A", LAB, caches=caches).result.rcode == dns.rcode.NOERROR
    return caches


# --- item 1: glue and referral NS records are hints, never answers --------------------------


def test_a_name_known_only_as_glue_is_answered_with_all_the_childs_addresses() -> None:
    caches = warmed()
    walk = resolve("ns1.pc.lab.", "A", LAB, caches=caches)
    assert sorted(addresses(walk.result.answer)) == ["127.53.24.1", "127.53.24.3"]
    assert [s.zone for s in walk.sent] == [N("pc.lab.")]  # asked of the child, not the glue


def test_glue_for_a_name_the_child_lacks_gives_nxdomain() -> None:
    walk = resolve("ns2.pc.lab.", "A", LAB, caches=warmed())
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert [r.name for r in walk.result.authority] == [N("pc.lab.")]


def test_ns_at_a_zone_apex_is_the_childs_set_not_the_referrals() -> None:
    caches = warmed()
    walk = resolve("pc.lab.", "NS", LAB, caches=caches)
    assert values(walk.result.answer, "NS") == ["ns1.pc.lab.", "ns3.pc.lab."]
    again = resolve("pc.lab.", "NS", LAB, caches=caches)  # now from the cache
    assert again.sent == []
    assert values(again.result.answer, "NS") == ["ns1.pc.lab.", "ns3.pc.lab."]


def test_the_childs_addresses_replace_the_glue_for_reaching_it_too() -> None:
    caches = warmed()
    resolve("ns1.pc.lab.", "A", LAB, caches=caches)
    cut = caches.rrsets.closest_cut(N("www.pc.lab."), T0 + 1)
    assert cut is not None
    assert sorted(cut.addresses()) == ["127.53.24.1", "127.53.24.2", "127.53.24.3"]


def test_parent_glue_is_the_last_resort_when_the_childs_address_fails() -> None:
    """fb.lab.'s child says its server is at 127.53.24.5, where nothing answers; the
    parent's glue (127.53.24.4) still reaches it, without walking again from the root."""
    caches = warmed()
    child = resolve("ns1.fb.lab.", "A", LAB, caches=caches)
    assert addresses(child.result.answer) == ["127.53.24.5"]
    walk = resolve("www2.fb.lab.", "A", LAB, caches=caches)
    assert addresses(walk.result.answer) == ["192.0.2.73"]
    assert [s.server for s in walk.sent] == ["127.53.24.5", "127.53.24.4"]
    # the dead address is now backed off: the glue is asked first
    again = resolve("nothing.fb.lab.", "A", LAB, caches=caches, now=T0 + 0.5)
    assert again.result.rcode == dns.rcode.NXDOMAIN
    assert [s.server for s in again.sent] == ["127.53.24.4"]


def out_of_bailiwick_glue(
    address: str, query: dns.message.Message
) -> dns.message.Message | Failure:
    """lab.'s servers delegate oob.lab. to ns.oob.example. and add glue for it, outside
    lab.; example.'s servers have never heard of that name (NXDOMAIN)."""
    qname = query.question[0].name
    if qname.is_subdomain(N("oob.lab.")) and address.startswith("127.53.1."):
        reply = dns.message.make_response(query)
        reply.authority.append(dns.rrset.from_text("oob.lab.", 300, "IN", "NS", "ns.oob.example."))
        reply.additional.append(
            dns.rrset.from_text("ns.oob.example.", 300, "IN", "A", "127.53.24.1")
        )
        return reply
    if address == "127.53.24.1" and qname.is_subdomain(N("oob.lab.")):
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        reply.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.74"))
        return reply
    return LAB(address, query)


def test_out_of_bailiwick_glue_is_unused_with_harden_glue() -> None:
    walk = resolve("www.oob.lab.", "A", out_of_bailiwick_glue)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "127.53.24.1" not in {s.server for s in walk.sent}


def test_out_of_bailiwick_glue_breaks_the_dead_end_without_harden_glue() -> None:
    walk = resolve("www.oob.lab.", "A", out_of_bailiwick_glue, harden_glue=False)
    assert addresses(walk.result.answer) == ["192.0.2.74"]
    # the server's own name was looked up first; the glue was the last resort
    assert N("ns.oob.example.") in {s.qname for s in walk.sent}
    assert walk.sent[-1].server == "127.53.24.1"


# --- item 2: a delegation lives no longer than the parent said ------------------------------


def moved(after: float) -> Responder:
    """The lab, but ghost.lab. is delegated by lab. with NS TTL 60 to the old servers
    (127.53.3.x, which keep answering for it with NS TTL 86400) until ``after``, then to the
    new ones (127.53.24.3)."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        qname = query.question[0].name
        if not qname.is_subdomain(N("ghost.lab.")) or address.startswith("127.53.0."):
            return LAB(address, query)  # the root refers to lab. as usual
        reply = dns.message.make_response(query)
        if address.startswith("127.53.1."):
            new = respond.now >= after  # type: ignore[attr-defined]
            server, glue = (
                ("ns.new.ghost.lab.", "127.53.24.3") if new else ("ns.old.ghost.lab.", "127.53.3.1")
            )
            reply.authority.append(dns.rrset.from_text("ghost.lab.", 60, "IN", "NS", server))
            reply.additional.append(dns.rrset.from_text(server, 60, "IN", "A", glue))
            return reply
        reply.flags |= dns.flags.AA
        side = "new" if address == "127.53.24.3" else "old"
        if query.question[0].rdtype == dns.rdatatype.NS and qname == N("ghost.lab."):
            reply.answer.append(
                dns.rrset.from_text("ghost.lab.", 86400, "IN", "NS", f"ns.{side}.ghost.lab.")
            )
        else:
            value = "192.0.2.81" if side == "new" else "192.0.2.80"
            reply.answer.append(dns.rrset.from_text(qname, 5, "IN", "A", value))
        return reply

    respond.now = 0.0  # type: ignore[attr-defined]
    return respond


def test_a_moved_domain_is_followed_once_the_parents_ttl_has_passed() -> None:
    """The ghost-domain attack (CVE-2012-1191): the old servers' NS answer with a day's TTL
    does not keep the old delegation alive past the parent's 60 seconds."""
    responder = moved(after=T0 + 30)
    caches = Caches()
    first = resolve("www.ghost.lab.", "A", responder, caches=caches, now=T0)
    assert addresses(first.result.answer) == ["192.0.2.80"]
    ns = resolve("ghost.lab.", "NS", responder, caches=caches, now=T0 + 10)
    assert values(ns.result.answer, "NS") == ["ns.old.ghost.lab."]
    responder.now = T0 + 61  # type: ignore[attr-defined]
    later = resolve("www.ghost.lab.", "A", responder, caches=caches, now=T0 + 61)
    assert addresses(later.result.answer) == ["192.0.2.81"]
    assert later.sent[0].zone == N("lab.")


def test_a_shorter_child_ns_ttl_makes_the_delegation_fetched_again_sooner() -> None:
    caches = Caches()
    resolve("www.example.lab.", "A", LAB, caches=caches, now=T0)
    cut_ttl = caches.rrsets.get(N("example.lab."), dns.rdatatype.NS, T0)
    assert cut_ttl is not None and cut_ttl.ttl == 3600  # the referral's
    child = resolve("example.lab.", "NS", LAB, caches=caches, now=T0 + 1)
    assert child.result.answer[0].ttl == 300  # the child's
    cut = caches.rrsets.closest_cut(N("www.example.lab."), T0 + 302)
    assert cut is not None and cut.zone == N("lab.")  # re-fetched from the parent


# --- item 3: DS is asked of the parent ------------------------------------------------------


def test_ds_for_a_delegation_point_is_asked_of_the_parent() -> None:
    caches = warmed()
    walk = resolve("pc.lab.", "DS", LAB, caches=caches)
    assert walk.result.rcode == dns.rcode.NOERROR and walk.result.answer == ()
    assert [r.name for r in walk.result.authority] == [N("lab.")]  # the parent's SOA
    assert {s.zone for s in walk.sent} == {N("lab.")}


def test_ds_from_the_root_hints_walks_to_the_parent_only() -> None:
    walk = resolve("example.lab.", "DS", LAB)
    assert [r.name for r in walk.result.authority] == [N("lab.")]
    assert [s.zone for s in walk.sent] == [N("."), N("lab.")]


# --- item 7: what a server says that was not asked -------------------------------------------


def test_an_authoritative_upward_referral_is_lame_and_the_next_server_is_asked() -> None:
    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        if address == "127.53.3.1":
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            reply.authority.append(dns.rrset.from_text(".", 3600, "IN", "NS", "a.root.lab."))
            return reply
        return LAB(address, query)

    for seed in range(4):
        walk = resolve("www.example.lab.", "A", respond, seed=seed)
        assert addresses(walk.result.answer) == ["192.0.2.10"], seed


def test_records_not_asked_for_are_neither_answered_nor_cached() -> None:
    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        reply = LAB(address, query)
        if address.startswith("127.53.3.") and isinstance(reply, dns.message.Message):
            reply.answer.append(
                dns.rrset.from_text("mail.example.lab.", 300, "IN", "A", "192.0.2.99")
            )
            reply.answer.append(dns.rrset.from_text("www.example.lab.", 300, "IN", "TXT", '"x"'))
        return reply

    caches = Caches()
    walk = resolve("www.example.lab.", "A", respond, caches=caches)
    assert [r.rdtype for r in walk.result.answer] == [dns.rdatatype.A]
    assert caches.rrsets.get(N("mail.example.lab."), dns.rdatatype.A, T0 + 1) is None
    assert caches.rrsets.get(N("www.example.lab."), dns.rdatatype.TXT, T0 + 1) is None


# --- item 8: TTL bounds -------------------------------------------------------------------------


def zero_ttl(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
    reply = LAB(address, query)
    if address.startswith("127.53.3.") and isinstance(reply, dns.message.Message):
        for rrset in reply.answer:
            rrset.ttl = 0
    return reply


def test_ttl_zero_is_answered_but_not_cached() -> None:
    caches = Caches()
    first = resolve("www.example.lab.", "A", zero_ttl, caches=caches)
    assert addresses(first.result.answer) == ["192.0.2.10"]
    assert first.result.answer[0].ttl == 0
    again = resolve("www.example.lab.", "A", zero_ttl, caches=caches)
    assert [s.zone for s in again.sent] == [N("example.lab.")]


def test_min_ttl_caches_a_zero_ttl_answer_and_shows_the_authoritys_ttl() -> None:
    caches = Caches.sized(1 << 20, TtlBounds(min_ttl=30, max_ttl=86400))
    resolve("www.example.lab.", "A", zero_ttl, caches=caches)
    again = resolve("www.example.lab.", "A", zero_ttl, caches=caches, now=T0 + 10)
    assert again.sent == []
    assert again.result.answer[0].ttl == 0


def test_max_ttl_caps_what_the_client_sees_on_the_first_answer() -> None:
    caches = Caches.sized(1 << 20, TtlBounds(max_ttl=100), max_negative_ttl=20)
    walk = resolve("www.example.lab.", "A", LAB, caches=caches)
    assert walk.result.answer[0].ttl == 100  # the zone says 300
    negative = resolve("nx.example.lab.", "A", LAB, caches=caches)
    assert negative.result.authority[0].ttl == 20  # min(SOA TTL, MINIMUM) is 60
