"""RRSIG verification and DS -> DNSKEY matching (resolver/core/dnssec/verify.py), on keys
and signatures made in the test at a pinned time: each verdict and each EDE code."""

from __future__ import annotations

from typing import cast

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.core.dnssec.security import Security, Verdict
from resolver.core.dnssec.verify import signatures, to_rrset, verify_dnskeys, verify_rrset
from resolver.limits import ValidationLimits, ValidationWork
from resolver.model import ExtendedError
from resolver.records import WireRRset
from tests.unit.dnssec_lab import (
    NOW,
    ZONE,
    Key,
    colliding_keys,
    dnskey_rrset,
    make_key,
    name,
    rrset,
)

WWW = rrset("www.example.", "A", "192.0.2.1", "192.0.2.2")


@pytest.fixture(scope="module")
def zsk() -> Key:
    return make_key(13, flags=256)


@pytest.fixture(scope="module")
def ksk() -> Key:
    return make_key(13, flags=257)


def check(data: dns.rrset.RRset, sigs: list[RRSIG], key: Key, **kw: float) -> Verdict:
    return verify_rrset(
        data, sigs, [key.dnskey], ZONE, now=kw.get("now", NOW), work=ValidationWork()
    )


@pytest.mark.parametrize("algorithm", [8, 10, 13, 14, 15, 16, 5, 7])
def test_a_valid_signature_is_secure_for_each_supported_algorithm(algorithm: int) -> None:
    """RFC 8624 §3.1's algorithms, and RSASHA1 (5, 7) as Debian's Unbound 1.17 validates."""
    key = make_key(algorithm, flags=256)
    work = ValidationWork()
    verdict = verify_rrset(WWW, [key.sign(WWW)], [key.dnskey], ZONE, now=NOW, work=work)
    assert verdict.state is Security.SECURE and verdict.wildcard is None
    assert work.verifications == 1


def test_a_secure_rrset_may_be_kept_no_longer_than_its_signature(zsk: Key) -> None:
    """RFC 4035 §5.3.3: the original TTL and the seconds left to expiration cap the TTL."""
    assert check(WWW, [zsk.sign(WWW)], zsk).ttl == 300  # original TTL
    sig = zsk.sign(WWW, expiration=NOW + 100)
    assert check(WWW, [sig], zsk).ttl == 100


def test_a_changed_record_is_bogus(zsk: Key) -> None:
    forged = rrset("www.example.", "A", "192.0.2.1", "203.0.113.66")
    verdict = check(forged, [zsk.sign(WWW)], zsk)
    assert verdict.state is Security.BOGUS and verdict.code is ExtendedError.DNSSEC_BOGUS
    assert "www.example. A in zone example." in verdict.text


def test_an_expired_signature_is_bogus_with_ede_7(zsk: Key) -> None:
    sig = zsk.sign(WWW, inception=NOW - 7200, expiration=NOW - 3601)  # skew: 3600 s
    verdict = check(WWW, [sig], zsk)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.SIGNATURE_EXPIRED)
    assert check(WWW, [sig], zsk, now=NOW - 3700).is_secure  # the window, not the signature


def test_a_signature_not_yet_valid_is_bogus_with_ede_8(zsk: Key) -> None:
    sig = zsk.sign(WWW, inception=NOW + 3601, expiration=NOW + 7200)  # skew: 3600 s
    verdict = check(WWW, [sig], zsk)
    assert verdict.code is ExtendedError.SIGNATURE_NOT_YET_VALID and verdict.is_bogus


@pytest.mark.parametrize(
    ("inception", "expiration", "secure"),
    [
        (NOW + 300, NOW + 20 * 86400, True),  # 5 minutes early, a 20-day window: skew 1 day
        (NOW + 86400, NOW + 20 * 86400, True),  # at the most skew
        (NOW + 86401, NOW + 20 * 86400, False),
        (NOW + 3500, NOW + 4100, True),  # a 10-minute window: an hour at least
        (NOW + 3601, NOW + 4200, False),
        (NOW - 4300, NOW - 3700, False),
        (NOW - 10 * 86400, NOW - 300, True),  # expired 5 minutes ago: skew 1 day
        (NOW - 10 * 86400, NOW - 86401, False),
        (NOW + 300, NOW - 300, False),  # inception after expiration: no window
    ],
)
def test_signatures_a_little_outside_their_window_are_taken_as_unbound_does(
    zsk: Key, inception: int, expiration: int, secure: bool
) -> None:
    """Unbound 1.17's clock skew: a tenth of the window, between 3600 s and 86400 s
    (val-sig-skew-min/max), before the inception and after the expiration (the cases at
    +5 min, +25 h, +3500 s, -5 min and -3700 s measured on Unbound with the signed lab)."""
    sig = zsk.sign(WWW, inception=inception, expiration=expiration)
    assert check(WWW, [sig], zsk).is_secure is secure


