"""RRsets ranked by trust (RFC 2181 §5.4.1), kept as wire bytes while they live.

A lower rank never replaces a higher one that is still live; TTLs are clamped to the
configured range and served counting down; TTL 0 is never stored (RFC 2181 §8: use once).
Entries hold each record's uncompressed wire form, not dnspython objects (a dnspython RRset
costs about 625 bytes by itself); an RRset is rebuilt only when a resolution reads it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from resolver.cache.lru import BoundedCache, SizedLRU, owner_in
from resolver.model import Security, ZoneCut, addresses_of
from resolver.names import NameKey, key_of_wire, name_key, parent_key
from resolver.records import WireRRset, name_from_wire

_ENTRY_OVERHEAD = 100
"""Bytes an entry costs beyond its packed bytes: the bytes header, the key, its dict slot
(tracemalloc: about 105 bytes in all for a one-record A RRset, 19 of them packed)."""


class Rank(enum.IntEnum):
    """Trust in cached data, lowest first (RFC 2181 §5.4.1)."""

    ADDITIONAL = 1  # glue and other additional-section data
    AUTHORITY = 2  # authority section of a non-authoritative reply (referral NS)
    ANSWER = 3  # answer section of a non-authoritative reply
    AUTH_AUTHORITY = 4  # authority section of an authoritative reply
    AUTH_ANSWER = 5  # answer section of an authoritative reply


def key_of(owner_key: bytes, rdtype: int) -> bytes:
    """Owner name lower-cased in wire form, then the type: the key of an RRset."""
    type_bytes = _TYPE_BYTES.get(rdtype)
    return owner_key + (type_bytes if type_bytes is not None else rdtype.to_bytes(2, "big"))


_TYPE_BYTES = {rdtype: rdtype.to_bytes(2, "big") for rdtype in range(256)}


_DNAME_TYPE = int(dns.rdatatype.DNAME).to_bytes(2, "big")

_HEAD = struct.Struct("!dIB")  # stored_at, TTL, rank

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)

PARENT_SIDE_SHARE = 64
"""The parent-side glue store gets this fraction of the RRset cache's budget."""


_RAISED = 0x80
"""Set in the rank byte when ``min_ttl`` raised the TTL: the authority's own TTL follows the
head, and a client never sees more than it."""
_RANK_BYTE = _HEAD.size - 1
_RANK_BITS = 0x0F
_VALIDATED_BITS = 0x30
"""Set in the rank byte once a validating resolution has judged the RRset (RFC 4035
§4.3): 0x10 secure, 0x20 insecure; clear for data no validator has looked at (glue,
referrals, unvalidated lookups). Any new ``put`` clears them."""
_SECURITY_BITS = {Security.SECURE: 0x10, Security.INSECURE: 0x20}
_SECURITY_OF = {0x10: Security.SECURE, 0x20: Security.INSECURE}
_RRSIG_TYPE = int(dns.rdatatype.RRSIG).to_bytes(2, "big")


def pack_entry(
    rdatas: Sequence[bytes],
    stored_at: float,
    ttl: int,
    rank: Rank,
    authority_ttl: int | None = None,
) -> bytes:
    """One cache entry as one byte string: store time, TTL, rank, then each record's wire
    form behind its length. A byte string costs a fraction of an object with fields. When
    the cached lifetime ``ttl`` is longer than ``authority_ttl`` (``min_ttl`` raised it),
    that TTL is kept too."""
    if authority_ttl is None or authority_ttl >= ttl:
        head = _HEAD.pack(stored_at, ttl, rank)
    else:
        head = _HEAD.pack(stored_at, ttl, rank | _RAISED) + authority_ttl.to_bytes(4, "big")
    return head + b"".join(len(rdata).to_bytes(2, "big") + rdata for rdata in rdatas)


def entry_head(entry: bytes) -> tuple[float, int, int]:
    """(stored_at, ttl, rank) of a packed entry."""
    stored_at, ttl, rank = _HEAD.unpack_from(entry)
    return stored_at, ttl, rank & _RANK_BITS


def shown_ttl(entry: bytes, ttl: int, age_s: float) -> int:
    """The TTL a client is given for an entry ``age_s`` seconds old: what is left of its
    cached lifetime, never more than the authority gave (RFC 2181 §8)."""
    remaining = ttl - int(age_s)
    if entry[_RANK_BYTE] & _RAISED:
        return min(remaining, int.from_bytes(entry[_HEAD.size : _HEAD.size + 4], "big"))
    return remaining


