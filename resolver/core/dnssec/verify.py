"""RRSIG verification and DS -> DNSKEY matching (RFC 4035 §5.2-5.3, RFC 6840 §5), through
dnspython's ``dns.dnssec`` and the ``cryptography`` package: no cryptography of our own.

What this module checks itself, before :func:`.signature.verifies` checks the signature
with the key (each key loaded once): the signer name is the zone that
holds the RRset (RFC 4035 §5.3.1), the labels field (a value below the owner's label count
means wildcard expansion, RFC 4035 §5.3.2, reported in the verdict), the validity window
against ``now`` (RFC 4034 §3.1.5), key tag, algorithm, zone key flag and protocol
(RFC 4034 §2.1), and how much work a reply may buy (KeyTrap, :mod:`resolver.limits`).

Algorithms (RFC 8624 §3.1): RSASHA256, RSASHA512, ECDSAP256SHA256, ECDSAP384SHA384, ED25519,
ED448, and the SHA-1 algorithms RSASHA1 and RSASHA1-NSEC3-SHA1 because Debian's Unbound 1.17
validates them: Debian's OpenSSL verifies SHA-1, and Unbound treats SHA-1 as unsupported
(insecure) only when the crypto library refuses it at run time, as RHEL 9's policy does
(NLnetLabs/unbound#656, PR #660, in 1.16.1). RFC 9905 §2 now asks operators to treat them
as unsupported: dropping 5 and 7 from :data:`SUPPORTED_ALGORITHMS` does exactly that. DSA
and the rest are unsupported (RFC 8624: MUST NOT validate). Digests (RFC 4509, RFC 6605):
SHA-1, SHA-256, SHA-384; GOST is unsupported. Any one valid signature suffices
(RFC 6840 §5.11; Unbound's default ``harden-algo-downgrade: no``).

Input types: the machine holds :class:`~resolver.records.WireRRset`; :func:`to_rrset` and
:func:`signatures` build dnspython values from it (dnspython does the crypto anyway). Cost
(timeit on the shared lab machine): about 13 µs per record plus 13 µs per RRset, 25 µs per
RRSIG, against 130-180 µs for one verification through ``dns.dnssec.validate_rrsig``
(RSASHA256-2048, ECDSA P-256, Ed25519; ~115 µs for P-256 with the key loaded once): building
is about a fifth of verifying, and only RRsets that are verified are built.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import cast

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.core.dnssec import signature
from resolver.core.dnssec.security import (
    Security,
    Verdict,
    bogus,
    insecure,
    out_of_work,
)
from resolver.limits import ValidationWork
from resolver.model import ExtendedError
from resolver.records import WireRRset, name_from_wire, read_name

TYPE_RRSIG = dns.rdatatype.RRSIG
_IN = dns.rdataclass.IN
ZONE_KEY_FLAG = 0x0100
REVOKE_FLAG = 0x0080

SUPPORTED_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
"""RSASHA1, RSASHA1-NSEC3-SHA1, RSASHA256, RSASHA512, ECDSAP256SHA256, ECDSAP384SHA384,
ED25519, ED448 (RFC 8624 §3.1; the SHA-1 ones as Debian's Unbound 1.17)."""

DIGESTS = {1: "SHA1", 2: "SHA256", 4: "SHA384"}
"""DS digest types we compute (RFC 3658, RFC 4509, RFC 6605), by number."""

_ANY = dns.dnssec.allow_all_policy  # what is supported is decided here, not by dnspython


def to_rrset(rrset: WireRRset) -> dns.rrset.RRset:
    """The dnspython RRset for a WireRRset (one ``from_wire`` per record)."""
    return rrset.to_rrset()


def signatures(rrsigs: WireRRset | None, covered: int) -> list[RRSIG]:
    """The RRSIG records of ``rrsigs`` (all the RRSIGs of one owner, as the reply reader
    keeps them) that cover ``covered``: the type is the record's first two bytes
    (RFC 4034 §3.1), read before any record is built."""
    if rrsigs is None:
        return []
    high, low = covered >> 8, covered & 0xFF
    return [
        _rrsig(wire)
        for wire in rrsigs.rdatas
        if len(wire) > 2 and wire[0] == high and wire[1] == low
    ]


_RRSIG_FIELDS = struct.Struct("!HBBIIIH")
"""Type covered, algorithm, labels, original TTL, expiration, inception, key tag
(RFC 4034 §3.1), before the signer's name."""
_MAKE_RRSIG = cast("Callable[..., RRSIG]", RRSIG)  # dnspython's __init__ is untyped


def _rrsig(wire: bytes) -> RRSIG:
    """One RRSIG record from its uncompressed wire form, its fields read here and the signer
    name memoised (half the cost of dnspython's generic ``from_wire``); anything unusual
    goes through ``from_wire``, which says what is wrong with it."""
    try:
        fields = _RRSIG_FIELDS.unpack_from(wire, 0)
        signer, end = read_name(wire, _RRSIG_FIELDS.size)
        return _MAKE_RRSIG(_IN, TYPE_RRSIG, *fields, name_from_wire(signer), wire[end:])
    except (ValueError, struct.error, dns.exception.DNSException):
        return cast(RRSIG, dns.rdata.from_wire(_IN, TYPE_RRSIG, wire, 0, len(wire)))


def _label_count(name: dns.name.Name) -> int:
    """The RRSIG labels value of an owner: labels without the root and a leading ``*``
    (RFC 4034 §3.1.3)."""
    count = len(name.labels) - 1
    return count - 1 if name.labels and name.labels[0] == b"*" else count


def _by_tag(keys: Sequence[DNSKEY]) -> dict[tuple[int, int], list[DNSKEY]]:
    """Zone keys of protocol 3 (RFC 4034 §2.1.1-2.1.2) by algorithm and key tag, each tag
    computed once however many RRSIGs name it (a KeyTrap reply carries many)."""
    found: dict[tuple[int, int], list[DNSKEY]] = {}
    for key in keys:
        if key.flags & ZONE_KEY_FLAG and key.protocol == 3:
            found.setdefault((key.algorithm, signature.key_tag(key)), []).append(key)
    return found


def _candidates(keys: dict[tuple[int, int], list[DNSKEY]], sig: RRSIG) -> list[DNSKEY]:
    """Keys that may have made ``sig``: same algorithm and key tag, not revoked unless it
    signs the DNSKEY RRset (RFC 5011 §2.1)."""
    return [
        key
        for key in keys.get((sig.algorithm, sig.key_tag), ())
        if not key.flags & REVOKE_FLAG or sig.type_covered == dns.rdatatype.DNSKEY
    ]


class _What:
    """``OWNER TYPE in zone ZONE``, the RRset a failure's text names: made into text only
    when a failure is told (making it costs about as much as the checks around it)."""

    __slots__ = ("rrset", "zone")

    def __init__(self, rrset: dns.rrset.RRset, zone: dns.name.Name) -> None:
        self.rrset, self.zone = rrset, zone

    def __str__(self) -> str:
        return f"{self.rrset.name} {self.rrset.rdtype.name} in zone {self.zone}"


SKEW_MIN_S = 3600
SKEW_MAX_S = 86400


def clock_skew(sig: RRSIG) -> int:
    """Seconds a signature is still taken before its inception or after its expiration:
    a tenth of its validity window, at least an hour and at most a day (Unbound's
    ``val-sig-skew-min``/``val-sig-skew-max`` defaults, measured on 1.17: signatures 5
    minutes early or late are taken, 25 hours early or an hour late on a 10-minute window
    are not). Resolver and signer clocks differ (RFC 6781 §4.4.2.2)."""
    return min(max((sig.expiration - sig.inception) // 10, SKEW_MIN_S), SKEW_MAX_S)


# The EDE a failing RRset gets: the most telling problem seen wins (a signature that does
# not verify says more than a missing key).
_PRIORITY = (
    ExtendedError.DNSSEC_BOGUS,
    ExtendedError.SIGNATURE_EXPIRED,
    ExtendedError.SIGNATURE_NOT_YET_VALID,
    ExtendedError.DNSKEY_MISSING,
)


def verify_rrset(
    rrset: dns.rrset.RRset,
    sigs: Sequence[RRSIG],
    keys: Sequence[DNSKEY],
    zone: dns.name.Name,
    *,
    now: float,
    work: ValidationWork,
) -> Verdict:
    """Whether one of ``sigs`` made by one of ``keys`` (the zone's trusted DNSKEYs) verifies
    ``rrset`` of ``zone`` at ``now`` (RFC 4035 §5.3). One valid signature suffices
    (RFC 6840 §5.11). Secure, possibly with the wildcard it was expanded from; else bogus
    with EDE 10 (no RRSIG), 7/8 (validity window), 9 (no key of that tag) or 6."""
    what = _What(rrset, zone)  # text only for a failure: it costs as much as a check
    if not sigs:
        return bogus(ExtendedError.RRSIGS_MISSING, f"no RRSIG for {what}")
    owner_labels = _label_count(rrset.name)
    tagged = _by_tag(keys)
    problems: dict[ExtendedError, str] = {}
    tried = 0
    limits = work.limits
    for sig in sigs:
        if sig.type_covered != rrset.rdtype:  # the caller's mistake; costs no verification
            problems.setdefault(
                ExtendedError.DNSSEC_BOGUS, f"RRSIG covers another type than {what}"
            )
            continue
        if sig.signer != zone:  # RFC 4035 §5.3.1
            problems.setdefault(ExtendedError.DNSSEC_BOGUS, f"RRSIG signer {sig.signer} of {what}")
            continue
        if sig.labels > owner_labels:  # RFC 4035 §5.3.1
            problems.setdefault(ExtendedError.DNSSEC_BOGUS, f"RRSIG labels field of {what}")
            continue
        if sig.algorithm not in SUPPORTED_ALGORITHMS:
            problems.setdefault(
                ExtendedError.DNSSEC_BOGUS, f"RRSIG algorithm {sig.algorithm} for {what}"
            )
            continue
        skew = clock_skew(sig)
        if sig.inception > sig.expiration:  # no window at all (RFC 4035 §5.3.1)
            problems.setdefault(ExtendedError.DNSSEC_BOGUS, f"RRSIG for {what} has no window")
            continue
        if now > sig.expiration + skew:
            problems.setdefault(ExtendedError.SIGNATURE_EXPIRED, f"RRSIG for {what} expired")
            continue
        if now < sig.inception - skew:
            problems.setdefault(
                ExtendedError.SIGNATURE_NOT_YET_VALID, f"RRSIG for {what} not yet valid"
            )
            continue
        candidates = _candidates(tagged, sig)
        if not candidates:
            problems.setdefault(
                ExtendedError.DNSKEY_MISSING,
                f"no DNSKEY with key tag {sig.key_tag} for {what}",
            )
            continue
        for key in candidates[: limits.max_key_tag_collisions]:
            if tried >= limits.max_verifications_per_rrset or not work.spend_verification():
                return out_of_work(zone, f"{tried} signature verifications for {what}")
            tried += 1
            within = min(max(now, sig.inception), sig.expiration)  # the skew, for dnspython
            if not signature.verifies(rrset, sig, key, zone, within):
                problems.setdefault(
                    ExtendedError.DNSSEC_BOGUS,
                    f"signature by key tag {sig.key_tag} does not verify {what}",
                )
                continue
            ttl = max(0, min(sig.original_ttl, int(sig.expiration - now)))  # RFC 4035 §5.3.3
            source = None
            if sig.labels < owner_labels:  # RFC 4035 §5.3.2: expanded from a wildcard
                source = dns.name.Name((b"*", *rrset.name.labels[-(sig.labels + 1) :]))
            return Verdict(Security.SECURE, wildcard=source, ttl=ttl)
        if len(candidates) > limits.max_key_tag_collisions:
            return out_of_work(zone, f"{len(candidates)} DNSKEYs share key tag {sig.key_tag}")
    code = next(code for code in _PRIORITY if code in problems)
    return bogus(code, problems[code])


def ds_usable(ds: DS) -> bool:
    """Whether this validator can use a DS record: algorithm and digest type supported."""
    return ds.algorithm in SUPPORTED_ALGORITHMS and ds.digest_type in DIGESTS


def _names_a_non_zone_key(keys: Sequence[DNSKEY], record: DS, zone: dns.name.Name) -> bool:
    """Whether ``record`` names one of ``keys`` that lacks the Zone Key bit (RFC 4034
    §2.1.1): the zone is bogus with EDE 11 then (RFC 8914 §4.12), as Unbound 1.17 says
    "dnskey without ZSK flag". Only reached when no zone key matched, so costs nothing on
    a good chain."""
    digest = DIGESTS[record.digest_type]
    return any(
        not key.flags & ZONE_KEY_FLAG
        and key.algorithm == record.algorithm
        and signature.key_tag(key) == record.key_tag
        and dns.dnssec.make_ds(zone, key, digest, policy=_ANY, validating=True) == record
        for key in keys
    )


def verify_dnskeys(
    dnskeys: dns.rrset.RRset,
    sigs: Sequence[RRSIG],
    zone: dns.name.Name,
    *,
    now: float,
    work: ValidationWork,
    ds: Sequence[DS] = (),
    trusted_keys: Sequence[DNSKEY] = (),
) -> Verdict:
    """Whether the DNSKEY RRset of ``zone`` is secure (RFC 4035 §5.2): a key that a
    secure ``ds`` record (or a trust anchor key in ``trusted_keys``) names signs the set.

    Only DS records of supported algorithms and digests count; when none is left the zone
    is insecure (RFC 4035 §5.2, RFC 6840 §5.2: EDE 1; RFC 4509 §3: EDE 2). Of the usable
    digests only the strongest is used (SHA-384 over SHA-256 over SHA-1; RFC 4509 §3, as
    Unbound's ``val_favorite_ds_algo``), so a forged SHA-1 DS cannot stand beside a SHA-256
    one. No key matching: bogus, EDE 9 (as Unbound, "no keys have a DS"), or EDE 11 when the
    DS names a key without the Zone Key bit. Neither DS nor
    anchor given: bogus (an unsigned delegation is proven by :mod:`.denial`, not here)."""
    if not ds and not trusted_keys:  # a caller's mistake must not read as "insecure"
        return bogus(ExtendedError.DNSSEC_BOGUS, f"no DS and no trust anchor for {zone}")
    keys = [cast(DNSKEY, key) for key in dnskeys]
    anchors = [key for key in trusted_keys if key.algorithm in SUPPORTED_ALGORITHMS]
    usable = [record for record in ds if ds_usable(record)]
    if not usable and not anchors:
        if any(record.algorithm in SUPPORTED_ALGORITHMS for record in ds):
            return insecure(
                f"DS digest types of {zone} are unsupported",
                ExtendedError.UNSUPPORTED_DS_DIGEST_TYPE,
            )
        return insecure(
            f"DNSSEC algorithms of {zone} are unsupported",
            ExtendedError.UNSUPPORTED_DNSKEY_ALGORITHM,
        )
    matched = [key for key in keys if key in anchors]
    crowded = 0
    if usable:
        tagged = _by_tag(keys)
        favourite = max(record.digest_type for record in usable)
        for record in usable:
            if record.digest_type != favourite:
                continue
            candidates = tagged.get((record.algorithm, record.key_tag), [])
            limit = work.limits.max_key_tag_collisions
            crowded = max(crowded, len(candidates) if len(candidates) > limit else 0)
            for key in candidates[:limit]:
                made = dns.dnssec.make_ds(
                    zone, key, DIGESTS[favourite], policy=_ANY, validating=True
                )
                if made == record and key not in matched:
                    matched.append(key)
    if not matched and crowded:
        # Not "no key matches": more keys share the DS's tag than we try (KeyTrap). Bogus
        # for work, EDE 6, as Unbound 1.17 answers keytrap.lab.
        return out_of_work(zone, f"{crowded} DNSKEYs share the key tag of its DS")
    if not matched:
        if any(_names_a_non_zone_key(keys, record, zone) for record in usable):
            return bogus(  # RFC 4034 §2.1.1: not a zone key, so it cannot verify RRSIGs
                ExtendedError.NO_ZONE_KEY_BIT_SET,
                f"the DNSKEY its DS names has no Zone Key bit in {zone}",
            )
        return bogus(ExtendedError.DNSKEY_MISSING, f"no DNSKEY of {zone} matches its DS")
    verdict = verify_rrset(dnskeys, sigs, matched, zone, now=now, work=work)
    if verdict.state is Security.BOGUS and verdict.code is ExtendedError.DNSKEY_MISSING:
        # The DS names a key that is present but signs nothing: the chain is broken there.
        return bogus(ExtendedError.DNSSEC_BOGUS, f"no DS-named DNSKEY signs {zone} DNSKEY")
    return verdict
