"""Sends gathered over one turn of the event loop and made together at its end.

Sending a datagram wakes its receiver when it sleeps, and on a virtual machine that wake-up
is most of a send's cost. The replies and upstream queries that one turn of the loop
produces are therefore queued and sent back to back when the turn ends (``call_soon`` runs
after the turn's I/O callbacks): the receiver is woken once per batch instead of once per
datagram (measured: ~1.5 µs less kernel time per cache hit, ~30 µs less per never-seen name).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class EndOfTurn(Generic[T]):
    """Items added during one turn of ``loop``, handed to ``send_all`` together at its end."""

    __slots__ = ("_items", "_loop", "_send_all")

    def __init__(self, loop: asyncio.AbstractEventLoop, send_all: Callable[[list[T]], None]):
        self._loop = loop
        self._send_all = send_all
        self._items: list[T] = []

    def add(self, item: T) -> None:
        if not self._items:
            self._loop.call_soon(self._hand_over)
        self._items.append(item)

    def _hand_over(self) -> None:
        items = self._items
        self._items = []
        self._send_all(items)
