"""Proofs of non-existence: NSEC (RFC 4035 §5.4) and NSEC3 (RFC 5155 §8).

Every function takes NSEC or NSEC3 RRsets whose signatures the caller has already verified
(:func:`~resolver.core.dnssec.verify.verify_rrset`), the zone they belong to, and returns a
verdict: secure when the records prove the claim, insecure where the RFCs say so (an
unsigned delegation; NSEC3 opt-out, RFC 5155 §8.6; iterations above RFC 9276 §3.2's limit),
bogus with EDE 12 (NSEC Missing) when they do not. Names compare in canonical order
(RFC 4034 §6.1), which is how ``dns.name.Name`` orders (tests/unit/test_dnssec_denial.py
checks it); NSEC3 hashes compare as base32hex text, whose order is the hashes' byte order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NSEC import NSEC
from dns.rdtypes.ANY.NSEC3 import NSEC3

from resolver.core.dnssec.nsec3 import Nsec3Hashes, nsec3_covers, nsec3_hash
from resolver.core.dnssec.security import SECURE, Security, Verdict, bogus, insecure, out_of_work
from resolver.limits import ValidationWork
from resolver.model import ExtendedError

_NS, _SOA, _CNAME, _DS, _DNAME = 2, 6, 5, 43, 39
_NSEC3_SHA1 = 1
_OPT_OUT = 1


def _types(record: NSEC | NSEC3) -> set[int]:
    """The types an NSEC or NSEC3 type bitmap lists (RFC 4034 §4.1.2)."""
    found: set[int] = set()
    for window, bitmap in record.windows:
        for index, byte in enumerate(bitmap):
            found.update(window * 256 + index * 8 + bit for bit in range(8) if byte & (0x80 >> bit))
    return found


def _type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))


def _missing(what: str) -> Verdict:
    return bogus(ExtendedError.NSEC_MISSING, what)


# --- NSEC (RFC 4035 §5.4) ----------------------------------------------------------------


def _nsecs(
    rrsets: Sequence[dns.rrset.RRset], zone: dns.name.Name
) -> list[tuple[dns.name.Name, NSEC]]:
    return [
        (rrset.name, cast(NSEC, rrset[0]))
        for rrset in rrsets
        if rrset.rdtype == dns.rdatatype.NSEC and rrset.name.is_subdomain(zone) and len(rrset)
    ]


def _covers(owner: dns.name.Name, record: NSEC, name: dns.name.Name) -> bool:
    """Whether the NSEC at ``owner`` proves ``name`` absent: owner < name < next in
    canonical order, the last NSEC wrapping to the apex (RFC 4034 §4.1.1). An NSEC at a
    delegation or a DNAME proves nothing below its owner (RFC 6840 §4.1)."""
    nxt = record.next
    inside = owner < name < nxt if owner < nxt else owner < name or name < nxt
    if not inside:
        return False
    if name.is_subdomain(owner):
        types = _types(record)
        if _DNAME in types or (_NS in types and _SOA not in types):
            return False
    return True


def _encloser(name: dns.name.Name, owner: dns.name.Name, record: NSEC) -> dns.name.Name:
    """The closest encloser an NSEC covering ``name`` implies: the longer of the common
    ancestors of ``name`` with the NSEC's owner and with its next name (RFC 4035 §5.4)."""
    first = name.fullcompare(owner)[2]
    second = name.fullcompare(record.next)[2]
    labels = max(first, second)
    return dns.name.Name(name.labels[-labels:]) if labels else dns.name.root


def nsec_covers(owner: dns.name.Name, record: NSEC, name: dns.name.Name) -> bool:
    """Whether the NSEC at ``owner`` proves ``name`` absent (for RFC 8198 synthesis)."""
    return _covers(owner, record, name)


def nsec_encloser(name: dns.name.Name, owner: dns.name.Name, record: NSEC) -> dns.name.Name:
    """The closest encloser an NSEC covering ``name`` implies (for RFC 8198 synthesis)."""
    return _encloser(name, owner, record)


def _covering(
    rrsets: list[tuple[dns.name.Name, NSEC]], name: dns.name.Name
) -> tuple[dns.name.Name, NSEC] | None:
    return next(((o, r) for o, r in rrsets if _covers(o, r, name)), None)


