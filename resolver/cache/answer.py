"""The answer cache: whole responses as wire bytes, served without dnspython (the hot path).

An entry is the response the slow path rendered for a query (ID 0), with the offsets of its
TTL fields. A hit copies the bytes and patches the ID, the question's letter case and the
aged TTLs (RFC 1035 §3.2.1; RFC 2308 §5 for the SOA of negative answers); a reply larger than
the client's UDP size becomes header + question + OPT with TC set (RFC 2181 §9). An entry
never outlives its smallest TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dns.name

from resolver.cache.lru import BoundedCache, SizedLRU, owner_in
from resolver.model import Transport
from resolver.wire import (
    FastQuery,
    age_ttls,
    answer_for,
    pack_ttl_offsets,
    query_from_key,
    read_fast_query,
    set_ttls,
    truncated_reply,
    ttl_offsets,
)

PREFETCH_DIVISOR = 10
"""Prefetch when less than a tenth of the TTL is left (Unbound's ``prefetch``)."""

STALE_ANSWER_TTL = 30
"""RFC 8767 §4: the TTL of a stale answer."""

_ENTRY_OVERHEAD = 250
"""Bytes an entry costs beyond its wire bytes: the entry object, its float and int, the
bytes headers, the key, its place in the LRU (tracemalloc: about 315 bytes for an A answer)."""


@dataclass(slots=True)
class AnswerEntry:
    wire: bytes
    offsets: bytes  # packed (offset: H, ttl: I) pairs
    stored_at: float
    ttl: int  # the smallest TTL when stored
    kind: int  # index of (QTYPE, RCODE) in AnswerCache.kinds, for counting hits cheaply
    refreshing: bool = False  # a prefetch is in flight
    stale_retry_at: float = 0.0  # serve-stale: no new refresh before this (RFC 8767 §4)

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl

    @property
    def cost(self) -> int:
        return _ENTRY_OVERHEAD + len(self.wire) + len(self.offsets)


@dataclass(slots=True)
class AnswerCacheCounters:
    hits: int = 0
    misses: int = 0
    expired: int = 0
    stored: int = 0
    prefetches: int = 0
    stale_answers: int = 0


def _entry_cost(entry: AnswerEntry) -> int:
    return entry.cost


class AnswerCache(BoundedCache):
    """Rendered answers keyed by :attr:`FastQuery.key`, bounded in bytes, least recently
    used evicted first."""

    def __init__(
        self,
        max_bytes: int,
        *,
        stale_s: float = 0.0,
        on_prefetch: Callable[[bytes], None] | None = None,
    ) -> None:
        self._entries: SizedLRU[bytes, AnswerEntry] = SizedLRU(max_bytes, _entry_cost)
        self._data = self._entries.data  # the hot path touches the OrderedDict directly
        self.counters = AnswerCacheCounters()
        self.kinds: list[tuple[bytes, int]] = []
        """(QTYPE in wire form, RCODE) of the answers stored so far; entries point here."""
        self._kind_index: dict[tuple[bytes, int], int] = {}
        self.hits_by_kind: dict[Transport, list[int]] = {Transport.UDP: [], Transport.TCP: []}
        """Hits per transport and kind: one list index bumped per hit, read at scrape time."""
        self.stale_s = stale_s
        """How long past expiry an entry is kept for serve-stale (0: not kept)."""
        self.on_prefetch = on_prefetch
        """Called with the key of an entry asked for in the last tenth of its TTL, once per
        entry (Unbound's ``prefetch``), so popular names never fall out of the cache."""

    def store(self, key: bytes, reply_wire: bytes, question_end: int, now: float) -> bool:
        """Keep a rendered reply; False when it cannot be cached (no TTL, or TTL 0)."""
        offsets = ttl_offsets(reply_wire)
        if not offsets:
            return False
        ttl = min(t for _, t in offsets)
        if ttl <= 0 or len(reply_wire) > 0xFFFF:
            return False
        wire = b"\x00\x00" + reply_wire[2:]
        packed = pack_ttl_offsets(offsets)
        kind = self._kind(key[-5:-3], reply_wire[3] & 0xF)
        self._entries.put(key, AnswerEntry(wire, packed, now, ttl, kind))
        self.counters.stored += 1
        return True

    def _kind(self, qtype: bytes, rcode: int) -> int:
        kind = self._kind_index.get((qtype, rcode))
        if kind is None:
            kind = len(self.kinds)
            self.kinds.append((qtype, rcode))
            self._kind_index[(qtype, rcode)] = kind
            for counts in self.hits_by_kind.values():
                counts.append(0)
        return kind

    def lookup(
        self, query: FastQuery, query_wire: bytes, now: float, limit: int, counts: list[int]
    ) -> bytes | None:
        """The patched reply for ``query_wire``, or None on a miss. ``limit`` is the largest
        reply the transport may carry (the client's UDP size, or 65535 over TCP); ``counts``
        is the transport's list in :attr:`hits_by_kind`."""
        key = query.key
        entry = self._data.get(key)
        if entry is None:
            self.counters.misses += 1
            return None
        if now >= entry.expires_at:
            if now >= entry.expires_at + self.stale_s:
                self._entries.pop(key)
                self.counters.expired += 1
            self.counters.misses += 1
            return None
        self._data.move_to_end(key)
        self.counters.hits += 1
        counts[entry.kind] += 1
        if (
            self.on_prefetch is not None
            and not entry.refreshing
            and (entry.expires_at - now) * PREFETCH_DIVISOR < entry.ttl
        ):
            entry.refreshing = True
            self.counters.prefetches += 1
            self.on_prefetch(key)
        end = query.question_end
        if len(entry.wire) > limit:
            return bytes(answer_for(truncated_reply(entry.wire, end), query_wire, end))
        reply = answer_for(entry.wire, query_wire, end)
        age = int(now - entry.stored_at)
        if age > 0:
            age_ttls(reply, entry.offsets, age)
        return bytes(reply)

    def export(self, now: float) -> list[tuple[bytes, bytes, float, float]]:
        """Live entries as (key, wire, stored_at, expires_at), for saving across a restart."""
        return [
            (key, e.wire, e.stored_at, e.expires_at)
            for key, e in self._data.items()
            if e.expires_at + self.stale_s > now
        ]

    def restore(self, key: bytes, wire: bytes, stored_at: float, expires_at: float) -> None:
        """Put back an exported entry; its TTLs keep counting from when it was stored."""
        del expires_at  # stored_at and the records' TTLs give it again
        query = read_fast_query(query_from_key(key))
        if query is not None:
            self.store(key, wire, query.question_end, stored_at)

    def stale(self, key: bytes, now: float) -> AnswerEntry | None:
        """An expired entry still inside the serve-stale window (RFC 8767 §4), or None."""
        entry = self._entries.peek(key)
        if entry is None or not entry.expires_at <= now < entry.expires_at + self.stale_s:
            return None
        return entry

    def stale_reply(self, entry: AnswerEntry, question_end: int, query_wire: bytes) -> bytes:
        """``entry`` patched for ``query_wire`` with every TTL set to the stale-answer TTL
        (RFC 8767 §4: 30 seconds)."""
        self.counters.stale_answers += 1
        reply = answer_for(entry.wire, query_wire, question_end)
        set_ttls(reply, entry.offsets, STALE_ANSWER_TTL)
        return bytes(reply)

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget answers for ``name`` (and below it with ``subtree``), or all; returns how
        many entries went."""
        return self._entries.remove_where(owner_in(name, subtree))
