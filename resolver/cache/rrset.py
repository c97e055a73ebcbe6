"""RRsets ranked by trust (RFC 2181 §5.4.1), kept as wire bytes while they live.

A lower rank never replaces a higher one that is still live; TTLs are clamped to the
configured range and served counting down; TTL 0 is never stored (RFC 2181 §8: use once).
Entries hold each record's uncompressed wire form, not dnspython objects (a dnspython RRset
costs about 625 bytes by itself); an RRset is rebuilt only when a resolution reads it.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.cache.lru import SizedLRU, owner_in
from resolver.core.zonecut import ZoneCut, addresses_of

_ENTRY_OVERHEAD = 360
_NS = dns.rdatatype.NS.to_bytes(2, "big")
_DECODED_MAX = 1024
"""Bytes an entry costs beyond its byte strings (entry object, tuple, LRU bookkeeping)."""


class Rank(enum.IntEnum):
    """Trust in cached data, lowest first (RFC 2181 §5.4.1)."""

    ADDITIONAL = 1  # glue and other additional-section data
    AUTHORITY = 2  # authority section of a non-authoritative reply (referral NS)
    ANSWER = 3  # answer section of a non-authoritative reply
    AUTH_AUTHORITY = 4  # authority section of an authoritative reply
    AUTH_ANSWER = 5  # answer section of an authoritative reply


def name_wire(name: dns.name.Name) -> bytes:
    """The uncompressed wire form of an absolute name (RFC 1035 §3.1)."""
    wire = name.to_wire()
    assert wire is not None
    return wire


@functools.lru_cache(maxsize=8192)
def lowered_wire(name: dns.name.Name) -> bytes:
    """The name lower-cased in wire form (RFC 4343), memoised: the caches ask for the same
    few names many times per resolution, and dnspython's conversion is slow."""
    return name_wire(name.canonicalize())


def rrset_key(name: dns.name.Name, rdtype: int) -> bytes:
    """Owner name lower-cased in wire form, then the type: the key of an RRset."""
    return lowered_wire(name) + _TYPE_BYTES.get(rdtype, rdtype.to_bytes(2, "big"))


_TYPE_BYTES = {rdtype: rdtype.to_bytes(2, "big") for rdtype in range(256)}


@dataclass(slots=True)
class RRsetEntry:
    rdatas: tuple[bytes, ...]
    stored_at: float
    ttl: int
    rank: Rank

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl

    @property
    def cost(self) -> int:
        return _ENTRY_OVERHEAD + sum(len(rdata) for rdata in self.rdatas)


@dataclass(frozen=True, slots=True)
class TtlBounds:
    """Clamp for stored TTLs; Unbound's defaults (cache-max-ttl 86400, cache-min-ttl 0)."""

    min_ttl: int = 0
    max_ttl: int = 86400


class RRsetCache:
    """Owner + type -> RRset, bounded in bytes, least recently used evicted first."""

    def __init__(self, max_bytes: int, bounds: TtlBounds | None = None) -> None:
        self._entries: SizedLRU[bytes, RRsetEntry] = SizedLRU(max_bytes)
        self.bounds = bounds or TtlBounds()
        self._decoded: dict[bytes, tuple[RRsetEntry, dns.rrset.RRset]] = {}
        """Recently decoded RRsets (the delegations every walk passes through), reused while
        the entry and its counted-down TTL are unchanged. Callers never modify RRsets."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._entries.bytes_used

    @property
    def evictions(self) -> int:
        return self._entries.evictions

    def put(self, rrset: dns.rrset.RRset, rank: Rank, now: float) -> bool:
        """Store ``rrset`` unless a live entry of higher rank holds its place."""
        if rrset.rdclass != dns.rdataclass.IN or len(rrset) == 0 or rrset.ttl <= 0:
            return False
        key = rrset_key(rrset.name, rrset.rdtype)
        current = self._entries.peek(key)
        if current is not None and current.expires_at > now and current.rank > rank:
            return False
        ttl = min(max(rrset.ttl, self.bounds.min_ttl), self.bounds.max_ttl)
        rdatas = tuple(rdata.to_wire() for rdata in rrset)
        self._entries.put(key, RRsetEntry(rdatas, now, ttl, rank))
        return True

    def get(self, name: dns.name.Name, rdtype: int, now: float) -> dns.rrset.RRset | None:
        """The live RRset with its TTL counted down, or None."""
        return self._get_by_key(rrset_key(name, rdtype), name, rdtype, now)

    def _get_by_key(
        self, key: bytes, name: dns.name.Name, rdtype: int, now: float
    ) -> dns.rrset.RRset | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._entries.pop(key)
            return None
        remaining = entry.ttl - int(now - entry.stored_at)  # as the answer cache ages TTLs
        kind = dns.rdatatype.RdataType.make(rdtype)
        rdatas = [
            dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, 0, len(wire))
            for wire in entry.rdatas
        ]
        return dns.rrset.from_rdata_list(name, remaining, rdatas)

    def export(self, now: float) -> list[tuple[bytes, tuple[bytes, ...], float, int, int]]:
        """Live entries as (key, rdatas, stored_at, ttl, rank), for saving across a restart."""
        return [
            (key, e.rdatas, e.stored_at, e.ttl, int(e.rank))
            for key, e in self._entries.data.items()
            if e.expires_at > now
        ]

    def restore(
        self, key: bytes, rdatas: list[bytes], stored_at: float, ttl: int, rank: int
    ) -> None:
        """Put back an exported entry with its original store time, so its TTL has kept
        counting down while the resolver was stopped."""
        self._entries.put(key, RRsetEntry(tuple(rdatas), stored_at, ttl, Rank(rank)))

    def closest_cut(self, qname: dns.name.Name, now: float) -> ZoneCut | None:
        """The deepest zone cut at or above ``qname`` whose NS RRset is cached, with the
        addresses of its name servers that are cached too (RFC 1034 §5.3.3 step 2)."""
        wire = lowered_wire(qname)
        name = qname
        while True:
            ns = self._get_by_key(wire + _NS, name, dns.rdatatype.NS, now)
            if ns is not None:
                cut = ZoneCut(name, {})
                for rdata in ns:
                    found = [
                        rrset
                        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                        if (rrset := self.get(rdata.target, rdtype, now)) is not None
                    ]
                    cut.nameservers[rdata.target] = addresses_of(found, rdata.target)
                return cut
            if name == dns.name.root:
                return None
            name = name.parent()
            wire = wire[1 + wire[0] :]

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget RRsets owned by ``name`` (or below it with ``subtree``), or all."""
        self._decoded.clear()
        return self._entries.remove_where(owner_in(name, subtree))