def nsec_nxdomain(
    qname: dns.name.Name, nsecs: Sequence[dns.rrset.RRset], zone: dns.name.Name
) -> Verdict:
    """NXDOMAIN (RFC 4035 §5.4, §3.1.3.2): an NSEC covers ``qname`` and one covers the
    wildcard at the closest encloser."""
    records = _nsecs(nsecs, zone)
    found = _covering(records, qname)
    if found is None:
        return _missing(f"no NSEC in {zone} proves {qname} does not exist")
    if found[1].next.is_subdomain(qname):
        return _missing(f"{qname} is an empty non-terminal of {zone}, not absent")
    encloser = _encloser(qname, *found)
    wildcard = dns.name.Name((b"*", *encloser.labels))
    if _covering(records, wildcard) is None:
        return _missing(f"no NSEC in {zone} proves {wildcard} does not exist")
    return SECURE


def nsec_nodata(
    qname: dns.name.Name, qtype: int, nsecs: Sequence[dns.rrset.RRset], zone: dns.name.Name
) -> Verdict:
    """NODATA (RFC 4035 §5.4, §3.1.3.1): the NSEC at ``qname`` lacks ``qtype`` and CNAME;
    or ``qname`` is an empty non-terminal (an NSEC covers it whose next name is below it);
    or, for a wildcard NODATA (§3.1.3.4), an NSEC covers ``qname`` and the NSEC at the
    wildcard lacks the type. The parent side of a delegation (NS without SOA) proves only
    DS absent. For DS this is :func:`nsec_no_ds` (insecure at an unsigned delegation)."""
    if qtype == _DS:
        return nsec_no_ds(qname, nsecs, zone)
    records = _nsecs(nsecs, zone)
    for owner, record in records:
        if owner != qname:
            continue
        types = _types(record)
        if qtype in types or _CNAME in types:
            return _missing(f"NSEC at {qname} lists {_type_text(qtype)}")
        if _NS in types and _SOA not in types:
            return _missing(f"NSEC at {qname} is a delegation's")
        return SECURE
    found = _covering(records, qname)
    if found is None:
        return _missing(f"no NSEC in {zone} proves {qname} has no {_type_text(qtype)}")
    if found[1].next.is_subdomain(qname):
        return SECURE  # an empty non-terminal
    encloser = _encloser(qname, *found)
    wildcard = dns.name.Name((b"*", *encloser.labels))
    for owner, record in records:
        types = _types(record)
        if owner == wildcard and qtype not in types and _CNAME not in types:
            return SECURE
    return _missing(f"no NSEC in {zone} proves {qname} has no {_type_text(qtype)}")


def nsec_wildcard_answer(
    qname: dns.name.Name,
    wildcard: dns.name.Name,
    nsecs: Sequence[dns.rrset.RRset],
    zone: dns.name.Name,
) -> Verdict:
    """A wildcard answer (RFC 4035 §5.3.4): an NSEC proves ``qname`` absent and that no
    name closer to it than ``wildcard``'s parent exists (its closest encloser)."""
    records = _nsecs(nsecs, zone)
    found = _covering(records, qname)
    if found is None or _encloser(qname, *found) != wildcard.parent():
        return _missing(f"no NSEC in {zone} proves {qname} is not {wildcard}'s to answer")
    return SECURE


def nsec_no_ds(
    name: dns.name.Name, nsecs: Sequence[dns.rrset.RRset], zone: dns.name.Name
) -> Verdict:
    """The DS NODATA at a delegation (RFC 4035 §5.2): the parent's NSEC at ``name`` with NS
    and without DS and SOA makes the child insecure. An NSEC at ``name`` without NS and DS
    proves there is no zone cut (secure: the name stays in ``zone``). The child's apex NSEC
    (SOA set) never proves DS absent (RFC 4035 §5.4); an empty non-terminal has no DS and
    no cut (secure)."""
    for owner, record in _nsecs(nsecs, zone):
        if owner != name:
            continue
        types = _types(record)
        if _DS in types or _SOA in types or _CNAME in types:
            break
        if _NS in types:
            return insecure(f"{UNSIGNED_DELEGATION} {name} (NSEC)")
        return SECURE
    else:
        found = _covering(_nsecs(nsecs, zone), name)
        if found is not None and found[1].next.is_subdomain(name):
            return SECURE
    return _missing(f"no NSEC in {zone} proves {name} has no DS")


UNSIGNED_DELEGATION = "no DS at the delegation"
"""How an insecure verdict for DS starts when the parent's own NSEC or NSEC3 at the name
(NS, no DS, no SOA) proves the delegation unsigned: insecure for the child's data, but a
secure NODATA answer to the DS question itself, which the parent answers (RFC 4035 §3.1.4.1,
§5.4). An opt-out span proves nothing that strong (RFC 5155 §9.2) and stays insecure."""


