"""What one reply adds to an answer, with the DNSSEC records behind it, and how that is
checked once its zone's keys are known (RFC 4035 §5.3-5.4, RFC 5155 §8): pure functions
for :mod:`resolver.core.validating`, each verification charged to the client query's
:class:`~resolver.limits.ValidationWork`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rcode

from resolver.core.dnssec import denial
from resolver.core.dnssec.keys import KeyEntry
from resolver.core.dnssec.security import SECURE, Verdict, bogus
from resolver.core.dnssec.verify import signatures, verify_rrset
from resolver.limits import ValidationWork
from resolver.model import ExtendedError, Result
from resolver.names import NameKey, is_at_or_below
from resolver.records import Reply, WireRRset, name_from_wire, read_name

_RRSIG, _NSEC, _NSEC3, _SOA = 46, 47, 50, 6
_CNAME, _DNAME, _DS = 5, 39, 43
_DS_TYPE_WIRE = _DS.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Segment:
    """Records one reply contributed to the answer, with the DNSSEC records behind them."""

    rrsets: tuple[WireRRset, ...]
    proof: tuple[WireRRset, ...]
    zone: dns.name.Name
    qname: dns.name.Name
    qtype: int
    rcode: int
    negative: bool


def dnssec_records(
    reply: Reply, zone_key: NameKey, rrsets: Sequence[WireRRset], *, negative: bool
) -> tuple[WireRRset, ...]:
    """The RRSIGs of ``rrsets`` from the reply's answer section and the authority's NSEC
    and NSEC3 records in the zone's bailiwick (the proof of a negative answer, or that a
    wildcard answer's exact name does not exist) with the RRSIGs of them and, for a
    negative answer, of the SOA (RFC 4035 §3.1.1-3.1.3)."""
    owners = {rrset.owner_key for rrset in rrsets}
    found = [r for r in reply.answer if r.rdtype == _RRSIG and r.owner_key in owners]
    if negative or any(r.rdtype in (_NSEC, _NSEC3) for r in reply.authority):
        denials = [
            r
            for r in reply.authority
            if r.rdtype in (_NSEC, _NSEC3) and is_at_or_below(r.owner_key, zone_key)
        ]
        signed = {r.owner_key for r in denials}
        if negative:
            signed |= {r.owner_key for r in reply.authority if r.rdtype == _SOA}
        found.extend(denials)
        found.extend(r for r in reply.authority if r.rdtype == _RRSIG and r.owner_key in signed)
    return tuple(found)


def sigs_at(proof: Sequence[WireRRset], owner_key: NameKey, covered: int) -> list[object]:
    sigs: list[object] = []
    for rrset in proof:
        if rrset.rdtype == _RRSIG and rrset.owner_key == owner_key:
            sigs.extend(signatures(rrset, covered))
    return sigs


def signer_of(proof: Sequence[WireRRset], owner: dns.name.Name) -> dns.name.Name | None:
    """The signer name of the first RRSIG in ``proof`` that may sign ``owner`` (at or above
    it, RFC 4035 §5.3.1): the zone whose keys verify it. Read from the record's wire form
    (the name after 18 bytes of fixed fields, RFC 4034 §3.1), names memoised."""
    for rrset in proof:
        if rrset.rdtype != _RRSIG:
            continue
        for rdata in rrset.rdatas:
            try:
                signer = name_from_wire(read_name(rdata, 18)[0])
            except (ValueError, IndexError):  # a malformed RRSIG names no zone; it won't verify
                continue
            if owner.is_subdomain(signer):
                return signer
    return None


def check_denial(
    zone: dns.name.Name,
    entry: KeyEntry,
    proof: Sequence[WireRRset],
    *,
    qname: dns.name.Name,
    qtype: int,
    rcode: int,
    now: float,
    work: ValidationWork,
) -> Verdict:
    """Verify the NSEC/NSEC3 records of ``proof`` with ``zone``'s keys, then what they
    prove about ``qname``/``qtype`` (RFC 4035 §5.4, RFC 5155 §8)."""
    records = [r for r in proof if r.rdtype in (_NSEC, _NSEC3)]
    if not records:
        return bogus(ExtendedError.NSEC_MISSING, f"no NSEC or NSEC3 for {qname} in {zone}")
    built = []
    for record in records:
        rrset = record.to_rrset()
        sigs = sigs_at(proof, record.owner_key, record.rdtype)
        verdict = verify_rrset(rrset, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
        if not verdict.is_secure:
            return verdict
        built.append(rrset)
    nsec3 = [r for r in built if r.rdtype == _NSEC3]
    if nsec3:
        if rcode == dns.rcode.NXDOMAIN:
            return denial.nsec3_nxdomain(qname, nsec3, zone, work)
        return denial.nsec3_nodata(qname, qtype, nsec3, zone, work)
    if rcode == dns.rcode.NXDOMAIN:
        return denial.nsec_nxdomain(qname, built, zone)
    return denial.nsec_nodata(qname, qtype, built, zone)


def check_segment(
    segment: Segment, entry: KeyEntry, *, now: float, work: ValidationWork
) -> Verdict:
    """Every RRset of ``segment`` verified with its zone's keys; a wildcard expansion
    or a negative answer also needs its NSEC/NSEC3 proof."""
    zone = segment.zone
    has_dname = any(r.rdtype == _DNAME for r in segment.rrsets)
    for rrset in segment.rrsets:
        if has_dname and rrset.rdtype == _CNAME:
            continue  # synthesised from the DNAME (RFC 6672 §3.2), which is verified
        if rrset.rdtype == _RRSIG:
            continue  # an ANY answer's signatures: checked with the RRsets they cover
        sigs = sigs_at(segment.proof, rrset.owner_key, rrset.rdtype)
        built = rrset.to_rrset()
        verdict = verify_rrset(built, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
        if not verdict.is_secure:
            return verdict
        if verdict.wildcard is not None:
            wild = _check_wildcard(segment, entry, rrset.name, verdict.wildcard, now=now, work=work)
            if wild.code is ExtendedError.NSEC_MISSING and not wild.is_secure:
                # The data is there, its wildcard proof is not: EDE 6, as Unbound ("wildcard
                # proof failed"); EDE 12 is for missing data (RFC 8914 §4.13).
                return bogus(ExtendedError.DNSSEC_BOGUS, wild.text)
            if not wild.is_secure:
                return wild
    if segment.negative:
        verdict = check_denial(
            zone,
            entry,
            segment.proof,
            qname=segment.qname,
            qtype=segment.qtype,
            rcode=segment.rcode,
            now=now,
            work=work,
        )
        if segment.qtype == _DS and denial.proves_unsigned_delegation(verdict):
            return SECURE  # the parent answers DS: its signed NODATA is secure (§5.4)
        return verdict
    return SECURE


def _check_wildcard(
    segment: Segment,
    entry: KeyEntry,
    owner: dns.name.Name,
    wildcard: dns.name.Name,
    *,
    now: float,
    work: ValidationWork,
) -> Verdict:
    """RFC 4035 §5.3.4, RFC 5155 §8.8: the exact name must be proved absent."""
    zone = segment.zone
    built = []
    for record in (r for r in segment.proof if r.rdtype in (_NSEC, _NSEC3)):
        rrset = record.to_rrset()
        sigs = sigs_at(segment.proof, record.owner_key, record.rdtype)
        verdict = verify_rrset(rrset, sigs, entry.keys, zone, now=now, work=work)  # type: ignore[arg-type]
        if not verdict.is_secure:
            return verdict
        built.append(rrset)
    nsec3 = [r for r in built if r.rdtype == _NSEC3]
    if nsec3:
        return denial.nsec3_wildcard_answer(owner, wildcard, nsec3, zone, work)
    return denial.nsec_wildcard_answer(owner, wildcard, built, zone)


def rrset_of(result: Result, owner: dns.name.Name, rdtype: int) -> WireRRset | None:
    """The RRset of ``owner`` and ``rdtype`` among the answer of ``result``."""
    for rrset in result.answer:
        if rrset.rdtype == rdtype and rrset.name == owner and len(rrset):
            return rrset
    return None


def parent_zone(fetched_ds: Result, zone: dns.name.Name) -> dns.name.Name:
    """The zone that answered the DS question: the signer of its records, else the zone
    whose servers replied, else the parent name (RFC 4035 §3.1.4.1: DS lives above)."""
    signer = signer_of(fetched_ds.proof, zone)
    if signer is not None and signer != zone:
        return signer
    answered = fetched_ds.zone
    if answered is not None and zone.is_subdomain(answered) and answered != zone:
        return answered
    return zone.parent()


def referral_ds(
    reply: Reply, zone: dns.name.Name, zone_key: NameKey, parent: dns.name.Name
) -> Result | None:
    """The DS RRset of ``zone`` a signed referral from ``parent``'s servers carries in its
    authority section with its RRSIGs (RFC 4035 §3.1.4), as the answer to the DS question
    would be; None when it has no DS or no RRSIG by ``parent`` over it (the DS is then
    asked for, which also brings the NSEC/NSEC3 proof of an unsigned delegation). It is
    verified with ``parent``'s keys as a fetched DS is: a forged one is never trusted."""
    ds = next(
        (r for r in reply.authority if r.rdtype == _DS and r.owner_key == zone_key and len(r)),
        None,
    )
    if ds is None:
        return None
    sigs = tuple(r for r in reply.authority if r.rdtype == _RRSIG and r.owner_key == zone_key)
    covers_ds = any(w[:2] == _DS_TYPE_WIRE for r in sigs for w in r.rdatas)  # RFC 4034 §3.1
    if not covers_ds or signer_of(sigs, zone) != parent:
        return None
    return Result(dns.rcode.NOERROR, (ds,), proof=sigs, zone=parent)
