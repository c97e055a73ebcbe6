"""Aggressive use of the DNSSEC-validated cache (RFC 8198), sans-IO.

A validated negative answer leaves its secure NSEC records in the
:class:`~resolver.cache.nsec.NsecCache`; a later question for another name they cover is
answered from them without asking: NXDOMAIN when an NSEC covers the name and one covers
the wildcard at its closest encloser (RFC 8198 §5.1, RFC 4035 §5.4), NODATA when the NSEC
at the name lacks the type and CNAME (§5.2). The same checks as for a reply
(:mod:`.denial`) decide, on records whose signatures were verified when they were cached.
The answer's TTL is the least left of the NSECs and the SOA (RFC 8198 §5.4, RFC 9077),
which were stored with min(TTL, RRSIG original TTL, SOA minimum).

NSEC only, as Unbound (``aggressive-nsec`` synthesises from NSEC; its NSEC3 records are
not used aggressively): NSEC3's hashed owners would need a hash per candidate name and
opt-out spans prove nothing about insecure delegations. DS is never synthesised (it lives
on the parent side, where a cached child chain says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import dns.name
import dns.rcode
from dns.rdtypes.ANY.NSEC import NSEC

from resolver.cache.nsec import CachedNsec, NsecCache
from resolver.core.dnssec import denial
from resolver.names import NameKey
from resolver.records import WireRRset

_RRSIG, _NSEC, _SOA, _DS = 46, 47, 6, 43
_EXPIRATION = slice(8, 12)
_ORIGINAL_TTL = slice(4, 8)


@dataclass(frozen=True, slots=True)
class Synthesised:
    """A negative answer made from cached NSECs: rcode, the SOA, and the proof (NSECs,
    their RRSIGs and the SOA's) for clients that set DO."""

    rcode: dns.rcode.Rcode
    soa: WireRRset
    proof: tuple[WireRRset, ...]


def sig_expiration(rrsigs: WireRRset | tuple[bytes, ...]) -> float | None:
    """The earliest signature expiration (seconds since the epoch) among RRSIG rdatas:
    no validated record outlives its signature (RFC 4035 §5.3.3)."""
    rdatas = rrsigs.rdatas if isinstance(rrsigs, WireRRset) else rrsigs
    times = [int.from_bytes(rdata[_EXPIRATION], "big") for rdata in rdatas if len(rdata) >= 18]
    return float(min(times)) if times else None


def _original_ttl(rrsigs: WireRRset) -> int | None:
    ttls = [int.from_bytes(rdata[_ORIGINAL_TTL], "big") for rdata in rrsigs.rdatas]
    return min(ttls) if ttls else None


def _sigs_for(proof: tuple[WireRRset, ...], owner_key: NameKey, covered: int) -> WireRRset | None:
    high, low = covered >> 8, covered & 0xFF
    rdatas = tuple(
        rdata
        for rrset in proof
        if rrset.rdtype == _RRSIG and rrset.owner_key == owner_key
        for rdata in rrset.rdatas
        if rdata[0] == high and rdata[1] == low
    )
    if not rdatas:
        return None
    first = next(r for r in proof if r.rdtype == _RRSIG and r.owner_key == owner_key)
    return WireRRset(None, _RRSIG, first.ttl, rdatas, owner_key, owner=first.owner_wire)


def keep_nsecs(
    cache: NsecCache,
    zone: dns.name.Name,
    soa: WireRRset,
    proof: tuple[WireRRset, ...],
    now: float,
) -> None:
    """Put the NSEC records of a SECURE negative answer of ``zone`` into ``cache``, each
    for min(its TTL, its RRSIG's original TTL, the SOA minimum), capped at the signature's
    expiration (RFC 9077 §3-4, RFC 4035 §5.3.3)."""
    soa_sigs = _sigs_for(proof, soa.owner_key, _SOA)
    if soa_sigs is None or not soa.rdatas:
        return
    minimum = int.from_bytes(soa.rdatas[0][-4:], "big")
    soa_until = now + min(soa.ttl, minimum)
    soa_expiry = sig_expiration(soa_sigs)
    if soa_expiry is not None:
        soa_until = min(soa_until, soa_expiry)
    for nsec in proof:
        if nsec.rdtype != _NSEC or not nsec.name.is_subdomain(zone):
            continue
        sigs = _sigs_for(proof, nsec.owner_key, _NSEC)
        if sigs is None:
            continue
        ttl = min(nsec.ttl, minimum, soa.ttl, _original_ttl(sigs) or nsec.ttl)
        until = now + ttl
        expiry = sig_expiration(sigs)
        if expiry is not None:
            until = min(until, expiry)
        if until > now:
            cache.put(zone, nsec, sigs, until, soa=soa, soa_sigs=soa_sigs, soa_expires_at=soa_until)


def synthesise(
    cache: NsecCache, qname: dns.name.Name, qtype: int, now: float
) -> Synthesised | None:
    """NXDOMAIN or NODATA for ``qname``/``qtype`` from the cached secure NSECs, or None
    when they do not prove it (then the question is asked)."""
    if qtype == _DS:
        return None
    found = cache.zone_of(qname, now)
    if found is None:
        return None
    zone, entry = found
    first = cache.at_or_before(entry, qname, now)
    if first is None:
        return None
    used: list[CachedNsec] = [first]
    built = first.nsec.to_rrset()
    if first.nsec.name == qname:
        if not denial.nsec_nodata(qname, qtype, [built], zone).is_secure:
            return None
        rcode = dns.rcode.NOERROR
    else:
        record = cast(NSEC, built[0])
        if not denial.nsec_covers(built.name, record, qname):
            return None
        if record.next.is_subdomain(qname):
            return None  # an empty non-terminal: left to the servers
        encloser = denial.nsec_encloser(qname, built.name, record)
        wildcard = dns.name.Name((b"*", *encloser.labels))
        second = cache.at_or_before(entry, wildcard, now)
        if second is None:
            return None
        rrsets = [built]
        if second is not first:
            used.append(second)
            rrsets.append(second.nsec.to_rrset())
        if not denial.nsec_nxdomain(qname, rrsets, zone).is_secure:
            return None
        rcode = dns.rcode.NXDOMAIN
    until = min([entry.soa_expires_at, *(nsec.expires_at for nsec in used)])
    ttl = int(until - now)
    if ttl <= 0:
        return None
    proof: list[WireRRset] = []
    for nsec in used:
        proof += [nsec.nsec.with_ttl(ttl), nsec.sigs.with_ttl(ttl)]
    proof.append(entry.soa_sigs.with_ttl(ttl))
    return Synthesised(rcode, entry.soa.with_ttl(ttl), tuple(proof))
