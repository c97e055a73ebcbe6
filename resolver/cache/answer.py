"""The answer cache: whole responses as wire bytes, served without dnspython (the hot path).

An entry is the response the slow path rendered for a query (ID 0), with the offsets of its
TTL fields. A hit copies the bytes and patches the ID, the question's letter case and the
aged TTLs (RFC 1035 §3.2.1; RFC 2308 §5 for the SOA of negative answers); a reply larger than
the client's UDP size becomes header + question + OPT with TC set (RFC 2181 §9). An entry
never outlives its smallest TTL.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import NamedTuple

import dns.name

from resolver.cache.lru import BoundedCache, CacheSize, SizedLRU, owner_in
from resolver.memo import remember
from resolver.model import Transport
from resolver.wire import (
    FastQuery,
    age_ttls,
    answer_for,
    is_cacheable_question,
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

_ENTRY_OVERHEAD = 130
"""Bytes an entry costs beyond its packed bytes: the bytes header, the key, its dict slot
(tracemalloc: about 213 bytes in all for an A answer, about 85 of them packed)."""

_HEAD = struct.Struct("!dIHH")  # stored_at, smallest TTL, kind, length of the TTL offsets


class AnswerEntry(NamedTuple):
    """One stored answer, unpacked (the cache keeps it packed in one byte string: an
    object with fields, its float and a second byte string cost 150 bytes more per name)."""

    wire: bytes
    offsets: bytes  # packed (offset: H, ttl: I) pairs
    stored_at: float
    ttl: int  # the smallest TTL when stored
    kind: int  # index of (QTYPE, RCODE) in AnswerCache.kinds, for counting hits cheaply

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl


def pack_answer(wire: bytes, offsets: bytes, stored_at: float, ttl: int, kind: int) -> bytes:
    """An answer as one byte string: the head, the packed TTL offsets, the reply."""
    return _HEAD.pack(stored_at, ttl, kind, len(offsets)) + offsets + wire


def unpack_answer(packed: bytes) -> AnswerEntry:
    stored_at, ttl, kind, offsets_length = _HEAD.unpack_from(packed)
    start = _HEAD.size + offsets_length
    return AnswerEntry(packed[start:], packed[_HEAD.size : start], stored_at, ttl, kind)


def _entry_cost(packed: bytes) -> int:
    return _ENTRY_OVERHEAD + len(packed)


_MAX_REMEMBERED_KEYS = 10_000

_MAX_READY_REPLIES = 4_096
"""Ready replies kept per transport at most (each ~250 bytes): the queries seen this second."""


class ReadyReply(NamedTuple):
    """The reply to one exact query (its bytes after the ID), TTLs aged, kept for the rest
    of the second in which they read the same: a repeat of that query is answered with its
    ID + ``tail``, without reading it again. Everything a hit decides (key, letter case,
    UDP size) follows from those bytes."""

    valid_until: float
    """When the aged TTLs next change, or the entry's prefetch check or expiry is due."""
    key: bytes
    packed: bytes
    """The stored entry the reply was made from: valid only while it is still the one
    under ``key`` (not replaced, flushed or evicted)."""
    tail: bytes
    kind: int


@dataclass(slots=True)
class AnswerCacheCounters:
    hits: int = 0
    misses: int = 0
    expired: int = 0
    stored: int = 0
    prefetches: int = 0
    stale_answers: int = 0


@dataclass(frozen=True, slots=True)
class AnswerCacheStats:
    """What the answer cache has done, read at scrape time (:meth:`AnswerCache.stats`)."""

    counters: AnswerCacheCounters
    """A copy of the counters."""
    hits: dict[tuple[str, bytes, int], int]
    """Hits by (transport, QTYPE in wire form, RCODE)."""
    size: CacheSize


class PrefetchDue(NamedTuple):
    """A hit whose entry is in the last tenth of its TTL (Unbound's ``prefetch``): send
    ``reply`` and refresh the entry of ``key`` (the query's cache key). Made on the hot path
    once per entry, so the common hit stays a plain ``bytes`` return."""

    reply: bytes
    key: bytes


_UDP = Transport.UDP
_TCP = Transport.TCP
_DOT = Transport.DOT

_TCP_LIMIT = 0xFFFF
"""The largest reply over TCP: its two-octet length prefix (RFC 1035 §4.2.2)."""


