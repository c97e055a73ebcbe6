"""A least-recently-used map bounded in bytes, counting evictions (cachetools underneath)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

import cachetools


class Costed(Protocol):
    @property
    def cost(self) -> int:
        """Approximate bytes this entry and its key hold."""
        ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Costed)


def _cost(value: Costed) -> int:
    return value.cost


class _CountingLRU(cachetools.LRUCache[K, V]):
    evictions: int = 0

    def popitem(self) -> tuple[K, V]:
        item = super().popitem()
        self.evictions += 1
        return item


class SizedLRU(Generic[K, V]):
    """Entries cost ``entry.cost`` bytes; the least recently used go first when full."""

    def __init__(self, max_bytes: int) -> None:
        self._data: _CountingLRU[K, V] = _CountingLRU(maxsize=max_bytes, getsizeof=_cost)

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        if value.cost <= self._data.maxsize:  # larger than the whole cache: never stored
            self._data[key] = value

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def items(self) -> list[tuple[K, V]]:
        return list(self._data.items())

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def bytes_used(self) -> int:
        return int(self._data.currsize)

    @property
    def max_bytes(self) -> int:
        return int(self._data.maxsize)

    @property
    def evictions(self) -> int:
        return self._data.evictions
