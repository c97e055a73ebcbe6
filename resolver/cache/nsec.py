"""The secure NSEC records of validated negative answers, per zone in canonical order, for
aggressive use of the DNSSEC-validated cache (RFC 8198): a name that falls between two
cached NSEC owners is known not to exist without asking (:mod:`resolver.core.dnssec.
aggressive` draws the conclusion; this module only stores and finds).

Only records a validation judged SECURE are put here (RFC 8198 §5.1); each lives as long
as RFC 9077 allows (min of its TTL, its RRSIG's original TTL and the SOA minimum, capped by
the RRSIG's expiration, RFC 4035 §5.3.3). A zone's secure NSEC3 records (RFC 5155) are
kept beside, as one chain sorted by hashed owner, for the one parameter set (salt,
iterations) the zone last used; a record with other parameters replaces the chain (the
zone changed them). Opt-out records and ones of too many iterations are never put here
(the caller's rule, :func:`resolver.core.dnssec.aggressive.keep_nsecs`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TypeVar

import dns.name

from resolver.records import WireRRset

_Key = TypeVar("_Key", dns.name.Name, str)

MAX_NSEC_RECORDS = 100_000
"""NSEC and NSEC3 records kept over all zones; past it the largest zone is dropped whole (a
random-subdomain flood against one zone fills at most its own NSEC chain)."""


@dataclass(frozen=True, slots=True)
class CachedNsec:
    """One secure NSEC RRset, the RRSIGs that cover it, and until when it holds."""

    nsec: WireRRset
    sigs: WireRRset
    expires_at: float


@dataclass(slots=True)
class Nsec3Chain:
    """A zone's cached NSEC3 records for one parameter set: hashed owners (base32hex, upper
    case, whose text order is the hashes' order) sorted, and each record by its hash."""

    salt: bytes
    iterations: int
    hashes: list[str] = field(default_factory=list)
    records: dict[str, CachedNsec] = field(default_factory=dict)


@dataclass(slots=True)
class NsecZone:
    """A zone's cached NSEC chain (owners sorted canonically), its NSEC3 chain if any, and
    the SOA a synthesised negative answer carries, with its RRSIGs (RFC 8198 §5.1: the SOA
    is needed too)."""

    soa: WireRRset
    soa_sigs: WireRRset
    soa_expires_at: float
    owners: list[dns.name.Name] = field(default_factory=list)
    records: dict[dns.name.Name, CachedNsec] = field(default_factory=dict)
    nsec3: Nsec3Chain | None = None

    @property
    def size(self) -> int:
        """NSEC and NSEC3 records kept for the zone."""
        return len(self.records) + (len(self.nsec3.records) if self.nsec3 is not None else 0)


class NsecCache:
    """Secure NSEC and NSEC3 RRsets by zone."""

    def __init__(self, max_records: int = MAX_NSEC_RECORDS) -> None:
        self._zones: dict[dns.name.Name, NsecZone] = {}
        self.max_records = max_records
        self._count = 0

    def put(
        self,
        zone: dns.name.Name,
        nsec: WireRRset,
        sigs: WireRRset,
        expires_at: float,
        *,
        soa: WireRRset,
        soa_sigs: WireRRset,
        soa_expires_at: float,
    ) -> None:
        """Keep ``nsec`` of ``zone`` (with ``sigs``) until ``expires_at``; the zone's SOA
        (with its RRSIGs, good until ``soa_expires_at``) is refreshed with it."""
        entry = self._entry(zone, soa, soa_sigs, soa_expires_at)
        self._add(entry.owners, entry.records, nsec.name, CachedNsec(nsec, sigs, expires_at))

    def put_nsec3(
        self,
        zone: dns.name.Name,
        nsec3: WireRRset,
        sigs: WireRRset,
        expires_at: float,
        *,
        salt: bytes,
        iterations: int,
        soa: WireRRset,
        soa_sigs: WireRRset,
        soa_expires_at: float,
    ) -> None:
        """Keep ``nsec3`` (owner: its hash one label below ``zone``, RFC 5155 §8.1) made
        with ``salt`` and ``iterations``, as :meth:`put` keeps an NSEC."""
        entry = self._entry(zone, soa, soa_sigs, soa_expires_at)
        chain = entry.nsec3
        if chain is None or (chain.salt, chain.iterations) != (salt, iterations):
            if chain is not None:
                self._count -= len(chain.records)
            chain = entry.nsec3 = Nsec3Chain(salt, iterations)
        hashed = nsec3.name.labels[0].decode("ascii").upper()
        self._add(chain.hashes, chain.records, hashed, CachedNsec(nsec3, sigs, expires_at))

    def _add(
        self, order: list[_Key], records: dict[_Key, CachedNsec], key: _Key, record: CachedNsec
    ) -> None:
        """Put ``record`` at ``key``, a new key in sorted ``order`` while room is left."""
        if key not in records:
            if self._count >= self.max_records:
                return
            bisect.insort(order, key)
            self._count += 1
        records[key] = record

    def _entry(
        self, zone: dns.name.Name, soa: WireRRset, soa_sigs: WireRRset, soa_expires_at: float
    ) -> NsecZone:
        entry = self._zones.get(zone)
        if entry is None:
            if self._count >= self.max_records:
                self._drop_largest()
            entry = self._zones[zone] = NsecZone(soa, soa_sigs, soa_expires_at)
        else:
            entry.soa, entry.soa_sigs, entry.soa_expires_at = soa, soa_sigs, soa_expires_at
        return entry

    def _drop_largest(self) -> None:
        largest = max(self._zones, key=lambda z: self._zones[z].size)
        self._count -= self._zones.pop(largest).size

    def zone_of(self, name: dns.name.Name, now: float) -> tuple[dns.name.Name, NsecZone] | None:
        """The deepest zone at or above ``name`` with a live cached NSEC chain."""
        if not self._zones:
            return None
        candidate = name
        while True:
            entry = self._zones.get(candidate)
            if entry is not None and entry.soa_expires_at > now:
                return candidate, entry
            if candidate == dns.name.root:
                return None
            candidate = candidate.parent()

    def at_or_before(self, entry: NsecZone, name: dns.name.Name, now: float) -> CachedNsec | None:
        """The live NSEC whose owner is ``name`` or the last before it in canonical order
        (wrapping to the zone's last NSEC, which covers up to the apex, RFC 4034 §4.1.1)."""
        owners = entry.owners
        if not owners:
            return None
        index = bisect.bisect_right(owners, name) - 1
        found = entry.records[owners[index]]
        if found.expires_at <= now:
            return None
        return found

    def nsec3_at_or_before(self, chain: Nsec3Chain, hashed: str, now: float) -> CachedNsec | None:
        """The live NSEC3 whose hash is ``hashed`` or the last before it, wrapping to the
        chain's last (which covers past the greatest hash to the least, RFC 5155 §3.1.7)."""
        hashes = chain.hashes
        if not hashes:
            return None
        found = chain.records[hashes[bisect.bisect_right(hashes, hashed) - 1]]
        return found if found.expires_at > now else None

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget the chain of zone ``name`` (and the zones below it with ``subtree``), or
        all; any flush of a name inside a zone drops that zone's chain too."""
        if name is None:
            removed, self._count = self._count, 0
            self._zones.clear()
            return removed
        removed = 0
        for zone in list(self._zones):
            if name.is_subdomain(zone) or (subtree and zone.is_subdomain(name)):
                removed += self._zones.pop(zone).size
        self._count -= removed
        return removed

    def __len__(self) -> int:
        return self._count
