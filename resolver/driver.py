"""Runs the mesh's resolutions against the real transport, with a per-client deadline.

The loop is short: perform each effect the mesh returns (send a query, complete a client's
future) and feed every outcome back as an event. The deadline uses the event loop's
monotonic clock; TTL arithmetic (``now``) uses wall-clock time (ARCHITECTURE.md, "Time").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from resolver.core.events import QueryFailed, ReplyReceived
from resolver.histogram import Histogram
from resolver.mesh import Completed, Effect, Mesh, Transmit
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
        self._tasks: set[asyncio.Task[None]] = set()

    async def resolve(self, question: Question, *, refresh: bool = False) -> Result:
        """Walk from the root for ``question``; SERVFAIL when the deadline passes. A
        ``refresh`` asks the servers even when the answer is cached."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        job_id, effects = self.mesh.start(question, self.clock(), refresh=refresh)
        self._waiters.setdefault(job_id, []).append(future)
        try:
            self._dispatch(effects)
            return await asyncio.wait_for(asyncio.shield(future), self.deadline_s)
        except TimeoutError:
            zone = self.mesh.zone_of(job_id)
            waiters = self._waiters.get(job_id, [])
            if future in waiters:
                waiters.remove(future)
            self.mesh.release(job_id)
            return servfail(
                f"no server of {zone} answered within {self.deadline_s:g} s",
                ExtendedError.NO_REACHABLE_AUTHORITY,
            )
        finally:
            if not self._waiters.get(job_id):
                self._waiters.pop(job_id, None)

    def _dispatch(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Transmit():
                    task = asyncio.get_running_loop().create_task(self._transmit(effect))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                case Completed():
                    for future in self._waiters.pop(effect.job_id, []):
                        if not future.done():
                            future.set_result(effect.result)

    async def _transmit(self, effect: Transmit) -> None:
        event: ReplyReceived | QueryFailed = await self.upstream.query(effect.query)
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
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