def entry_rdatas(entry: bytes) -> list[bytes]:
    """The records' wire forms in a packed entry."""
    rdatas: list[bytes] = []
    offset = _HEAD.size + (4 if entry[_RANK_BYTE] & _RAISED else 0)
    while offset < len(entry):
        length = int.from_bytes(entry[offset : offset + 2], "big")
        rdatas.append(entry[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return rdatas


def _entry_cost(entry: bytes) -> int:
    return _ENTRY_OVERHEAD + len(entry)


@dataclass(frozen=True, slots=True)
class TtlBounds:
    """Clamp for stored TTLs; Unbound's defaults (cache-max-ttl 86400, cache-min-ttl 0). A
    TTL above ``max_ttl`` is cut for clients too; one raised to ``min_ttl`` is cached that
    long, but clients still see at most the authority's TTL."""

    min_ttl: int = 0
    max_ttl: int = 86400


class RRsetCache(BoundedCache):
    """Owner + type -> RRset, bounded in bytes, least recently used evicted first."""

    def __init__(self, max_bytes: int, bounds: TtlBounds | None = None) -> None:
        self._entries: SizedLRU[bytes, bytes] = SizedLRU(max_bytes, _entry_cost)
        self._parent_side: SizedLRU[bytes, bytes] = SizedLRU(
            max(max_bytes // PARENT_SIDE_SHARE, 1), _entry_cost
        )
        """Glue that disagrees with the child's own addresses for a name server, kept apart
        as the parent's last resort for reaching the child (Unbound's parent-side lookup):
        the child's data wins for answers and is tried first, the glue is tried when the
        child's addresses fail. Only disagreeing glue is kept, so it costs nothing in the
        common case."""
        self.bounds = bounds or TtlBounds()
        self.dnames_stored = 0
        """DNAME RRsets stored so far: while there are none, :meth:`dname_above` walks no
        ancestors (the common case costs one comparison)."""

    def put(self, rrset: WireRRset, rank: Rank, now: float) -> bool:
        """Store ``rrset`` unless a live entry of higher rank holds its place.

        A delegation lives no longer than the parent said: an NS RRset from the child's
        own servers (ranked above a referral's) replaces a live one with at most the TTL the
        live one has left, so servers that keep answering for a zone that moved away cannot
        keep the old delegation alive (the "ghost domain" attack, CVE-2012-1191, as Unbound
        and Knot Resolver cap it). A shorter child TTL shortens the delegation, and it is
        fetched again from the parent when that runs out."""
        ttl = min(max(rrset.ttl, self.bounds.min_ttl), self.bounds.max_ttl)
        if not rrset.rdatas or ttl <= 0:
            return False  # RFC 2181 §8: TTL 0 is used once, unless min_ttl raises it
        key = key_of(rrset.owner_key, rrset.rdtype)
        current = self._entries.peek(key)
        if current is not None:
            stored_at, current_ttl, current_rank = entry_head(current)
            remaining = stored_at + current_ttl - now
            if remaining > 0:
                if rrset.rdtype in _ADDRESS_TYPES:
                    self._keep_parent_side(key, current, rrset, rank, now=now, ttl=ttl)
                if current_rank > rank:
                    return False
                if rrset.rdtype == dns.rdatatype.NS and rank > Rank.AUTHORITY:
                    ttl = min(ttl, int(remaining))
                    if ttl <= 0:
                        return False
        self._entries.put(key, pack_entry(rrset.rdatas, now, ttl, rank, rrset.ttl))
        if rrset.rdtype == dns.rdatatype.DNAME:
            self.dnames_stored += 1
        return True

    def _keep_parent_side(
        self, key: bytes, current: bytes, incoming: WireRRset, rank: Rank, *, now: float, ttl: int
    ) -> None:
        """When glue and the child's own addresses for a name disagree, keep the glue apart
        (whichever came first) for :meth:`parent_side_addresses`."""
        _stored_at, _ttl, current_rank = entry_head(current)
        if (current_rank == Rank.ADDITIONAL) == (rank == Rank.ADDITIONAL):
            return  # the same side: the usual replacement rules apply
        if sorted(entry_rdatas(current)) == sorted(incoming.rdatas):
            return
        if current_rank == Rank.ADDITIONAL:
            self._parent_side.put(key, current)
        else:
            self._parent_side.put(key, pack_entry(incoming.rdatas, now, ttl, rank))

    def parent_side_addresses(self, owner_key: NameKey, now: float) -> list[str]:
        """Addresses the parent gave as glue for ``owner_key`` where the child's own data
        says otherwise; live ones only."""
        found: list[WireRRset] = []
        for rdtype in _ADDRESS_TYPES:
            key = key_of(owner_key, rdtype)
            entry = self._parent_side.get(key)
            if entry is None:
                continue
            stored_at, ttl, _rank = entry_head(entry)
            if stored_at + ttl <= now:
                self._parent_side.pop(key)
                continue
            found.append(WireRRset(None, rdtype, ttl, tuple(entry_rdatas(entry)), owner_key))
        return addresses_of(found, owner_key)

    def get(
        self,
        name: dns.name.Name,
        rdtype: int,
        now: float,
        min_rank: Rank = Rank.ADDITIONAL,
        *,
        key: NameKey | None = None,
    ) -> WireRRset | None:
        """The live RRset with its TTL counted down, or None. ``min_rank`` leaves out data
        of lower trust: an answer to a client is never made of glue or of a referral's NS
        records, which are the parent's hints for reaching the child, not the child's data
        (RFC 2181 §5.4.1, RFC 1034 §4.2.2). ``key`` is ``name``'s key when the caller
        carries it (the machine always does); left out, it is made from ``name``."""
        owner_key = name_key(name) if key is None else key
        return self._get_by_key(key_of(owner_key, rdtype), name, rdtype, now, min_rank)

    def _get_by_key(
        self,
        key: bytes,
        name: dns.name.Name | None,
        rdtype: int,
        now: float,
        min_rank: Rank = Rank.ADDITIONAL,
    ) -> WireRRset | None:
        """The live RRset at ``key``, owned by ``name`` (or, when None, by the key's name)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, ttl, rank = entry_head(entry)
        if stored_at + ttl <= now:
            self._entries.pop(key)
            return None
        if rank < min_rank:
            return None
        remaining = shown_ttl(entry, ttl, now - stored_at)  # as the answer cache ages TTLs
        owner_key = NameKey(key[:-2] if rdtype != dns.rdatatype.RRSIG else key[:-4])
        rdatas = tuple(entry_rdatas(entry))
        if name is None:
            return WireRRset(None, rdtype, remaining, rdatas, owner_key, owner=owner_key)
        return WireRRset(name, rdtype, remaining, rdatas, owner_key)

    def mark_validated(
        self,
        rrset: WireRRset,
        security: Security,
        rrsigs: tuple[bytes, ...],
        now: float,
        expires_at: float | None = None,
    ) -> None:
        """Note that a validating resolution judged the cached copy of ``rrset`` secure or
        insecure, and keep the RRSIGs that cover it (for clients that set DO) for as long
        as the RRset, which lives no longer than ``expires_at`` (its signatures' expiration,
        RFC 4035 §5.3.3). Nothing happens when the cached copy holds other data."""
        bits = _SECURITY_BITS.get(security)
        key = key_of(rrset.owner_key, rrset.rdtype)
        entry = self._entries.peek(key)
        if bits is None or entry is None or sorted(entry_rdatas(entry)) != sorted(rrset.rdatas):
            return
        stored_at, ttl, rank = entry_head(entry)
        if expires_at is not None and stored_at + ttl > expires_at:
            ttl = max(0, int(expires_at - stored_at))
            authority_ttl = shown_ttl(entry, 1 << 31, 0) if entry[_RANK_BYTE] & _RAISED else None
            entry = pack_entry(entry_rdatas(entry), stored_at, ttl, Rank(rank), authority_ttl)
        flags = (entry[_RANK_BYTE] & ~_VALIDATED_BITS) | bits
        marked = entry[:_RANK_BYTE] + bytes((flags,)) + entry[_RANK_BYTE + 1 :]
        self._entries.put(key, marked)
        if rrsigs:
            sigs_key = key_of(rrset.owner_key, dns.rdatatype.RRSIG) + key[-2:]
            self._entries.put(sigs_key, pack_entry(rrsigs, stored_at, ttl, Rank(rank)))

    def get_validated(
        self, name: dns.name.Name, rdtype: int, now: float, *, key: NameKey
    ) -> tuple[WireRRset, Security, WireRRset | None] | None:
        """A live answer RRset that a validating resolution judged secure or insecure, its
        state, and the RRSIGs kept with it; None for anything else, which a validating
        resolution asks the servers again (RFC 4035 §4.5: cached data keeps its state)."""
        rrset_key = key_of(key, rdtype)
        entry = self._entries.peek(rrset_key)
        if entry is None or not entry[_RANK_BYTE] & _VALIDATED_BITS:
            return None
        security = _SECURITY_OF.get(entry[_RANK_BYTE] & _VALIDATED_BITS)
        rrset = self._get_by_key(rrset_key, name, rdtype, now, Rank.ANSWER)
        if rrset is None or security is None:
            return None
        sigs_key = key_of(key, dns.rdatatype.RRSIG) + rrset_key[-2:]
        sigs = self._get_by_key(sigs_key, name, dns.rdatatype.RRSIG, now)
        return rrset, security, sigs

    def export(self, now: float) -> list[tuple[bytes, tuple[bytes, ...], float, int, int]]:
        """Live entries as (key, rdatas, stored_at, ttl, rank), for saving across a restart."""
        rows = []
        for key, entry in self._entries.data.items():
            if key[-3]:  # the RRSIGs kept beside a validated RRset (not the root label)
                continue
            stored_at, ttl, rank = entry_head(entry)
            if stored_at + ttl > now:
                rows.append((key, tuple(entry_rdatas(entry)), stored_at, ttl, rank))
        return rows

    def restore(
        self, key: bytes, rdatas: list[bytes], stored_at: float, ttl: int, rank: int
    ) -> None:
        """Put back an exported entry with its original store time, so its TTL has kept
        counting down while the resolver was stopped."""
        self._entries.put(key, pack_entry(rdatas, stored_at, ttl, Rank(rank)))
        if key[-2:] == _DNAME_TYPE:
            self.dnames_stored += 1

    def dname_above(
        self,
        name: dns.name.Name,
        now: float,
        min_rank: Rank = Rank.ANSWER,
        *,
        key: NameKey | None = None,
    ) -> WireRRset | None:
        """The live DNAME closest above ``name`` (owned by a strict ancestor), which
        redirects it (RFC 6672 §2.3, §3.2; Unbound looks for one before a CNAME). Walks
        the ancestors only once any DNAME has been stored."""
        if not self.dnames_stored:
            return None
        wire: bytes = name_key(name) if key is None else key
        while wire != b"\x00":
            wire = wire[1 + wire[0] :]
            dname = self._get_by_key(wire + _DNAME_TYPE, None, dns.rdatatype.DNAME, now, min_rank)
            if dname is not None:
                return dname
        return None

    def closest_cut(
        self, qname: dns.name.Name, now: float, *, key: NameKey | None = None
    ) -> ZoneCut | None:
        """The deepest zone cut at or above ``qname`` (keyed ``key`` when the caller has it)
        whose NS RRset is cached, with the addresses of its name servers that are cached too
        (RFC 1034 §5.3.3 step 2)."""
        wire = name_key(qname) if key is None else key
        whole = len(wire)
        while True:
            ns = self._get_by_key(key_of(wire, dns.rdatatype.NS), None, dns.rdatatype.NS, now)
            if ns is not None:  # the zone's dnspython name built only here
                zone = qname if len(wire) == whole else name_from_wire(wire)
                cut = ZoneCut(zone, {}, zone_key=wire)
                for rdata in ns.rdatas:
                    target = key_of_wire(rdata)
                    cut.nameservers[target] = self._addresses_at(target, now)
                    if self._parent_side:
                        fallback = self.parent_side_addresses(target, now)
                        if fallback:
                            cut.fallback[target] = fallback
                return cut
            if wire == b"\x00":
                return None
            wire = parent_key(wire)

    def _addresses_at(self, owner_key: NameKey, now: float) -> list[str]:
        """The live cached A and AAAA addresses of ``owner_key`` (lower-cased wire name)."""
        found = [
            rrset
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            if (rrset := self._get_by_key(key_of(owner_key, rdtype), None, rdtype, now)) is not None
        ]
        return addresses_of(found, owner_key)

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget RRsets owned by ``name`` (or below it with ``subtree``), or all."""
        self._parent_side.remove_where(owner_in(name, subtree))
        return self._entries.remove_where(owner_in(name, subtree))