def proves_unsigned_delegation(verdict: Verdict) -> bool:
    """True for the parent's signed proof that a delegation has no DS (see above)."""
    return verdict.state is Security.INSECURE and verdict.text.startswith(UNSIGNED_DELEGATION)


# --- NSEC3 (RFC 5155 §8) -----------------------------------------------------------------


class _Nsec3Proof:
    """The usable NSEC3 records of one reply and the hashes computed for them, each charged
    to the client query's work (CVE-2023-50868) unless in ``hashes`` (RFC 8198 synthesis)."""

    def __init__(
        self,
        rrsets: Sequence[dns.rrset.RRset],
        zone: dns.name.Name,
        work: ValidationWork,
        hashes: Nsec3Hashes | None = None,
    ) -> None:
        self.zone = zone
        self.work = work
        self.records: list[tuple[str, NSEC3]] = []
        self.too_many_iterations = False
        self.spent = False
        self._hashes: Nsec3Hashes = {} if hashes is None else hashes
        for rrset in rrsets:
            if rrset.rdtype != dns.rdatatype.NSEC3 or rrset.name.parent() != zone or not len(rrset):
                continue  # RFC 5155 §8.1: the owner is one hash label below the zone
            record = cast(NSEC3, rrset[0])
            if record.algorithm != _NSEC3_SHA1 or record.flags & ~_OPT_OUT:
                continue  # RFC 5155 §8.1-8.2: ignore unknown hash algorithms and flags
            if record.iterations > work.limits.max_nsec3_iterations:
                self.too_many_iterations = True  # RFC 9276 §3.2
                continue
            label = rrset.name.labels[0].decode("ascii").upper()
            self.records.append((label, record))

    def hash(self, name: dns.name.Name, record: NSEC3) -> str | None:
        """``name``'s NSEC3 hash with ``record``'s parameters; None once the budget is spent."""
        found = nsec3_hash(name, record.salt, record.iterations, self.work, self._hashes)
        if found is None:
            self.spent = True
        return found

    def match(self, name: dns.name.Name) -> NSEC3 | None:
        for label, record in self.records:
            if self.hash(name, record) == label:
                return record
        return None

    def cover(self, name: dns.name.Name) -> NSEC3 | None:
        for label, record in self.records:
            hashed = self.hash(name, record)
            if hashed is None:
                return None
            if nsec3_covers(label, record, hashed):
                return record
        return None

    def closest_encloser(
        self, qname: dns.name.Name
    ) -> tuple[dns.name.Name, dns.name.Name, NSEC3] | None:
        """RFC 5155 §8.3: the closest encloser (a matching NSEC3, not a delegation's nor a
        DNAME's), the next closer name, and the NSEC3 covering the next closer."""
        child = qname
        candidate = qname.parent() if qname != self.zone else qname
        while candidate.is_subdomain(self.zone) and child != self.zone:
            found = self.match(candidate)
            if found is not None:
                types = _types(found)
                if _DNAME in types or (_NS in types and _SOA not in types):
                    return None
                cover = self.cover(child)
                return (candidate, child, cover) if cover is not None else None
            if self.spent or candidate == self.zone:
                return None
            child, candidate = candidate, candidate.parent()
        return None

    def verdict_when_failed(self, what: str) -> Verdict:
        if self.spent:
            return out_of_work(self.zone, f"NSEC3 hashes for {what}")
        return _missing(f"no NSEC3 in {self.zone} proves {what}")


def _insecure_iterations(proof: _Nsec3Proof) -> Verdict | None:
    if proof.too_many_iterations:  # Unbound: any NSEC3 above the limit makes it insecure
        return insecure(f"NSEC3 iterations of {proof.zone} above the limit (RFC 9276)")
    return None


