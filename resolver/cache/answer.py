"""The answer cache: whole responses as wire bytes, served without dnspython (the hot path).

An entry is the response the slow path rendered for a query (ID 0), with the offsets of its
TTL fields. A hit copies the bytes and patches the ID, the question's letter case and the
aged TTLs (RFC 1035 §3.2.1; RFC 2308 §5 for the SOA of negative answers); a reply larger than
the client's UDP size becomes header + question + OPT with TC set (RFC 2181 §9). An entry
never outlives its smallest TTL.
"""

from __future__ import annotations

import struct
import sys
from collections import OrderedDict
from dataclasses import dataclass

import dns.name

from resolver.wire import FastQuery, truncated_reply, ttl_offsets

_OFFSET = struct.Struct("!HI")
_TTL = struct.Struct("!I")
_ENTRY_OVERHEAD = 400
"""Bytes an entry costs beyond its byte strings: the entry object, its place in the LRU's
dict and order list, the key object (measured with sys.getsizeof and tracemalloc)."""


@dataclass(slots=True)
class AnswerEntry:
    wire: bytes
    truncated: bytes
    offsets: bytes  # packed (offset: H, ttl: I) pairs
    stored_at: float
    expires_at: float
    ttl: int  # the smallest TTL when stored
    cost: int


@dataclass(slots=True)
class AnswerCacheCounters:
    hits: int = 0
    misses: int = 0
    expired: int = 0
    stored: int = 0


class AnswerCache:
    """Rendered answers keyed by :attr:`FastQuery.key`, bounded in bytes, least recently
    used evicted first.

    The LRU is an ``OrderedDict`` used directly rather than :class:`SizedLRU` (cachetools):
    on the hit path cachetools' Python-level bookkeeping cost about 1.3 µs per hit, a third
    of the whole path (``benchmarks/hit_path.py``); ``OrderedDict.move_to_end`` is C.
    """

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[bytes, AnswerEntry] = OrderedDict()
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self.evictions = 0
        self.counters = AnswerCacheCounters()

    def __len__(self) -> int:
        return len(self._entries)

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes_used -= entry.cost

    def _put(self, key: bytes, entry: AnswerEntry) -> None:
        if entry.cost > self.max_bytes:
            return
        self._remove(key)
        while self.bytes_used + entry.cost > self.max_bytes:
            _key, old = self._entries.popitem(last=False)
            self.bytes_used -= old.cost
            self.evictions += 1
        self._entries[key] = entry
        self.bytes_used += entry.cost

    def store(self, key: bytes, reply_wire: bytes, question_end: int, now: float) -> bool:
        """Keep a rendered reply; False when it cannot be cached (no TTL, or TTL 0)."""
        offsets = ttl_offsets(reply_wire)
        if not offsets:
            return False
        ttl = min(t for _, t in offsets)
        if ttl <= 0 or len(reply_wire) > 0xFFFF:
            return False
        wire = b"\x00\x00" + reply_wire[2:]
        packed = b"".join(_OFFSET.pack(o, t) for o, t in offsets)
        truncated = truncated_reply(wire, question_end)
        cost = _ENTRY_OVERHEAD + sys.getsizeof(key) + len(wire) + len(truncated) + len(packed) + 99
        entry = AnswerEntry(wire, truncated, packed, now, now + ttl, ttl, cost)
        self._put(key, entry)
        self.counters.stored += 1
        return True

    def lookup(self, query: FastQuery, query_wire: bytes, now: float, limit: int) -> bytes | None:
        """The patched reply for ``query_wire``, or None on a miss. ``limit`` is the largest
        reply the transport may carry (the client's UDP size, or 65535 over TCP)."""
        key = query.key
        entry = self._entries.get(key)
        if entry is None:
            self.counters.misses += 1
            return None
        if now >= entry.expires_at:
            self._remove(key)
            self.counters.expired += 1
            self.counters.misses += 1
            return None
        self._entries.move_to_end(key)
        self.counters.hits += 1
        end = query.question_end
        if len(entry.wire) > limit:
            reply = bytearray(entry.truncated)
            reply[0:2] = query_wire[0:2]
            reply[12:end] = query_wire[12:end]
            return bytes(reply)
        reply = bytearray(entry.wire)
        reply[0:2] = query_wire[0:2]
        reply[12:end] = query_wire[12:end]  # the question as asked: ID-free, case kept
        age = int(now - entry.stored_at)
        if age > 0:
            pack_ttl = _TTL.pack_into
            for offset, ttl in _OFFSET.iter_unpack(entry.offsets):
                pack_ttl(reply, offset, ttl - age if ttl > age else 0)
        return bytes(reply)

    def remaining_fraction(self, key: bytes, now: float) -> float:
        """How much of the entry's TTL is left (1.0 fresh, 0.0 expired or absent)."""
        entry = self._entries.get(key)
        if entry is None or entry.ttl <= 0:
            return 0.0
        return max(0.0, (entry.expires_at - now) / entry.ttl)

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget answers for ``name`` (and below it with ``subtree``), or all; returns how
        many entries went."""
        if name is None:
            count = len(self._entries)
            self._entries.clear()
            self.bytes_used = 0
            return count
        removed = 0
        for key in list(self._entries):
            owner = dns.name.from_wire(key, 0)[0]
            if owner == name or (subtree and owner.is_subdomain(name)):
                self._remove(key)
                removed += 1
        return removed
