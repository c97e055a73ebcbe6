"""A least-recently-used map bounded in bytes, counting evictions.

Built on ``OrderedDict`` (``move_to_end`` and ``popitem`` are C). cachetools' ``LRUCache``
was the first choice and was measured out: it keeps three dict entries per item (210 bytes
per entry against 105 for an ``OrderedDict``, tracemalloc, 100,000 keys) and its Python-level
bookkeeping cost 1.3 µs of a 4 µs cache hit (``benchmarks/hit_path.py``); both budgets
(memory per cached name, hits per CPU-second) are set against Unbound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import dns.name

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """Entries cost ``cost(entry)`` bytes; the least recently used go first when full."""

    def __init__(self, max_bytes: int, cost: Callable[[V], int]) -> None:
        self.data: OrderedDict[K, V] = OrderedDict()
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self.evictions = 0
        self._cost = cost

    def get(self, key: K) -> V | None:
        """The entry, marked as just used; None when absent."""
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The entry, without marking it used."""
        return self.data.get(key)

    def put(self, key: K, value: V) -> None:
        cost = self._cost(value)
        if cost > self.max_bytes:
            return  # larger than the whole cache: never stored
        self.pop(key)
        while self.bytes_used + cost > self.max_bytes:
            _key, old = self.data.popitem(last=False)
            self.bytes_used -= self._cost(old)
            self.evictions += 1
        self.data[key] = value
        self.bytes_used += cost

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
