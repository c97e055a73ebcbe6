"""Runs the mesh's resolutions against the real transport, with a per-client deadline.

The loop is short: perform each effect the mesh returns (send a query, complete a client's
future) and feed every outcome back as an event. The deadline uses the event loop's
monotonic clock; TTL arithmetic (``now``) uses wall-clock time (ARCHITECTURE.md, "Time").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from resolver.core.events import QueryFailed, ReplyReceived
from resolver.histogram import Histogram, HistogramView
from resolver.mesh import Effect, Mesh, Transmit
from resolver.model import ExtendedError, Question, Result, servfail
from resolver.transport.upstream import Upstream

log = logging.getLogger(__name__)


class _Waiter:
    """A client waiting for a job's result, and the timer of its deadline."""

    __slots__ = ("deadline", "on_result")

    def __init__(self, on_result: Callable[[Result], None]) -> None:
        self.on_result = on_result
        self.deadline: asyncio.TimerHandle


@dataclass(frozen=True, slots=True)
class DriverStats:
    """What the driver has measured, read at scrape time (:meth:`Driver.stats`)."""

    upstream_rtt: HistogramView
    bugs: int


class Driver:
    """Resolves client questions; at most ``deadline_s`` per question."""

    def __init__(
        self,
        mesh: Mesh,
        upstream: Upstream,
        *,
        deadline_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mesh = mesh
        self.upstream = upstream
        self.deadline_s = deadline_s
        self.clock = clock
        self.bugs = 0
        self.upstream_rtt = Histogram()
        self.observer: Callable[[Transmit, ReplyReceived | QueryFailed], None] | None = None
        """Called with each upstream exchange before the mesh sees it (``rootwalk trace``)."""
        self._waiters: dict[int, list[_Waiter]] = {}
        mesh.on_job_end = upstream.settle  # a try kept open for a late reply closes with its job
        self._loop: asyncio.AbstractEventLoop | None = None

    async def resolve(self, question: Question, *, refresh: bool = False) -> Result:
        """Walk from the root for ``question``; SERVFAIL when the deadline passes. A
        ``refresh`` asks the servers even when the answer is cached."""
        loop = self._running_loop()
        future: asyncio.Future[Result] = loop.create_future()

        def settle(result: Result) -> None:
            if not future.done():
                future.set_result(result)

        job_id, waiter = self.resolve_then(question, settle, refresh=refresh)
        try:
            return await future
        finally:
            if future.cancelled():  # the client's task was cancelled (shutdown)
                waiter.deadline.cancel()
                self._stop_waiting(job_id, waiter)

    def resolve_then(
        self, question: Question, on_result: Callable[[Result], None], *, refresh: bool = False
    ) -> tuple[int, _Waiter]:
        """As :meth:`resolve`, without a task: ``on_result`` is called once with the result
        (at once when the mesh has it already). Returns the job and its waiter."""
        loop = self._running_loop()
        job_id, effects = self.mesh.start(question, self.clock(), refresh=refresh)
        waiter = _Waiter(on_result)
        self._waiters.setdefault(job_id, []).append(waiter)
        waiter.deadline = loop.call_later(self.deadline_s, self._deadline_passed, job_id, waiter)
        self._dispatch(effects)
        return job_id, waiter

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()  # once: it costs a getpid call
        return loop

    def _stop_waiting(self, job_id: int, waiter: _Waiter) -> None:
        waiters = self._waiters.get(job_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
            self.mesh.release(job_id)
        if not waiters:
            self._waiters.pop(job_id, None)

    def _deadline_passed(self, job_id: int, waiter: _Waiter) -> None:
        zone = self.mesh.zone_of(job_id)
        self._stop_waiting(job_id, waiter)
        self._deliver(
            waiter,
            servfail(
                f"no server of {zone} answered within {self.deadline_s:g} s",
                ExtendedError.NO_REACHABLE_AUTHORITY,
            ),
        )

    def _deliver(self, waiter: _Waiter, result: Result) -> None:
        """Hand a result to its waiter; a failure there is a bug of ours, logged and counted,
        never let out into the upstream callbacks that got us here."""
        try:
            waiter.on_result(result)
        except Exception:
            self.bugs += 1
            log.exception("answering a client failed")

    def _dispatch(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                self.upstream.send(
                    effect.query, functools.partial(self._on_outcome, effect), effect.job_id
                )
            else:
                for waiter in self._waiters.pop(effect.job_id, []):
                    waiter.deadline.cancel()
                    self._deliver(waiter, effect.result)

    def _on_outcome(self, effect: Transmit, event: ReplyReceived | QueryFailed) -> None:
        if isinstance(event, ReplyReceived):
            self.upstream_rtt.observe(event.rtt_s)
        if self.observer is not None:
            self.observer(effect, event)
        try:
            effects = self.mesh.handle(effect.job_id, event, self.clock())
        except Exception:
            # A bug, not an upstream fault: log it, count it, SERVFAIL its clients at once.
            self.bugs += 1
            log.exception("resolution failed on %s", effect.query)
            effects = []
            for job_id in self.mesh.client_jobs_of(effect.job_id):
                effects.extend(self.mesh.fail(job_id, servfail("internal error")))
        self._dispatch(effects)

    async def close(self) -> None:
        """Abandon the upstream queries in flight."""
        self.upstream.close()

    def stats(self) -> DriverStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        return DriverStats(self.upstream_rtt.view(), self.bugs)
