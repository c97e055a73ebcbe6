"""The clients waiting on the mesh's jobs, with their timers (sans-IO, monotonic seconds).

Each waiter has a deadline (``client_deadline_s`` after it asked) and, when it has a stale
answer at hand, a serve-stale wait (RFC 8767 §5). Their due instants sit in one heap; an
entry whose waiter is gone (answered, released) or was disarmed is skipped when it reaches
the top, so ending a wait costs no search.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass


class Timer(enum.Enum):
    DEADLINE = 0
    STALE = 1


@dataclass(slots=True)
class Waiter:
    """One client waiting on job ``job_id``; a timer set to None is disarmed."""

    job_id: int
    deadline_at: float
    stale_at: float | None

    def due(self, timer: Timer) -> float | None:
        return self.deadline_at if timer is Timer.DEADLINE else self.stale_at


class Waiters:
    """Waiters by id, and the heap of their timers."""

    def __init__(self) -> None:
        self._waiters: dict[int, Waiter] = {}
        self._ids = itertools.count(1)
        self._heap: list[tuple[float, int, Timer]] = []

    def add(self, job_id: int, deadline_at: float, stale_at: float | None) -> int:
        """A new waiter on ``job_id``; returns its id."""
        waiter_id = next(self._ids)
        self._waiters[waiter_id] = Waiter(job_id, deadline_at, stale_at)
        heapq.heappush(self._heap, (deadline_at, waiter_id, Timer.DEADLINE))
        if stale_at is not None:
            heapq.heappush(self._heap, (stale_at, waiter_id, Timer.STALE))
        return waiter_id

    def get(self, waiter_id: int) -> Waiter | None:
        return self._waiters.get(waiter_id)

    def pop(self, waiter_id: int) -> Waiter | None:
        """Forget a waiter (answered or gone); its timers will be skipped."""
        return self._waiters.pop(waiter_id, None)

    def next_due(self) -> float | None:
        """The earliest instant a standing timer is due, or None."""
        heap = self._heap
        while heap and not self._stands(*heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, at: float) -> Iterator[tuple[int, Waiter, Timer]]:
        """The standing timers due at ``at``, earliest first; each is disarmed as it is
        given (the caller may forget the waiter meanwhile)."""
        heap = self._heap
        while heap and heap[0][0] <= at:
            due_at, waiter_id, timer = heapq.heappop(heap)
            if not self._stands(due_at, waiter_id, timer):
                continue
            waiter = self._waiters[waiter_id]
            if timer is Timer.STALE:
                waiter.stale_at = None
            yield waiter_id, waiter, timer

    def is_empty(self) -> bool:
        """No waiter and no timer entry left (:meth:`next_due` drops the dead entries)."""
        return not self._waiters and self.next_due() is None

    def _stands(self, due_at: float, waiter_id: int, timer: Timer) -> bool:
        waiter = self._waiters.get(waiter_id)
        return waiter is not None and waiter.due(timer) == due_at
