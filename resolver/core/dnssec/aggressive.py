"""Aggressive use of the DNSSEC-validated cache (RFC 8198), sans-IO.

A validated negative answer leaves its secure NSEC and NSEC3 records in the
:class:`~resolver.cache.nsec.NsecCache`; a later question for another name they cover is
answered from them without asking. NSEC (RFC 8198 §5.1, RFC 4035 §5.4): NXDOMAIN when an
NSEC covers the name and one covers the wildcard at its closest encloser, NODATA when the
NSEC at the name lacks the type and CNAME. NSEC3 (RFC 8198 §5.2, RFC 5155 §8.4-8.5):
NXDOMAIN from the closest encloser proof (its NSEC3 matches, the next closer name's is
covered) and an NSEC3 covering the wildcard at the closest encloser; NODATA when the NSEC3
matching the name lacks the type and CNAME. The same checks as for a reply
(:mod:`.denial`) decide, on records whose signatures were verified when they were cached.
The answer's TTL is the least left of the records and the SOA (RFC 8198 §5.4, RFC 9077),
which were stored with min(TTL, RRSIG original TTL, SOA minimum).

NSEC3 needs a hash per name looked up (the name, its ancestors down to the closest
encloser, the wildcard): each is charged to the client query's
:class:`~resolver.limits.ValidationWork` (CVE-2023-50868) and reused by the proof check.
An opt-out NSEC3 proves nothing about unsigned delegations in its span (RFC 5155 §6, RFC
8198 §5.2), and one of more than ``max_nsec3_iterations`` is insecure (RFC 9276 §3.2): so
neither is kept, as Knot Resolver skips opt-out NSEC3 sets when it caches. Unbound
synthesises NXDOMAIN and NODATA from NSEC only; its NSEC3 negative cache answers DS
questions only. DS is never synthesised here (it lives on the parent side, where a cached
child chain says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import dns.name
import dns.rcode
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.NSEC3 import NSEC3

from resolver.cache.nsec import CachedNsec, Nsec3Chain, NsecCache, NsecZone
from resolver.core.dnssec import denial
from resolver.core.dnssec.nsec3 import Nsec3Hashes, nsec3_covers, nsec3_hash
from resolver.limits import MAX_NSEC3_ITERATIONS, ValidationWork
from resolver.names import NameKey
from resolver.records import WireRRset

_RRSIG, _NSEC, _NSEC3, _SOA, _DS = 46, 47, 50, 6, 43
_NSEC3_SHA1 = 1
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


def nsec3_params(nsec3: WireRRset, max_iterations: int) -> tuple[bytes, int] | None:
    """The salt and iterations of an NSEC3 RRset fit for synthesis: one record, SHA-1, no
    flags (an opt-out span denies nothing, RFC 5155 §6, RFC 8198 §5.2; unknown flags are
    ignored records, §8.2), at most ``max_iterations`` (RFC 9276 §3.2); else None."""
    if len(nsec3.rdatas) != 1:
        return None
    rdata = nsec3.rdatas[0]
    if len(rdata) < 5 or rdata[0] != _NSEC3_SHA1 or rdata[1] != 0:
        return None
    iterations, salt_end = int.from_bytes(rdata[2:4], "big"), 5 + rdata[4]
    if iterations > max_iterations or len(rdata) < salt_end:
        return None
    return rdata[5:salt_end], iterations


def keep_nsecs(
    cache: NsecCache,
    zone: dns.name.Name,
    soa: WireRRset,
    proof: tuple[WireRRset, ...],
    now: float,
    *,
    max_nsec3_iterations: int = MAX_NSEC3_ITERATIONS,
) -> None:
    """Put the NSEC and NSEC3 records of a SECURE negative answer of ``zone`` into
    ``cache``, each for min(its TTL, its RRSIG's original TTL, the SOA minimum), capped at
    the signature's expiration (RFC 9077 §3-4, RFC 4035 §5.3.3); NSEC3 only as
    :func:`nsec3_params` allows."""
    soa_sigs = _sigs_for(proof, soa.owner_key, _SOA)
    if soa_sigs is None or not soa.rdatas:
        return
    minimum = int.from_bytes(soa.rdatas[0][-4:], "big")
    soa_until = now + min(soa.ttl, minimum)
    soa_expiry = sig_expiration(soa_sigs)
    if soa_expiry is not None:
        soa_until = min(soa_until, soa_expiry)
    for record in proof:
        params = None
        if record.rdtype == _NSEC3 and record.name.parent() == zone:  # RFC 5155 §8.1
            params = nsec3_params(record, max_nsec3_iterations)
            if params is None:
                continue
        elif record.rdtype != _NSEC or not record.name.is_subdomain(zone):
            continue
        sigs = _sigs_for(proof, record.owner_key, record.rdtype)
        if sigs is None:
            continue
        ttl = min(record.ttl, minimum, soa.ttl, _original_ttl(sigs) or record.ttl)
        until = now + ttl
        expiry = sig_expiration(sigs)
        if expiry is not None:
            until = min(until, expiry)
        if until <= now:
            continue
        if params is None:
            cache.put(
                zone, record, sigs, until, soa=soa, soa_sigs=soa_sigs, soa_expires_at=soa_until
            )
        else:
            cache.put_nsec3(
                zone,
                record,
                sigs,
                until,
                salt=params[0],
                iterations=params[1],
                soa=soa,
                soa_sigs=soa_sigs,
                soa_expires_at=soa_until,
            )


def synthesise(
    cache: NsecCache,
    qname: dns.name.Name,
    qtype: int,
    now: float,
    work: ValidationWork | None = None,
) -> Synthesised | None:
    """NXDOMAIN or NODATA for ``qname``/``qtype`` from the cached secure NSECs or NSEC3s,
    or None when they do not prove it (then the question is asked). NSEC3 hashes are
    charged to ``work``, the client query's (a fresh budget when None)."""
    if qtype == _DS:
        return None
    found = cache.zone_of(qname, now)
    if found is None:
        return None
    zone, entry = found
    made = _from_nsec(cache, entry, zone, qname, qtype, now=now) if entry.owners else None
    if made is None and entry.nsec3 is not None:
        made = _from_nsec3(
            cache, entry.nsec3, zone, qname, qtype, now=now, work=work or ValidationWork()
        )
    if made is None:
        return None
    rcode, used = made
    until = min([entry.soa_expires_at, *(record.expires_at for record in used)])
    ttl = int(until - now)
    if ttl <= 0:
        return None
    proof: list[WireRRset] = []
    for record in used:
        proof += [record.nsec.with_ttl(ttl), record.sigs.with_ttl(ttl)]
    proof.append(entry.soa_sigs.with_ttl(ttl))
    return Synthesised(rcode, entry.soa.with_ttl(ttl), tuple(proof))


def _from_nsec(
    cache: NsecCache,
    entry: NsecZone,
    zone: dns.name.Name,
    qname: dns.name.Name,
    qtype: int,
    *,
    now: float,
) -> tuple[dns.rcode.Rcode, list[CachedNsec]] | None:
    first = cache.at_or_before(entry, qname, now)
    if first is None:
        return None
    used: list[CachedNsec] = [first]
    built = first.nsec.to_rrset()
    if first.nsec.name == qname:
        if not denial.nsec_nodata(qname, qtype, [built], zone).is_secure:
            return None
        return dns.rcode.NOERROR, used
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
    return dns.rcode.NXDOMAIN, used


def nsec3_candidates(
    cache: NsecCache,
    chain: Nsec3Chain,
    zone: dns.name.Name,
    qname: dns.name.Name,
    *,
    now: float,
    work: ValidationWork,
    hashes: Nsec3Hashes,
) -> tuple[dns.rcode.Rcode, list[CachedNsec]] | None:
    """The cached NSEC3s that may prove ``qname`` has no data (the one matching it) or
    does not exist (the one matching its closest encloser, the one covering the next
    closer name, the one covering the wildcard at the closest encloser: RFC 5155 §8.4),
    found by hashing ``qname`` and then each ancestor until one matches; None as soon as a
    hash is neither matched nor covered by a live cached record (no more hashes are spent
    on it), when the wildcard exists, or when the hash budget is spent. The proof itself
    is :mod:`.denial`'s, on what this returns."""

    def lookup(name: dns.name.Name) -> tuple[bool, CachedNsec] | None:
        hashed = nsec3_hash(name, chain.salt, chain.iterations, work, hashes)
        if hashed is None:
            return None
        found = cache.nsec3_at_or_before(chain, hashed, now)
        if found is None:
            return None
        label = found.nsec.name.labels[0].decode("ascii").upper()
        if label == hashed:
            return True, found
        record = cast(NSEC3, found.nsec.to_rrset()[0])
        return (False, found) if nsec3_covers(label, record, hashed) else None

    name, covering = qname, None
    while True:
        looked = lookup(name)
        if looked is None:
            return None
        matched, record = looked
        if matched and covering is None:
            return dns.rcode.NOERROR, [record]  # qname's own NSEC3
        if matched and covering is not None:
            wildcard = lookup(dns.name.Name((b"*", *name.labels)))
            if wildcard is None or wildcard[0]:
                return None  # a wildcard exists there: asked, it may answer
            used = [record]
            for extra in (covering, wildcard[1]):
                if all(extra is not kept for kept in used):
                    used.append(extra)
            return dns.rcode.NXDOMAIN, used
        if name == zone:
            return None
        name, covering = name.parent(), record


def _from_nsec3(
    cache: NsecCache,
    chain: Nsec3Chain,
    zone: dns.name.Name,
    qname: dns.name.Name,
    qtype: int,
    *,
    now: float,
    work: ValidationWork,
) -> tuple[dns.rcode.Rcode, list[CachedNsec]] | None:
    hashes: Nsec3Hashes = {}
    found = nsec3_candidates(cache, chain, zone, qname, now=now, work=work, hashes=hashes)
    if found is None:
        return None
    rcode, used = found
    rrsets = [record.nsec.to_rrset() for record in used]
    if rcode == dns.rcode.NOERROR:
        verdict = denial.nsec3_nodata(qname, qtype, rrsets, zone, work, hashes=hashes)
    else:
        verdict = denial.nsec3_nxdomain(qname, rrsets, zone, work, hashes=hashes)
    return found if verdict.is_secure else None
