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

from resolver.core.events import QueryFailed, ReplyReceived
from resolver.histogram import Histogram
from resolver.mesh import Effect, Mesh, Transmit
from resolver.model import ExtendedError, Question, Result, servfail
from resolver.transport.upstream import Upstream

log = logging.getLogger(__name__)


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
        self._waiters: dict[int, list[asyncio.Future[Result]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def resolve(self, question: Question, *, refresh: bool = False) -> Result:
        """Walk from the root for ``question``; SERVFAIL when the deadline passes. A
        ``refresh`` asks the servers even when the answer is cached."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()  # once: it costs a getpid call
        future: asyncio.Future[Result] = loop.create_future()
        job_id, effects = self.mesh.start(question, self.clock(), refresh=refresh)
        self._waiters.setdefault(job_id, []).append(future)
        deadline = loop.call_later(self.deadline_s, self._deadline_passed, job_id, future)
        try:
            self._dispatch(effects)
            return await future
        finally:
            deadline.cancel()
            if future.cancelled():  # the client's task was cancelled (shutdown)
                self._stop_waiting(job_id, future)
            if not self._waiters.get(job_id):
                self._waiters.pop(job_id, None)

    def _stop_waiting(self, job_id: int, future: asyncio.Future[Result]) -> None:
        waiters = self._waiters.get(job_id, [])
        if future in waiters:
            waiters.remove(future)
            self.mesh.release(job_id)

    def _deadline_passed(self, job_id: int, future: asyncio.Future[Result]) -> None:
        if future.done():
            return
        zone = self.mesh.zone_of(job_id)
        self._stop_waiting(job_id, future)
        future.set_result(
            servfail(
                f"no server of {zone} answered within {self.deadline_s:g} s",
                ExtendedError.NO_REACHABLE_AUTHORITY,
            )
        )

    def _dispatch(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                self.upstream.send(effect.query, functools.partial(self._on_outcome, effect))
            else:
                for future in self._waiters.pop(effect.job_id, []):
                    if not future.done():
                        future.set_result(effect.result)

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
