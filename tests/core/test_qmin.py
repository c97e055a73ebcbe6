"""QNAME minimisation, relaxed (RFC 9156): what each zone's servers are asked, and the
fallbacks to the full name for broken servers (Unbound's ``qname-minimisation-strict: no``),
the machine over the lab in memory."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.core.events import SendQuery
from resolver.limits import Limits
from resolver.names import name_key
from tests.core.harness import Walk, lab_responder, resolve
from tests.core.test_resolution import addresses
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
N = dns.name.from_text
ROOT = ("127.53.0.1", "127.53.0.2")
TLD = ("127.53.1.1", "127.53.1.2")
DEEP = "a.b.c.d.e.f.g.h.qmin.lab."


def asked(walk: Walk, *servers: str) -> list[str]:
    """The questions ``servers`` got, as ``name type``."""
    return [question(s) for s in walk.sent if s.server in servers]


def question(send: SendQuery) -> str:
    return f"{send.qname} {dns.rdatatype.to_text(send.qtype)}"


def test_each_zone_is_asked_only_for_the_next_label() -> None:
    walk = resolve(DEEP, "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.85"]
    assert asked(walk, *ROOT) == ["lab. A"]
    assert asked(walk, *TLD) == ["qmin.lab. A"]
    # h and g.h are empty non-terminals (NODATA: one label more), f.g.h is a zone cut
    assert asked(walk, "127.53.22.1") == ["h.qmin.lab. A", "g.h.qmin.lab. A", "f.g.h.qmin.lab. A"]
    assert asked(walk, "127.53.22.2") == [
        "e.f.g.h.qmin.lab. A",
        "d.e.f.g.h.qmin.lab. A",
        "c.d.e.f.g.h.qmin.lab. A",
        "b.c.d.e.f.g.h.qmin.lab. A",
        f"{DEEP} A",
    ]
    assert walk.result.upstream_queries == 10


def test_without_minimisation_every_server_gets_the_full_name() -> None:
    walk = resolve(DEEP, "A", LAB, qname_minimisation=False)
    assert addresses(walk.result.answer) == ["192.0.2.85"]
    assert {question(s) for s in walk.sent} == {f"{DEEP} A"}
    assert len(walk.sent) == 4


def test_the_full_name_is_asked_with_the_real_type_at_once() -> None:
    """RFC 9156 §3 step 3: once the next name is the name itself, the original question.
    (Unbound asks the full name with A first when the type is not A or DS; answers agree.)"""
    walk = resolve("www.qmin.lab.", "AAAA", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR and walk.result.answer == ()
    assert asked(walk, "127.53.22.1") == ["www.qmin.lab. AAAA"]
    assert [s.qtype for s in walk.sent[:2]] == [dns.rdatatype.A, dns.rdatatype.A]


def test_underscore_labels_are_asked_in_full() -> None:
    walk = resolve("_25._tcp.mail.qmin.lab.", "TXT", LAB)
    assert walk.result.answer[0].rdtype == dns.rdatatype.TXT
    assert asked(walk, "127.53.22.1") == ["mail.qmin.lab. A", "_25._tcp.mail.qmin.lab. TXT"]


def test_nxdomain_for_an_empty_non_terminal_falls_back_to_the_full_name() -> None:
    walk = resolve("www.a.b.entnx.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.81"]
    assert asked(walk, "127.53.22.3") == ["b.entnx.lab. A", "www.a.b.entnx.lab. A"]


def test_an_ancestors_nxdomain_is_checked_with_the_full_name() -> None:
    """Without DNSSEC an NXDOMAIN for an ancestor is not trusted (Unbound does the same):
    the full name is asked once, and its NXDOMAIN is the answer."""
    caches = Caches()
    walk = resolve("x.y.nothing.qmin.lab.", "A", LAB, caches=caches)
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert [r.name for r in walk.result.authority] == [N("qmin.lab.")]
    assert asked(walk, "127.53.22.1") == ["nothing.qmin.lab. A", "x.y.nothing.qmin.lab. A"]
    # the cached NXDOMAIN of the ancestor is not asked again: the full name at once
    again = resolve("z.nothing.qmin.lab.", "A", LAB, caches=caches, now=1_000_001.0)
    assert again.result.rcode == dns.rcode.NXDOMAIN
    assert asked(again, "127.53.22.1") == ["z.nothing.qmin.lab. A"]


def test_an_ancestor_that_is_a_cname_is_not_followed() -> None:
    walk = resolve("x.alias.qmin.lab.", "A", LAB)
    plain = resolve("x.alias.qmin.lab.", "A", LAB, qname_minimisation=False)
    assert walk.result.rcode == plain.result.rcode == dns.rcode.NXDOMAIN
    assert walk.result.answer == plain.result.answer == ()
    assert asked(walk, "127.53.22.1") == ["alias.qmin.lab. A", "x.alias.qmin.lab. A"]


def test_refused_to_a_minimised_question_falls_back_and_the_server_is_not_lame() -> None:
    caches = Caches()
    walk = resolve("www.a.b.refuse.lab.", "A", LAB, caches=caches)
    assert addresses(walk.result.answer) == ["192.0.2.82"]
    assert asked(walk, "127.53.22.4") == ["b.refuse.lab. A", "www.a.b.refuse.lab. A"]
    zone = name_key(N("refuse.lab."))
    assert not caches.infra.is_lame("127.53.22.4", zone, 1_000_001.0)


def test_a_dropped_minimised_question_falls_back_after_its_timeout() -> None:
    walk = resolve("www.a.b.dropmin.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.83"]
    assert asked(walk, "127.53.22.5") == ["b.dropmin.lab. A", "www.a.b.dropmin.lab. A"]
    assert walk.elapsed_s >= 1.0  # one timeout, then the full name to the same server


def test_minimised_questions_count_against_the_upstream_budget() -> None:
    small = Limits(max_upstream_queries=6)
    walk = resolve(DEEP, "A", LAB, limits=small)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert "work limit: 6 upstream queries" in walk.result.reason
    assert len(walk.sent) == 6
    plain = resolve(DEEP, "A", LAB, limits=small, qname_minimisation=False)
    assert addresses(plain.result.answer) == ["192.0.2.85"]


def test_cached_nodata_for_ancestors_is_not_asked_again() -> None:
    caches = Caches()
    resolve(DEEP, "A", LAB, caches=caches)
    walk = resolve("x.c.d.e.f.g.h.qmin.lab.", "A", LAB, caches=caches, now=1_000_001.0)
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert [question(s) for s in walk.sent] == ["x.c.d.e.f.g.h.qmin.lab. A"]
