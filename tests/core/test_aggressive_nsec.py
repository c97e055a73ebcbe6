"""Validated negative answers are kept with their state and proof, and cached secure NSECs
answer other names they cover (RFC 8198, issue 12 item 5), in virtual time on the signed
lab's secure.lab. (NSEC chain: apex -> deep.ent -> txt -> *.wild -> www -> apex, TTL 300,
signatures valid until 2036-01-01)."""

from __future__ import annotations

import datetime

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.core.events import Failure
from resolver.model import ExtendedError, Security
from tests.core.harness import Responder, resolve
from tests.core.test_validation import ANCHORS, NOW, SIGNED

_NSEC, _RRSIG, _SOA = 47, 46, 6
EXPIRES = datetime.datetime(2036, 1, 1, tzinfo=datetime.UTC).timestamp()


def setup(*, aggressive: bool = True) -> tuple[Validator, Caches]:
    return Validator(ANCHORS, aggressive_nsec=aggressive), Caches()


def test_a_validated_negative_answer_is_answered_from_the_cache_with_its_proof() -> None:
    """Item 1: the same NXDOMAIN and NODATA again cost no upstream query, keep their state
    (AD) and carry the NSEC proof for DO clients, even with aggressive use off."""
    validator, caches = setup(aggressive=False)
    for name, qtype, rcode in [
        ("nx.secure.lab.", "A", dns.rcode.NXDOMAIN),
        ("www.secure.lab.", "MX", dns.rcode.NOERROR),
    ]:
        first = resolve(name, qtype, SIGNED, validator=validator, caches=caches, now=NOW)
        assert first.result.rcode == rcode and first.result.security is Security.SECURE
        again = resolve(name, qtype, SIGNED, validator=validator, caches=caches, now=NOW + 10)
        assert again.sent == []
        assert again.result.rcode == rcode
        assert again.result.security is Security.SECURE
        assert {_NSEC, _RRSIG} <= {r.rdtype for r in again.result.proof}
        assert again.result.authority[0].ttl <= 291  # stored ~1 s after NOW


