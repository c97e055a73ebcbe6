"""DNSSEC in the lab's authoritative answers (RFC 4035 §3.1, RFC 5155 §7.2), sans-IO.

A signed zone (python -m resolver.lab.sign) holds its RRSIG, NSEC, DNSKEY, DS and NSEC3PARAM
records as data; its NSEC3 records are taken out of the zone's names (:func:`take_nsec3`:
their owners are hashes, not names a query can find, RFC 5155 §7.2.8) into a
:class:`SignedIndex`. :func:`add_dnssec` then adds to a response built without DNSSEC what
an authoritative server adds when the query has DO=1: the RRSIGs of each answer and
authority RRset (a wildcard's keep the wildcard's labels field, RFC 4035 §3.1.3.3), the DS
of a referral's child or the NSEC/NSEC3 proving there is none (§3.1.4), and the NSEC/NSEC3
records proving NXDOMAIN, NODATA and wildcard expansion (§3.1.3, RFC 5155 §7.2).
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

if TYPE_CHECKING:
    from resolver.lab.authority import ServedZone

_IN = dns.rdataclass.IN
_RRSIG = dns.rdatatype.RRSIG
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3
_WILDCARD = dns.name.Name([b"*"])

META_TYPES = frozenset({_RRSIG, _NSEC, _NSEC3, dns.rdatatype.NSEC3PARAM, dns.rdatatype.DNSKEY})
"""What an ANY answer leaves out without DO, so a signed zone answers as before it was
signed (the qtype asking for one of them still gets it)."""


@dataclass(slots=True)
class SignedIndex:
    """What a signed zone needs for denial: its NSEC owners in canonical order (RFC 4034
    §6.1), or its NSEC3 chain (hash -> the NSEC3 and its RRSIGs) and parameters."""

    nsec_owners: list[dns.name.Name] = field(default_factory=list)
    nsec3: dict[str, list[dns.rrset.RRset]] = field(default_factory=dict)
    nsec3_hashes: list[str] = field(default_factory=list)
    salt: bytes = b""
    iterations: int = 0

    def hash(self, name: dns.name.Name) -> str:
        return nsec3_hash(name, self.salt, self.iterations)


def nsec3_hash(name: dns.name.Name, salt: bytes, iterations: int) -> str:
    """RFC 5155 §5 (SHA-1), by dnspython, imported here and not with the module: importing
    dns.dnssec loads the ``cryptography`` package, whose DSA deprecation warning would land
    on stderr (a JSON log's lines) of every process that imports the lab."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated")
        import dns.dnssec  # noqa: PLC0415

    return dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower()


def take_nsec3(zone: dns.zone.Zone) -> SignedIndex | None:
    """Index a signed zone's denial records, moving its NSEC3 owners out of the zone; None
    for an unsigned zone (no DNSKEY, RRSIG or NSEC at the apex)."""
    origin = zone.origin
    assert origin is not None
    apex = zone.nodes.get(origin)
    if apex is None or not any(r.rdtype in (_RRSIG, _NSEC) for r in apex.rdatasets):
        return None
    index = SignedIndex()
    param = apex.get_rdataset(_IN, dns.rdatatype.NSEC3PARAM)
    if param is not None:
        index.salt, index.iterations = param[0].salt, param[0].iterations
    for name in list(zone.nodes):
        node = zone.nodes[name]
        nsec3 = node.get_rdataset(_IN, _NSEC3)
        if nsec3 is not None:
            records = [dns.rrset.from_rdata_list(name, nsec3.ttl, list(nsec3))]
            sigs = node.get_rdataset(_IN, _RRSIG, _NSEC3)
            if sigs is not None:
                records.append(dns.rrset.from_rdata_list(name, sigs.ttl, list(sigs)))
            index.nsec3[name.labels[0].decode().lower()] = records
            del zone.nodes[name]
        elif node.get_rdataset(_IN, _NSEC) is not None:
            index.nsec_owners.append(name)
    index.nsec_owners.sort()
    index.nsec3_hashes = sorted(index.nsec3)
    return index


def _at(
    served: ServedZone,
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType = dns.rdatatype.NONE,
) -> dns.rrset.RRset | None:
    node = served.zone.get_node(name)
    if node is None:
        return None
    rdataset = node.get_rdataset(_IN, rdtype, covers)
    if rdataset is None:
        return None
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


def _with_sigs(served: ServedZone, rrset: dns.rrset.RRset) -> list[dns.rrset.RRset]:
    """``rrset`` and its RRSIGs; a wildcard expansion's are the wildcard's, re-owned."""
    sigs = _at(served, rrset.name, _RRSIG, rrset.rdtype)
    if sigs is None and rrset.name not in served.names:
        source = wildcard_source(served, rrset.name)
        if source is not None:
            sigs = _at(served, source, _RRSIG, rrset.rdtype)
            if sigs is not None:
                sigs = dns.rrset.from_rdata_list(rrset.name, sigs.ttl, list(sigs))
    return [rrset] if sigs is None else [rrset, sigs]


def closest_encloser(served: ServedZone, name: dns.name.Name) -> dns.name.Name:
    """The longest existing ancestor of ``name`` (RFC 5155 §1.3; RFC 4592 §3.3.1)."""
    encloser = name.parent()
    while encloser not in served.names and encloser != served.origin:
        encloser = encloser.parent()
    return encloser


def wildcard_source(served: ServedZone, name: dns.name.Name) -> dns.name.Name | None:
    """The wildcard that synthesises ``name``, if any (RFC 4592 §3.3.1)."""
    if name in served.names or not name.is_subdomain(served.origin) or name == served.origin:
        return None
    source = _WILDCARD.concatenate(closest_encloser(served, name))
    return source if served.zone.get_node(source) is not None else None


def _nsec(served: ServedZone, index: SignedIndex, name: dns.name.Name) -> list[dns.rrset.RRset]:
    """The NSEC at ``name``, or the one covering it (the greatest owner before it)."""
    at = bisect.bisect_right(index.nsec_owners, name) - 1
    owner = index.nsec_owners[at]  # the apex sorts first, so at >= 0 inside the zone
    nsec = _at(served, owner, _NSEC)
    return [] if nsec is None else _with_sigs(served, nsec)


def _nsec3(index: SignedIndex, name: dns.name.Name) -> list[dns.rrset.RRset]:
    """The NSEC3 matching ``name``'s hash, or the one covering it (wrapping around)."""
    digest = index.hash(name)
    at = bisect.bisect_right(index.nsec3_hashes, digest) - 1
    return index.nsec3[index.nsec3_hashes[at]]


def _matches(index: SignedIndex, name: dns.name.Name) -> bool:
    return index.hash(name) in index.nsec3


def _closest_encloser_proof(
    served: ServedZone, index: SignedIndex, name: dns.name.Name
) -> list[dns.rrset.RRset]:
    """RFC 5155 §7.2.1: the NSEC3 matching the closest provable encloser and the one covering
    the next closer name. Walks up past names the chain has not (opt-out delegations)."""
    next_closer = name
    encloser = name.parent()
    while not _matches(index, encloser) and encloser != served.origin:
        next_closer, encloser = encloser, encloser.parent()
    return [*_nsec3(index, encloser), *_nsec3(index, next_closer)]


def _denial(
    served: ServedZone, index: SignedIndex, name: dns.name.Name, nxdomain: bool
) -> list[dns.rrset.RRset]:
    """The records proving NXDOMAIN for ``name`` or NODATA at it (RFC 4035 §3.1.3, RFC 5155
    §7.2.2-7.2.5), wildcard NODATA included."""
    source = None if nxdomain else wildcard_source(served, name)
    if index.nsec3_hashes:
        if not nxdomain and source is None:
            if _matches(index, name):
                return _nsec3(index, name)  # §7.2.3 (§7.2.4 for DS too)
            return _closest_encloser_proof(served, index, name)  # §7.2.4, opt-out
        proof = _closest_encloser_proof(served, index, name)
        wildcard = _WILDCARD.concatenate(closest_encloser(served, name))
        return proof + _nsec3(index, wildcard)  # §7.2.2 (covers) or §7.2.5 (matches)
    if not nxdomain and source is None:
        return _nsec(served, index, name)  # at the name, or covering an ENT
    wildcard = _WILDCARD.concatenate(closest_encloser(served, name))
    return _nsec(served, index, name) + _nsec(served, index, wildcard)


def _wildcard_proof(
    served: ServedZone, index: SignedIndex, name: dns.name.Name
) -> list[dns.rrset.RRset]:
    """That no closer name than the wildcard matched (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6)."""
    if index.nsec3_hashes:
        encloser = closest_encloser(served, name)
        next_closer = name
        while next_closer.parent() != encloser:
            next_closer = next_closer.parent()
        return _nsec3(index, next_closer)
    return _nsec(served, index, name)


def _referral(served: ServedZone, index: SignedIndex, cut: dns.name.Name) -> list[dns.rrset.RRset]:
    """The child's DS and RRSIGs, or the proof there is none (RFC 4035 §3.1.4)."""
    ds = _at(served, cut, dns.rdatatype.DS)
    if ds is not None:
        return _with_sigs(served, ds)
    return _denial(served, index, cut, nxdomain=False)


def _final_name(response: dns.message.Message, qname: dns.name.Name) -> dns.name.Name:
    """Where the answer's CNAME chain (RFC 1034 §4.3.2) ends."""
    name = qname
    for rrset in response.answer:
        if rrset.name == name and rrset.rdtype == dns.rdatatype.CNAME:
            name = rrset[0].target
    return name


def _unique(rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    seen: list[dns.rrset.RRset] = []
    for rrset in rrsets:
        if not any(
            rrset.name == s.name and rrset.rdtype == s.rdtype and rrset.covers == s.covers
            for s in seen
        ):
            seen.append(rrset)
    return seen


def add_dnssec(served: ServedZone, response: dns.message.Message) -> None:
    """Add RRSIGs, DS and denial records to ``response``, built by the lab for a query with
    DO=1 to ``served`` (a signed zone: ``served.signed`` is set)."""
    index = served.signed
    assert index is not None
    qname = response.question[0].name
    answer: list[dns.rrset.RRset] = []
    authority: list[dns.rrset.RRset] = []
    for rrset in response.answer:
        answer.extend([rrset] if rrset.rdtype == _RRSIG else _with_sigs(served, rrset))
        if rrset.name not in served.names and wildcard_source(served, rrset.name) is not None:
            authority.extend(_wildcard_proof(served, index, rrset.name))
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.NS and rrset.name != served.origin:
            authority.append(rrset)
            authority.extend(_referral(served, index, rrset.name))
        elif rrset.rdtype == dns.rdatatype.SOA:
            authority.extend(_with_sigs(served, rrset))
            name = _final_name(response, qname)
            if name.is_subdomain(served.origin):
                nxdomain = response.rcode() == dns.rcode.NXDOMAIN
                authority.extend(_denial(served, index, name, nxdomain))
        else:
            authority.append(rrset)
    response.answer = _unique(answer)
    response.authority = _unique(authority)


def wants_dnssec(query: dns.message.Message) -> bool:
    """The query set DO (RFC 3225 §3)."""
    return query.edns >= 0 and bool(query.ednsflags & dns.flags.DO)


def without_meta(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """An ANY answer without DO: the zone's data without its DNSSEC records."""
    return [r for r in rrsets if r.rdtype not in META_TYPES]