def test_a_signer_other_than_the_zone_is_bogus(zsk: Key) -> None:
    """RFC 4035 §5.3.1: the signer name must be the zone holding the RRset."""
    sig = zsk.sign(WWW, signer=name("www.example."))
    verdict = check(WWW, [sig], zsk)
    assert verdict.is_bogus and "signer" in verdict.text


def test_no_rrsig_is_bogus_with_ede_10(zsk: Key) -> None:
    verdict = check(WWW, [], zsk)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.RRSIGS_MISSING)


def test_no_key_of_the_signatures_tag_is_bogus_with_ede_9(zsk: Key) -> None:
    other = make_key(13, flags=256)
    verdict = check(WWW, [other.sign(WWW)], zsk)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.DNSKEY_MISSING)
    assert str(other.tag) in verdict.text


def test_an_rrsig_of_an_unsupported_algorithm_in_a_signed_zone_is_bogus(zsk: Key) -> None:
    """Only the DS step may downgrade to insecure: an attacker must not turn a signed zone's
    RRset insecure by replacing its RRSIGs with ones of an unknown algorithm."""
    sig = zsk.sign(WWW).replace(algorithm=253)
    assert check(WWW, [sig], zsk).is_bogus


def test_one_good_signature_among_bad_ones_is_enough(zsk: Key) -> None:
    """RFC 6840 §5.11: any valid path is accepted."""
    expired = zsk.sign(WWW, inception=NOW - 7200, expiration=NOW - 1)
    assert check(WWW, [expired, zsk.sign(WWW)], zsk).is_secure


def test_a_wildcard_expansion_reports_its_source(zsk: Key) -> None:
    """RFC 4035 §5.3.2: labels below the owner's count: secure, with the wildcard named so
    the caller can require the proof that the exact name does not exist."""
    source = rrset("*.w.example.", "TXT", '"hello"')
    sig = zsk.sign(source)
    expanded = rrset("a.b.w.example.", "TXT", '"hello"')
    verdict = check(expanded, [sig], zsk)
    assert verdict.is_secure and verdict.wildcard == name("*.w.example.")
    too_many = sig.replace(labels=5)
    assert check(expanded, [too_many], zsk).is_bogus


def test_signatures_picks_the_covered_type_from_a_reply_rrsig_set(zsk: Key) -> None:
    """The reply reader keeps all RRSIGs of an owner in one WireRRset; the covered type is
    read from the first two bytes of each record."""
    txt = rrset("www.example.", "TXT", '"x"')
    both = (zsk.sign(WWW).to_wire(), zsk.sign(txt).to_wire())
    wire = WireRRset(name("www.example."), 46, 300, both)
    assert [s.type_covered for s in signatures(wire, 1)] == [1]
    assert [s.type_covered for s in signatures(wire, 16)] == [16]
    assert signatures(wire, 28) == [] and signatures(None, 1) == []
    data = to_rrset(WireRRset.from_rrset(WWW))
    assert check(data, signatures(wire, 1), zsk).is_secure


# --- DS -> DNSKEY (RFC 4035 §5.2) --------------------------------------------------------


def keyset(ksk: Key, zsk: Key) -> tuple[dns.rrset.RRset, list[RRSIG]]:
    keys = dnskey_rrset(ksk.dnskey, zsk.dnskey)
    return keys, [ksk.sign(keys)]


def dnskeys(ksk: Key, zsk: Key, ds: list[DS]) -> Verdict:
    keys, sigs = keyset(ksk, zsk)
    return verify_dnskeys(keys, sigs, ZONE, now=NOW, work=ValidationWork(), ds=ds)


def test_a_ds_matching_the_signing_key_makes_the_keys_secure(ksk: Key, zsk: Key) -> None:
    assert dnskeys(ksk, zsk, [ksk.ds()]).is_secure
    assert dnskeys(ksk, zsk, [ksk.ds(digest="SHA384")]).is_secure
    assert dnskeys(ksk, zsk, [ksk.ds(digest="SHA1")]).is_secure


def test_a_ds_matching_no_key_is_bogus_with_ede_9(ksk: Key, zsk: Key) -> None:
    stranger = make_key(13)
    verdict = dnskeys(ksk, zsk, [stranger.ds()])
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.DNSKEY_MISSING)


def test_no_ds_at_all_is_bogus_not_insecure(ksk: Key, zsk: Key) -> None:
    """Insecurity is proven by denial (no DS), never by an empty DS list."""
    assert dnskeys(ksk, zsk, []).is_bogus


def test_a_ds_naming_a_key_that_signs_nothing_is_bogus(ksk: Key, zsk: Key) -> None:
    verdict = dnskeys(ksk, zsk, [zsk.ds()])  # the ZSK is in the set but did not sign it
    assert verdict.is_bogus and verdict.code is ExtendedError.DNSSEC_BOGUS