class AnswerCache(BoundedCache):
    """Rendered answers keyed by :attr:`FastQuery.key`, bounded in bytes, least recently
    used evicted first."""

    def __init__(self, max_bytes: int, *, stale_s: float = 0.0) -> None:
        self._entries: SizedLRU[bytes, bytes] = SizedLRU(max_bytes, _entry_cost)
        self._data = self._entries.data  # the hot path touches the dict directly
        self._refreshing: dict[bytes, float] = {}
        """Keys whose prefetch was due, with the store time of the entry it refreshes."""
        self._stale_retry_at: dict[bytes, float] = {}
        """Serve-stale: no new refresh of these keys before the time given (RFC 8767 §4)."""
        self.counters = AnswerCacheCounters()
        self.kinds: list[tuple[bytes, int]] = []
        """(QTYPE in wire form, RCODE) of the answers stored so far; entries point here."""
        self._kind_index: dict[tuple[bytes, int], int] = {}
        self._udp_hits: list[int] = []
        self._tcp_hits: list[int] = []
        self._dot_hits: list[int] = []
        self._doh_hits: list[int] = []
        """Hits per transport and kind: one list index bumped per hit, read by :meth:`stats`."""
        self._udp_ready: dict[bytes, ReadyReply] = {}
        self._tcp_ready: dict[bytes, ReadyReply] = {}
        """Replies ready for repeats of exact queries, for UDP and for the stream transports
        (TCP, DoT and DoH all carry 65535 octets: their size limits differ from UDP's), keyed
        by the query's bytes after its ID; see :meth:`hit`."""
        self.stale_s = stale_s
        """How long past expiry an entry is kept for serve-stale (0: not kept)."""

    def store(self, key: bytes, reply_wire: bytes, question_end: int, now: float) -> bool:
        """Keep a rendered reply; False when it cannot be cached (no TTL, or TTL 0)."""
        offsets = ttl_offsets(reply_wire)
        if not offsets:
            return False
        ttl = min(t for _, t in offsets)
        if ttl <= 0 or len(reply_wire) > 0xFFFF:
            return False
        wire = b"\x00\x00" + reply_wire[2:]
        kind = self._kind(key[-5:-3], reply_wire[3] & 0xF)
        self._entries.put(key, pack_answer(wire, pack_ttl_offsets(offsets), now, ttl, kind))
        self._refreshing.pop(key, None)
        self._stale_retry_at.pop(key, None)
        self.counters.stored += 1
        return True

    def _kind(self, qtype: bytes, rcode: int) -> int:
        kind = self._kind_index.get((qtype, rcode))
        if kind is None:
            kind = len(self.kinds)
            self.kinds.append((qtype, rcode))
            self._kind_index[(qtype, rcode)] = kind
            for counts in (self._udp_hits, self._tcp_hits, self._dot_hits, self._doh_hits):
                counts.append(0)
        return kind

    def hit(
        self, query_wire: bytes, now: float, transport: Transport
    ) -> bytes | PrefetchDue | FastQuery | None:
        """The hot path: the reply to a client's query from the cache, patched for it.

        Returns one of:

        - ``bytes``: the reply (a hit);
        - :class:`PrefetchDue`: a hit on an entry in the last tenth of its TTL: send its
          ``reply`` and refresh ``key`` (Unbound's ``prefetch``; due once per entry);
        - :class:`~resolver.wire.FastQuery`: a miss; the plain query as read, for the slow
          path to take on without reading it again;
        - None: not a plain query (the slow path reads it with dnspython).

        A repeat of a query answered earlier this second (its bytes after the ID the same)
        is one dict lookup and the ID put in front of the kept reply. Hits are counted
        per transport and kind (:meth:`stats`).
        """
        if transport is _UDP:  # no dict keyed by the enum: Enum.__hash__ is Python
            ready = self._udp_ready
            counts = self._udp_hits
        else:  # the stream transports: UDP's path stays one test
            ready = self._tcp_ready
            if transport is _TCP:
                counts = self._tcp_hits
            else:
                counts = self._dot_hits if transport is _DOT else self._doh_hits
        kept = ready.get(query_wire[2:])
        if kept is not None and now < kept.valid_until and self._data.get(kept.key) is kept.packed:
            self.counters.hits += 1
            counts[kept.kind] += 1
            return query_wire[:2] + kept.tail
        query = read_fast_query(query_wire)
        if query is None:
            return None
        limit = query.udp_limit if transport is _UDP else _TCP_LIMIT
        reply = self._lookup(query, query_wire, now, limit, counts, ready=ready)
        return query if reply is None else reply

    def _lookup(
        self,
        query: FastQuery,
        query_wire: bytes,
        now: float,
        limit: int,
        counts: list[int],
        *,
        ready: dict[bytes, ReadyReply],
    ) -> bytes | PrefetchDue | None:
        """The patched reply for ``query_wire``, or None on a miss. ``limit`` is the largest
        reply the transport may carry (the client's UDP size, or 65535 over TCP); ``counts``
        is the transport's hit counts. The reply is kept in ``ready`` (the transport's ready
        replies) for repeats of the query."""
        key = query.key
        data = self._data
        packed = data.pop(key, None)
        if packed is None:
            self.counters.misses += 1
            return None
        stored_at, ttl, kind, offsets_length = _HEAD.unpack_from(packed)
        expires_at = stored_at + ttl
        if now >= expires_at:
            data[key] = packed  # kept for serve-stale, or dropped with its cost just below
            if now >= expires_at + self.stale_s:
                self._entries.pop(key)
                self.counters.expired += 1
            self.counters.misses += 1
            return None
        data[key] = packed  # now the most recently used
        self.counters.hits += 1
        counts[kind] += 1
        prefetch_due = (expires_at - now) * PREFETCH_DIVISOR < ttl and self._refreshing.get(
            key
        ) != stored_at
        if prefetch_due:
            remember(self._refreshing, key, stored_at, _MAX_REMEMBERED_KEYS)
            self.counters.prefetches += 1
        end = query.question_end
        start = _HEAD.size + offsets_length
        if len(packed) - start > limit:
            answer = bytes(answer_for(truncated_reply(packed[start:], end), query_wire, end))
            return PrefetchDue(answer, key) if prefetch_due else answer
        reply = answer_for(memoryview(packed)[start:], query_wire, end)
        age = int(now - stored_at)
        if age > 0:
            age_ttls(reply, packed[_HEAD.size : start], age)
        answer = bytes(reply)
        next_check = expires_at - ttl / PREFETCH_DIVISOR  # prefetch is decided after
        if next_check < now:
            next_check = expires_at
        next_age = stored_at + age + 1
        valid_until = next_age if next_age < next_check else next_check
        remember(
            ready,
            query_wire[2:],
            ReadyReply(valid_until, key, packed, answer[2:], kind),
            _MAX_READY_REPLIES,
        )
        return PrefetchDue(answer, key) if prefetch_due else answer

    def stats(self) -> AnswerCacheStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        kinds = list(self.kinds)
        hits = {
            (transport.value, *kinds[kind]): count
            for transport, counts in (
                (Transport.UDP, self._udp_hits),
                (Transport.TCP, self._tcp_hits),
                (Transport.DOT, self._dot_hits),
                (Transport.DOH, self._doh_hits),
            )
            for kind, count in enumerate(list(counts))
        }
        return AnswerCacheStats(dataclasses.replace(self.counters), hits, self.size())

    def export(self, now: float) -> list[tuple[bytes, bytes, float, float]]:
        """Live entries as (key, wire, stored_at, expires_at), for saving across a restart."""
        entries = ((key, unpack_answer(packed)) for key, packed in self._data.items())
        return [
            (key, e.wire, e.stored_at, e.expires_at)
            for key, e in entries
            if e.expires_at + self.stale_s > now
        ]

    def restore(self, key: bytes, wire: bytes, stored_at: float, expires_at: float) -> None:
        """Put back an exported entry; its TTLs keep counting from when it was stored."""
        del expires_at  # stored_at and the records' TTLs give it again
        query_wire = query_from_key(key)
        query = read_fast_query(query_wire)
        if query is not None and is_cacheable_question(query_wire, query):
            self.store(key, wire, query.question_end, stored_at)

    def stale(self, key: bytes, now: float) -> AnswerEntry | None:
        """An expired entry still inside the serve-stale window (RFC 8767 §4), or None."""
        packed = self._entries.peek(key)
        if packed is None:
            return None
        entry = unpack_answer(packed)
        if not entry.expires_at <= now < entry.expires_at + self.stale_s:
            return None
        return entry

    def stale_retry_at(self, key: bytes) -> float:
        """When a refresh of the stale entry at ``key`` may be tried again."""
        return self._stale_retry_at.get(key, 0.0)

    def hold_stale_retries(self, key: bytes, until: float) -> None:
        """A refresh failed: serve the stale entry without retrying until ``until``."""
        remember(self._stale_retry_at, key, until, _MAX_REMEMBERED_KEYS)

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
