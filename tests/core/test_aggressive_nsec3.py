"""Cached secure NSEC3 records answer other names they prove absent (RFC 8198 §5.2, issue 12
item 5), in virtual time on the signed lab (NODATA from a matching NSEC3: with the NSEC
case in test_aggressive_nsec.py): nsec3.lab. (NSEC3, no salt, 0 iterations, TTL
300), optout.lab. (every NSEC3 opt-out) and nsec3iter.lab. (151 iterations)."""

from __future__ import annotations

import dns.rcode

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.model import Security
from tests.core.harness import resolve
from tests.core.test_validation import ANCHORS, NOW, SIGNED

_NSEC3, _RRSIG, _SOA = 50, 46, 6
SECOND = "n2.nsec3.lab."
"""A name whose hash (S4M0...) falls in the span that covers nx.nsec3.lab.'s (VJN5...)."""


def setup(*, aggressive: bool = True) -> tuple[Validator, Caches]:
    return Validator(ANCHORS, aggressive_nsec=aggressive), Caches()


def test_a_second_never_seen_name_is_nxdomain_from_the_cached_nsec3s() -> None:
    """One NXDOMAIN leaves the NSEC3 matching the apex (closest encloser) and the one
    covering nx's hash and *.nsec3.lab.'s; a second name in that span is NXDOMAIN, secure,
    with those NSEC3s and their RRSIGs for DO clients, asking no one."""
    validator, caches = setup()
    first = resolve("nx.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert first.result.rcode == dns.rcode.NXDOMAIN and first.sent
    assert first.result.security is Security.SECURE
    again = resolve("nx.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert again.sent == [] and _NSEC3 in {r.rdtype for r in again.result.proof}
    walk = resolve(SECOND, "A", SIGNED, validator=validator, caches=caches, now=NOW + 100)
    assert walk.sent == []
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert walk.result.security is Security.SECURE
    nsec3s = [r for r in walk.result.proof if r.rdtype == _NSEC3]
    assert len(nsec3s) == 2  # the apex's match; one span covers both the name and *
    sigs = {r.owner_key for r in walk.result.proof if r.rdtype == _RRSIG}
    assert {r.owner_key for r in nsec3s} <= sigs
    assert walk.result.authority[0].rdtype == _SOA
    # RFC 8198 §5.4, RFC 9077: min(SOA minimum 300, NSEC3 TTL 300), 100 s later
    ttls = {r.ttl for r in (*walk.result.authority, *walk.result.proof)}
    assert ttls == {200}
    later = resolve(
        "n24.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW + 301
    )
    assert later.sent  # the records ran out


def test_names_no_cached_nsec3_proves_absent_are_asked() -> None:
    """A name whose hash falls in a span never seen is asked; a name under the wildcard
    (*.wild exists: its NSEC3 matches) is asked and answered by it, never denied."""
    validator, caches = setup()
    resolve("nx.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    other = resolve("n0.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert other.sent and other.result.rcode == dns.rcode.NXDOMAIN
    resolve("zz.wild.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    wild = resolve("x.wild.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert wild.result.rcode == dns.rcode.NOERROR and wild.result.answer


def test_with_the_setting_off_nsec3_synthesises_nothing() -> None:
    validator, caches = setup(aggressive=False)
    resolve("nx.nsec3.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve(SECOND, "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent and walk.result.rcode == dns.rcode.NXDOMAIN


def test_an_opt_out_zone_is_always_asked() -> None:
    """optout.lab.: its NXDOMAIN is insecure (the next closer is in an opt-out span, RFC
    5155 §9.2) and an opt-out span never denies a name (RFC 8198 §5.2): every new name is
    asked and nothing is kept for synthesis."""
    validator, caches = setup()
    for index, name in enumerate(["nx.optout.lab.", SECOND.replace("nsec3", "optout")]):
        walk = resolve(name, "A", SIGNED, validator=validator, caches=caches, now=NOW + index)
        assert walk.sent, name
        assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert len(caches.nsec) == 0


def test_nsec3_of_too_many_iterations_is_never_kept() -> None:
    """nsec3iter.lab. (151 iterations, RFC 9276 §3.2): insecure, each name asked."""
    validator, caches = setup()
    for name in ["nx.nsec3iter.lab.", "ny.nsec3iter.lab."]:
        walk = resolve(name, "A", SIGNED, validator=validator, caches=caches, now=NOW)
        assert walk.sent and walk.result.security is Security.INSECURE
    assert len(caches.nsec) == 0
