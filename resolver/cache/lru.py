"""A least-recently-used map bounded in bytes, counting evictions.

Built on a plain ``dict``, which keeps insertion order: a use moves an entry to the end by
taking it out and putting it back, and the least recently used entries are at the front.
A dict slot costs 52 bytes against 105 for an ``OrderedDict`` and 210 for cachetools'
``LRUCache`` (tracemalloc, 100,000 keys), and cachetools' Python-level bookkeeping cost 1.3
µs of a 4 µs cache hit (``benchmarks/hit_path.py``); both budgets (memory per cached name,
hits per CPU-second) are set against Unbound.

Eviction takes a batch (a sixty-fourth of the budget) at a time: entries removed from the
front of a dict leave holes that every pass from the front walks over until the dict is
next resized, so one pass per batch keeps that walk cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dns.name

EVICTION_BATCH_DIVISOR = 64
"""An eviction frees this fraction of the budget beyond what the new entry needs."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """Entries cost ``cost(entry)`` bytes; the least recently used go first when full."""

    def __init__(self, max_bytes: int, cost: Callable[[V], int]) -> None:
        self.data: dict[K, V] = {}
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self.evictions = 0
        self._cost = cost

    def get(self, key: K) -> V | None:
        """The entry, marked as just used; None when absent."""
        value = self.data.pop(key, None)
        if value is not None:
            self.data[key] = value
        return value

    def peek(self, key: K) -> V | None:
        """The entry, without marking it used."""
        return self.data.get(key)

    def put(self, key: K, value: V) -> None:
        cost = self._cost(value)
        if cost > self.max_bytes:
            return  # larger than the whole cache: never stored
        self.pop(key)
        if self.bytes_used + cost > self.max_bytes:
            self._evict(self.max_bytes - cost - self.max_bytes // EVICTION_BATCH_DIVISOR)
        self.data[key] = value
        self.bytes_used += cost

    def _evict(self, down_to: int) -> None:
        """Remove the least recently used entries until at most ``down_to`` bytes are used."""
        used = self.bytes_used
        doomed: list[K] = []
        for key, value in self.data.items():
            if used <= down_to:
                break
            used -= self._cost(value)
            doomed.append(key)
        for key in doomed:
            del self.data[key]
        self.evictions += len(doomed)
        self.bytes_used = used

    def pop(self, key: K) -> None:
        value = self.data.pop(key, None)
        if value is not None:
            self.bytes_used -= self._cost(value)

    def remove_where(self, doomed: Callable[[K], bool]) -> int:
        """Remove every entry whose key ``doomed`` picks; returns how many."""
        keys = [key for key in self.data if doomed(key)]
        for key in keys:
            self.pop(key)
        return len(keys)

    def clear(self) -> int:
        count = len(self.data)
        self.data.clear()
        self.bytes_used = 0
        return count

    def __len__(self) -> int:
        return len(self.data)


def owner_in(name: dns.name.Name | None, subtree: bool) -> Callable[[bytes], bool]:
    """A predicate on cache keys (owner name in wire form first): the owner is ``name``, or
    below it with ``subtree``. For flushing one name, a subtree, or (``name`` None) all."""
    if name is None:
        return lambda _key: True

    def matches(key: bytes) -> bool:
        owner = dns.name.from_wire(key, 0)[0]
        return owner == name or (subtree and owner.is_subdomain(name))

    return matches


@dataclass(frozen=True, slots=True)
class CacheSize:
    """How full a cache is, read at scrape time (:meth:`BoundedCache.size`)."""

    entries: int
    bytes_used: int
    evictions: int
    """Entries evicted so far to stay within the size limit."""


class BoundedCache:
    """What every cache reports about its size (entries, bytes, evictions) from its LRU."""

    _entries: SizedLRU[Any, Any]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._entries.bytes_used

    @property
    def evictions(self) -> int:
        return self._entries.evictions

    def size(self) -> CacheSize:
        """A read-only view of :meth:`__len__`, :attr:`bytes_used` and :attr:`evictions`."""
        entries = self._entries
        return CacheSize(len(entries), entries.bytes_used, entries.evictions)
