"""Small memos on hot paths: plain dicts that forget everything at once when full.

Keeping them exact (least recently used first) would cost more bookkeeping than the lookups
they save; a memo that starts over now and then only recomputes what it forgot.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, max_entries: int) -> V:
    """Store ``value`` under ``key``, first emptying ``memo`` if it holds ``max_entries``;
    returns ``value``."""
    if len(memo) >= max_entries:
        memo.clear()
    memo[key] = value
    return value