def test_an_insecure_negative_answer_is_kept_insecure() -> None:
    validator, caches = setup()
    resolve("nx.example.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    again = resolve("nx.example.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert again.sent == []
    assert again.result.rcode == dns.rcode.NXDOMAIN
    assert again.result.security is Security.INSECURE


def test_other_names_covered_by_a_cached_nsec_get_nxdomain_without_asking() -> None:
    """RFC 8198 §5.1: after one NXDOMAIN, other names between deep.ent and txt (and before
    deep.ent: the apex NSEC came as the wildcard proof) are NXDOMAIN, secure, with the
    covering NSEC and the wildcard's in the proof, and no upstream query."""
    validator, caches = setup()
    first = resolve("nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert first.result.rcode == dns.rcode.NXDOMAIN and first.sent
    for index, name in enumerate(["rnd-1.secure.lab.", "qq.secure.lab.", "abc.secure.lab."]):
        walk = resolve(name, "AAAA", SIGNED, validator=validator, caches=caches, now=NOW + index)
        assert walk.sent == [], name
        assert walk.result.rcode == dns.rcode.NXDOMAIN
        assert walk.result.security is Security.SECURE
        owners = {str(r.name) for r in walk.result.proof if r.rdtype == _NSEC}
        assert "secure.lab." in owners  # the wildcard *.secure.lab. proof
        assert any(r.rdtype == _RRSIG and r.owner_key == r.owner_key for r in walk.result.proof)
    # RFC 8020 through the same chain: a name below a name proved absent
    below = resolve("a.b.nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert below.sent == [] and below.result.rcode == dns.rcode.NXDOMAIN


def test_names_the_cached_nsecs_do_not_cover_are_asked() -> None:
    validator, caches = setup()
    resolve("nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve("zzz.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent  # after www: that NSEC was never seen
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    exists = resolve("txt.secure.lab.", "TXT", SIGNED, validator=validator, caches=caches, now=NOW)
    assert exists.result.rcode == dns.rcode.NOERROR and exists.result.answer


@pytest.mark.parametrize(("zone", "rdtype"), [("secure.lab.", _NSEC), ("nsec3.lab.", 50)])
def test_nodata_for_another_type_is_synthesised_from_the_matching_nsec(
    zone: str, rdtype: int
) -> None:
    """RFC 8198 §5.2: the apex NSEC (NS SOA RRSIG NSEC DNSKEY), or its NSEC3 (... NSEC3PARAM)
    that came as the closest encloser's match, proves the apex has no MX."""
    validator, caches = setup()
    resolve(f"nx.{zone}", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve(zone, "MX", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent == []
    assert walk.result.rcode == dns.rcode.NOERROR and walk.result.answer == ()
    assert walk.result.security is Security.SECURE
    assert walk.result.authority[0].rdtype == _SOA
    assert rdtype in {r.rdtype for r in walk.result.proof}
    listed = resolve(zone, "SOA", SIGNED, validator=validator, caches=caches, now=NOW)
    assert listed.result.answer  # a type the NSEC lists is never denied


def test_with_the_setting_off_nothing_is_synthesised() -> None:
    validator, caches = setup(aggressive=False)
    resolve("nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve("qq.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent
    assert walk.result.rcode == dns.rcode.NXDOMAIN


def test_insecure_nsecs_never_synthesise() -> None:
    """example.lab. is an unsigned delegation: its negative answers are insecure, each
    new name asked."""
    validator, caches = setup()
    resolve("nx.example.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve("ny.example.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent
    assert len(caches.nsec) == 0


def broken_nsec_signatures(responder: Responder) -> Responder:
    """secure.lab.'s NSEC RRSIGs with one byte of each signature flipped: bogus proofs."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        reply = responder(address, query)
        if isinstance(reply, Failure):
            return reply
        for rrset in reply.authority:
            if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == dns.rdatatype.NSEC:
                rdatas = [r.replace(signature=bytes([r.signature[0] ^ 1]) + r.signature[1:])
                          for r in rrset]  # fmt: skip
                rrset.clear()  # type: ignore[no-untyped-call]
                for rdata in rdatas:
                    rrset.add(rdata)
        return reply

    return respond


def test_bogus_nsecs_never_synthesise() -> None:
    validator, caches = setup()
    broken = broken_nsec_signatures(SIGNED)
    first = resolve("nx.secure.lab.", "A", broken, validator=validator, caches=caches, now=NOW)
    assert first.result.security is Security.BOGUS
    assert first.result.error_code is ExtendedError.DNSSEC_BOGUS
    walk = resolve("qq.secure.lab.", "A", broken, validator=validator, caches=caches, now=NOW)
    assert walk.sent and walk.result.security is Security.BOGUS
    assert len(caches.nsec) == 0


def test_synthesised_ttls_follow_rfc_9077_and_run_out() -> None:
    """The answer's TTL is what is left of min(NSEC TTL, RRSIG original TTL, SOA minimum)
    = 300 s; after that the name is asked again."""
    validator, caches = setup()
    resolve("nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve("qq.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW + 100)
    assert walk.sent == []
    ttls = {r.ttl for r in (*walk.result.authority, *walk.result.proof)}
    assert max(ttls) <= 200 and min(ttls) >= 199
    later = resolve(
        "qr.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW + 301
    )
    assert later.sent


def test_a_validated_rrset_lives_no_longer_than_its_signature() -> None:
    """RFC 4035 §5.3.3: www.secure.lab. A (TTL 3600) validated 100 s before its RRSIG
    expires is answered from the cache for those 100 s only; NSECs likewise."""
    validator, caches = setup()
    now = EXPIRES - 100
    first = resolve("www.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=now)
    assert first.result.security is Security.SECURE
    hit = resolve("www.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=now + 50)
    assert hit.sent == []
    assert hit.result.answer[0].ttl <= 50
    resolve("nx.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=now + 50)
    after = now + 100 + 86401  # past the expiration and a day of clock skew: no longer valid
    walk = resolve("www.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=after)
    assert walk.sent
    assert walk.result.error_code is ExtendedError.SIGNATURE_EXPIRED
    nx = resolve("qq.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=after)
    assert nx.sent


def test_a_name_a_cached_wildcard_nsec_matches_is_asked_not_denied() -> None:
    """wz.secure.lab.'s NXDOMAIN brings the NSEC at *.wild; x.wild.secure.lab. falls in its
    span too, but its closest encloser's wildcard exists: asked, and answered by it."""
    validator, caches = setup()
    resolve("wz.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    walk = resolve("x.wild.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert walk.sent
    assert walk.result.rcode == dns.rcode.NOERROR and walk.result.answer
    ent = resolve("ent.secure.lab.", "A", SIGNED, validator=validator, caches=caches, now=NOW)
    assert ent.result.rcode == dns.rcode.NOERROR  # an empty non-terminal, never NXDOMAIN