def test_only_unsupported_algorithms_make_the_zone_insecure_with_ede_1(ksk: Key, zsk: Key) -> None:
    """RFC 6840 §5.2, RFC 4035 §5.2: a zone signed only with algorithms we do not
    implement (DSA, 3, is MUST NOT in RFC 8624 §3.1) is insecure, never bogus."""
    dsa = cast(DS, ksk.ds().replace(algorithm=3))
    verdict = dnskeys(ksk, zsk, [dsa])
    assert (verdict.state, verdict.code) == (
        Security.INSECURE,
        ExtendedError.UNSUPPORTED_DNSKEY_ALGORITHM,
    )


def test_only_unsupported_digests_make_the_zone_insecure_with_ede_2(ksk: Key, zsk: Key) -> None:
    """RFC 4509 §3: DS records of digest types we do not implement are ignored."""
    gost = cast(DS, dns.rdata.from_text("IN", "DS", f"{ksk.tag} 13 3 {'ab' * 32}"))
    verdict = dnskeys(ksk, zsk, [gost])
    assert (verdict.state, verdict.code) == (
        Security.INSECURE,
        ExtendedError.UNSUPPORTED_DS_DIGEST_TYPE,
    )
    assert dnskeys(ksk, zsk, [gost, ksk.ds()]).is_secure  # one usable DS: validated


def test_sha256_is_preferred_over_sha1(ksk: Key, zsk: Key) -> None:
    """RFC 4509 §3: with SHA-256 DS present, SHA-1 DS are ignored, so a matching SHA-1 DS
    beside a SHA-256 one that matches nothing does not make the keys secure."""
    stranger = make_key(13)
    assert dnskeys(ksk, zsk, [ksk.ds(digest="SHA1"), ksk.ds()]).is_secure
    verdict = dnskeys(ksk, zsk, [ksk.ds(digest="SHA1"), stranger.ds()])
    assert verdict.code is ExtendedError.DNSKEY_MISSING


def test_a_trusted_key_anchors_the_keys_without_a_ds(ksk: Key, zsk: Key) -> None:
    keys, sigs = keyset(ksk, zsk)
    work = ValidationWork()
    assert verify_dnskeys(keys, sigs, ZONE, now=NOW, work=work, trusted_keys=[ksk.dnskey]).is_secure
    other = make_key(13)
    verdict = verify_dnskeys(keys, sigs, ZONE, now=NOW, work=work, trusted_keys=[other.dnskey])
    assert verdict.code is ExtendedError.DNSKEY_MISSING


# --- KeyTrap (CVE-2023-50387) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_count", "limit"), [(50, "max_key_tag_collisions"), (3, "max_verifications_per_rrset")]
)
def test_keytrap_colliding_keys_and_many_signatures_are_bounded(key_count: int, limit: str) -> None:
    """Many DNSKEYs sharing one key tag and 50 RRSIGs naming it: RFC 4035 §5.3.1 would try
    every pair (50 x 50 = 2,500 verifications). With 50 colliding keys the first RRSIG
    stops at the key-tag collision limit; with 3, the RRSIGs stop at the per-RRset limit.
    Either way the verdict is bogus with EDE 6 and the verifications are counted."""
    tag = 4242
    keys = colliding_keys(key_count, tag)
    template = make_key(13, flags=256).sign(WWW)
    sigs = [
        cast(RRSIG, template.replace(key_tag=tag, signature=bytes([i]) * 64)) for i in range(50)
    ]
    work = ValidationWork()
    verdict = verify_rrset(WWW, sigs, keys, ZONE, now=NOW, work=work)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.DNSSEC_BOGUS)
    assert "limit" in verdict.text
    assert work.verifications == getattr(work.limits, limit)


def test_the_per_query_verification_budget_spans_rrsets(zsk: Key) -> None:
    """The budget is the client query's: once spent, even a valid RRset is not verified."""
    work = ValidationWork(ValidationLimits(max_verifications=3))
    sig = zsk.sign(WWW)
    verdicts = [verify_rrset(WWW, [sig], [zsk.dnskey], ZONE, now=NOW, work=work) for _ in range(4)]
    assert [v.state for v in verdicts] == [Security.SECURE] * 3 + [Security.BOGUS]
    assert work.verifications == 3


def test_key_tag_collisions_tried_are_bounded() -> None:
    """Beyond ``max_key_tag_collisions`` keys of one tag the signature is not tried
    further: bogus, with fewer verifications than keys."""
    tag = 777
    keys = colliding_keys(10, tag)
    sig = cast(RRSIG, make_key(13, flags=256).sign(WWW).replace(key_tag=tag))
    work = ValidationWork(ValidationLimits(max_verifications_per_rrset=100))
    verdict = verify_rrset(WWW, [sig], keys, ZONE, now=NOW, work=work)
    assert verdict.is_bogus and "share key tag" in verdict.text
    assert work.verifications == work.limits.max_key_tag_collisions