def nsec3_nxdomain(
    qname: dns.name.Name,
    nsec3s: Sequence[dns.rrset.RRset],
    zone: dns.name.Name,
    work: ValidationWork,
    *,
    hashes: Nsec3Hashes | None = None,
) -> Verdict:
    """NXDOMAIN (RFC 5155 §8.4): the closest encloser proof and an NSEC3 covering the
    wildcard at the closest encloser. A next closer covered by an opt-out span is insecure
    (an unsigned delegation may be there; Unbound does the same). ``hashes``: see above."""
    proof = _Nsec3Proof(nsec3s, zone, work, hashes)
    high = _insecure_iterations(proof)
    if high is not None:
        return high
    found = proof.closest_encloser(qname)
    if found is None:
        return proof.verdict_when_failed(f"{qname} does not exist")
    encloser, _, cover = found
    wildcard = dns.name.Name((b"*", *encloser.labels))
    if proof.cover(wildcard) is None:
        return proof.verdict_when_failed(f"{wildcard} does not exist")
    if cover.flags & _OPT_OUT:
        return insecure(f"NXDOMAIN for {qname} in an NSEC3 opt-out span of {zone}")
    return SECURE


def nsec3_nodata(
    qname: dns.name.Name,
    qtype: int,
    nsec3s: Sequence[dns.rrset.RRset],
    zone: dns.name.Name,
    work: ValidationWork,
    *,
    hashes: Nsec3Hashes | None = None,
) -> Verdict:
    """NODATA (RFC 5155 §8.5-8.7): the NSEC3 matching ``qname`` lacks the type and CNAME;
    for DS without a match (§8.6), the closest encloser proof with an opt-out next closer
    (insecure); for a wildcard (§8.7), the closest encloser proof and the NSEC3 matching
    the wildcard lacking the type. For DS, as :func:`nsec_no_ds`: the parent's NSEC3 at a
    delegation (NS, no DS, no SOA) makes the child insecure (§8.9); secure means no DS and
    no zone cut at ``qname``."""
    proof = _Nsec3Proof(nsec3s, zone, work, hashes)
    high = _insecure_iterations(proof)
    if high is not None:
        return high
    name = _type_text(qtype)
    found = proof.match(qname)
    if found is not None:
        types = _types(found)
        if qtype in types or _CNAME in types:
            return _missing(f"NSEC3 for {qname} lists {name}")
        if qtype == _DS:
            if _SOA in types and qname != dns.name.root:
                return _missing(f"NSEC3 for DS at {qname} is the child zone's")
            if _NS in types:
                return insecure(f"{UNSIGNED_DELEGATION} {qname} (NSEC3)")
            return SECURE
        if _NS in types and _SOA not in types:
            return _missing(f"NSEC3 at {qname} is a delegation's")
        return SECURE
    if proof.spent:
        return proof.verdict_when_failed(f"{qname} has no {name}")
    enclosed = proof.closest_encloser(qname)
    if enclosed is None:
        return proof.verdict_when_failed(f"{qname} has no {name}")
    encloser, _, cover = enclosed
    if qtype == _DS and cover.flags & _OPT_OUT:
        return insecure(f"no DS for {qname}: NSEC3 opt-out span of {zone}")
    wild = proof.match(dns.name.Name((b"*", *encloser.labels)))
    if wild is not None and qtype not in _types(wild) and _CNAME not in _types(wild):
        if cover.flags & _OPT_OUT:  # as for a wildcard answer (RFC 5155 §9.2)
            return insecure(f"wildcard NODATA for {qname} in an NSEC3 opt-out span of {zone}")
        return SECURE
    return proof.verdict_when_failed(f"{qname} has no {name}")


def nsec3_wildcard_answer(
    qname: dns.name.Name,
    wildcard: dns.name.Name,
    nsec3s: Sequence[dns.rrset.RRset],
    zone: dns.name.Name,
    work: ValidationWork,
) -> Verdict:
    """A wildcard answer (RFC 5155 §8.8): an NSEC3 covers the next closer name, the name
    one label longer than the wildcard's closest encloser on the way to ``qname``. When that
    NSEC3 has the opt-out flag, an unsigned delegation could hide under it and the answer is
    insecure (RFC 5155 §9.2, as Unbound)."""
    proof = _Nsec3Proof(nsec3s, zone, work)
    high = _insecure_iterations(proof)
    if high is not None:
        return high
    encloser = wildcard.parent()
    if not qname.is_subdomain(encloser) or qname == encloser:
        return _missing(f"{wildcard} cannot answer {qname}")
    next_closer = dns.name.Name(qname.labels[-(len(encloser.labels) + 1) :])
    cover = proof.cover(next_closer)
    if cover is None:
        return proof.verdict_when_failed(f"{next_closer} does not exist")
    if cover.flags & _OPT_OUT:
        return insecure(f"wildcard answer for {qname} in an NSEC3 opt-out span of {zone}")
    return SECURE
