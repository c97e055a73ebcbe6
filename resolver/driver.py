"""Runs the mesh's resolutions against the real transport.

The loop is short: perform each effect the mesh returns (send a query, hand a client its
result or its serve-stale turn) and feed every outcome back as an event. The mesh keeps the
clients' timers (deadline, serve-stale wait); the driver keeps one event-loop timer armed to
:meth:`Mesh.get_timer` after each step, as aioquic's users do with ``get_timer`` and
``handle_timer``. Timers use the event loop's monotonic clock; TTL arithmetic (``now``) uses
wall-clock time (ARCHITECTURE.md, "Time").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from resolver.core.events import Failure, QueryFailed, ReplyReceived
from resolver.effects import Completed, Effect, Transmit
from resolver.histogram import Histogram
from resolver.mesh import Mesh
from resolver.model import Question, Result, servfail
from resolver.stats import DriverStats
from resolver.transport.upstream import Upstream

log = logging.getLogger(__name__)


class _Waiter:
    """What to call for one client waiting in the mesh."""

    __slots__ = ("on_result", "on_stale")

    def __init__(
        self, on_result: Callable[[Result], None], on_stale: Callable[[], None] | None
    ) -> None:
        self.on_result = on_result
        self.on_stale = on_stale


class Driver:
    """Resolves client questions; at most the mesh's ``client_deadline_s`` per question
    (``deadline_s``, when given, sets it: ``rootwalk trace``)."""

    def __init__(
        self,
        mesh: Mesh,
        upstream: Upstream,
        *,
        deadline_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mesh = mesh
        self.upstream = upstream
        if deadline_s is not None:
            mesh.client_deadline_s = deadline_s
        self.clock = clock
        self.bugs = 0
        self.upstream_rtt = Histogram()
        self.observer: Callable[[Transmit, ReplyReceived | QueryFailed], None] | None = None
        """Called with each upstream exchange before the mesh sees it (``rootwalk trace``)."""
        self._waiters: dict[int, _Waiter] = {}
        mesh.on_job_end = upstream.settle  # a try kept open for a late reply closes with its job
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._idle: asyncio.Future[None] | None = None
        """Set by :meth:`settle`; done when no waiter is left."""

    async def resolve(self, question: Question, *, refresh: bool = False) -> Result:
        """Walk from the root for ``question``; SERVFAIL when the deadline passes. A
        ``refresh`` asks the servers even when the answer is cached."""
        loop = self._running_loop()
        future: asyncio.Future[Result] = loop.create_future()

        def settle(result: Result) -> None:
            if not future.done():
                future.set_result(result)

        waiter = self.resolve_then(question, settle, refresh=refresh)
        try:
            return await future
        finally:
            if future.cancelled():  # the client's task was cancelled (shutdown)
                self._waiters.pop(waiter, None)
                self.mesh.release(waiter)
                self._arm()
                self._note_idle()

    def resolve_then(
        self,
        question: Question,
        on_result: Callable[[Result], None],
        *,
        refresh: bool = False,
        on_stale: Callable[[], None] | None = None,
    ) -> int:
        """As :meth:`resolve`, without a task: ``on_result`` is called once with the result
        (at once when the mesh has it already). With ``on_stale``, it is called once if the
        serve-stale wait passes first (RFC 8767 §5); ``on_result`` still follows. Returns
        the waiter's id."""
        loop = self._running_loop()
        waiter, effects = self.mesh.start(
            question, self.clock(), loop.time(), refresh=refresh, stale_wait=on_stale is not None
        )
        self._waiters[waiter] = _Waiter(on_result, on_stale)
        self._dispatch(effects)
        self._arm()
        return waiter

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()  # once: it costs a getpid call
        return loop

    def _arm(self) -> None:
        """Keep the one loop timer at the mesh's next due instant."""
        due = self.mesh.get_timer()
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is not None:
            self._timer = self._running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = self._timer_at = None
        loop = self._running_loop()
        # asyncio runs a timer up to one clock tick early: it is due at its own instant.
        at = loop.time() if due is None else max(loop.time(), due)
        try:
            self._dispatch(self.mesh.handle_timer(at))
        except Exception:
            self.bugs += 1  # a bug of ours: counted and logged; the other timers still run
            log.exception("the mesh's timers failed")
        self._arm()

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        """Call a client's callback; a failure there is a bug of ours, logged and counted,
        never let out into the upstream callbacks that got us here."""
        try:
            callback(*args)
        except Exception:
            self.bugs += 1
            log.exception("answering a client failed")

    def _dispatch(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                self._transmit(effect)
            elif isinstance(effect, Completed):
                for waiter_id in effect.waiters:
                    waiter = self._waiters.pop(waiter_id, None)
                    if waiter is not None:
                        self._call(waiter.on_result, effect.result)
                self._note_idle()
            else:
                found = self._waiters.get(effect.waiter)
                if found is not None and found.on_stale is not None:
                    self._call(found.on_stale)

    def _transmit(self, effect: Transmit) -> None:
        """Send one query upstream. A send that raises (a bug, or an error the transport did
        not type, such as no file descriptor left) is counted and logged, and its try fails
        as a network error (on the next turn, as any outcome): the resolution moves on, and
        the effects after this one, a client's result among them, are not lost."""
        on_outcome = functools.partial(self._on_outcome, effect)
        try:
            self.upstream.send(effect.query, on_outcome, effect.job_id)
        except Exception:
            self.bugs += 1
            log.exception("sending %s failed", effect.query)
            failed = QueryFailed(effect.query.ref, Failure.NETWORK_ERROR)
            self._running_loop().call_soon(on_outcome, failed)

    def _on_outcome(self, effect: Transmit, event: ReplyReceived | QueryFailed) -> None:
        if isinstance(event, ReplyReceived):
            self.upstream_rtt.observe(event.rtt_s)
        if self.observer is not None:
            self.observer(effect, event)
        # A step that raises is the mesh's to fail (Mesh.handle): its clients get SERVFAIL.
        self._dispatch(self.mesh.handle(effect.job_id, event, self.clock()))
        self._arm()

    def abandon(self, reason: str) -> None:
        """End every resolution in flight: their clients get SERVFAIL with ``reason`` (a
        reload changed the DNSSEC settings they were judged under)."""
        self._dispatch(self.mesh.fail_all(servfail(reason), self.clock()))
        self._arm()

    def _note_idle(self) -> None:
        if not self._waiters and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def settle(self) -> None:
        """Return once no client or background refresh (prefetch, serve-stale) waits on
        the mesh."""
        await asyncio.sleep(0)  # a prefetch starts just after the hit that asked for it
        while self._waiters:
            self._idle = self._running_loop().create_future()
            await self._idle

    async def close(self) -> None:
        """Abandon the upstream queries in flight."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self.upstream.close()

    def stats(self) -> DriverStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        return DriverStats(self.upstream_rtt.view(), self.bugs)
