"""The in-flight table: one resolution per question, shared by everyone who asks it.

Sans-IO like the core: the driver calls :meth:`Mesh.start`, :meth:`Mesh.handle`,
:meth:`Mesh.handle_timer` and :meth:`Mesh.release` and performs the returned effects, and
keeps one timer armed to :meth:`Mesh.get_timer` (as aioquic's ``get_timer``/``handle_timer``).
The mesh owns the policy of waiting, as Unbound's mesh does: each client's deadline and
serve-stale wait (:mod:`resolver.waiters`), and refreshes (prefetch) are jobs like any other.
Jobs know their parents and their children, so finding or dropping one scans nothing.
Identical questions in flight are merged (Unbound ``services/mesh.c``): many clients asking
the same uncached question cause one walk. A sub-resolution (the address of a glueless name
server) is a job of its own whose result is fed back to every job waiting on it; a
sub-question that would wait on itself, directly or through merged jobs, is a cycle and
fails at once. Sub-resolutions share the client query's :class:`Budget`.
"""

from __future__ import annotations

import itertools
import logging
import random
import typing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.core.events import (
    Action,
    Event,
    Finished,
    SendQuery,
    StartSubquery,
    SubqueryDone,
)
from resolver.core.machine import Resolution
from resolver.effects import Completed, Effect, StaleDue, Transmit
from resolver.limits import Budget, Limits
from resolver.model import ExtendedError, Question, Result, ZoneCut, servfail
from resolver.stats import MeshCounters, MeshStats
from resolver.waiters import Timer, Waiters

__all__ = ["Completed", "Effect", "Mesh", "StaleDue", "Transmit"]
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    question: Question
    resolution: Resolution
    budget: Budget
    ancestry: frozenset[Question]
    depth: int
    waiters: set[int] = field(default_factory=set)
    parents: dict[int, int] = field(default_factory=dict)
    """Jobs waiting on this one: job id -> the ref of its subquery (the latest, when it asked
    twice; the machine ignores an older ref)."""
    children: dict[int, None] = field(default_factory=dict)
    """Jobs this one waits on or waited on and that still run, oldest first (an ordered
    set): each has this job among its ``parents``."""


class Mesh:
    """Every resolution in flight, keyed by job id and by question, and the clients waiting
    on them with their timers.

    Two clocks (ARCHITECTURE.md, "Time"): ``now`` is wall-clock seconds, for the caches and
    TTLs the machines read and write; ``at`` is monotonic seconds, for the timers. Timers are
    kept in monotonic time because a deadline is a duration: a wall clock stepped by NTP
    would end waits early or never. The caller reads its clocks once per call and passes
    both; the mesh reads no clock, so the core harness drives it with virtual time.
    """

    def __init__(
        self,
        *,
        root: ZoneCut,
        caches: Caches,
        limits: Limits,
        rng: random.Random,
        default_timeout_s: float = 1.0,
        harden_glue: bool = True,
        qname_minimisation: bool = True,
        client_deadline_s: float = 4.0,
        serve_stale_client_timeout_s: float = 1.8,
        validator: Validator | None = None,
    ) -> None:
        self.root = root
        self.validator = validator
        """DNSSEC validation shared by every resolution (its key cache); None: off."""
        self.harden_glue = harden_glue
        self.qname_minimisation = qname_minimisation
        """RFC 9156; read when a resolution starts, so a reload applies to the next ones."""
        self.caches = caches
        self.limits = limits
        self.default_timeout_s = default_timeout_s
        self.client_deadline_s = client_deadline_s
        """How long a client waits for its result before SERVFAIL (EDE 22); read when a
        client starts waiting."""
        self.serve_stale_client_timeout_s = serve_stale_client_timeout_s
        """How long a client with a stale answer at hand waits for the refresh before the
        stale answer is sent (RFC 8767 §5; Unbound's serve-expired-client-timeout)."""
        self._rng = rng
        self._jobs: dict[int, _Job] = {}
        self._inflight: dict[Question, int] = {}
        self._ids = itertools.count(1)
        self._waiters = Waiters()
        self.counters = MeshCounters()
        self.on_job_end: Callable[[int], object] | None = None
        """Told each job that ends (finished or dropped): the driver closes the sockets of
        its upstream tries still open for a late reply."""

    def __len__(self) -> int:
        return len(self._jobs)

    def stats(self) -> MeshStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        counters = self.counters
        validator = self.validator
        return MeshStats(
            len(self._jobs),
            counters.merged,
            dict(counters.upstream),
            started=counters.started,
            subqueries=counters.subqueries,
            cycles=counters.cycles,
            bugs=counters.bugs,
            dnssec_states=dict(validator.verdicts) if validator is not None else {},
            dnssec_bogus=dict(validator.bogus_reasons) if validator is not None else {},
            dnssec_synthesised=dict(validator.synthesised) if validator is not None else {},
        )

    def start(
        self,
        question: Question,
        now: float,
        at: float,
        *,
        refresh: bool = False,
        stale_wait: bool = False,
    ) -> tuple[int, list[Effect]]:
        """A client asks ``question`` at wall-clock ``now``, monotonic ``at``: join the walk
        in flight, or start one. Returns the client's waiter id (its deadline is ``at`` plus
        :attr:`client_deadline_s`) and the effects. A ``refresh`` asks the servers again even
        if the answer is cached (prefetch); ``stale_wait`` arms the serve-stale timer."""
        deadline_at = at + self.client_deadline_s
        stale_at = at + self.serve_stale_client_timeout_s if stale_wait else None
        existing = self._inflight.get(question)
        if existing is not None:
            self.counters.merged += 1
            return self._add_waiter(existing, deadline_at, stale_at), []
        job_id = self._new_job(question, Budget(self.limits), frozenset(), 0, refresh=refresh)
        waiter = self._add_waiter(job_id, deadline_at, stale_at)
        self.counters.started += 1
        try:  # a bug in the start or the sub-resolutions it starts: leave no job in flight
            actions = self._jobs[job_id].resolution.start(now)
            return waiter, self._run(job_id, actions, now)
        except Exception:
            self.release(waiter)  # and its sub-resolutions: the next asker would join them
            raise

    def job_of(self, waiter: int) -> int | None:
        """The job ``waiter`` waits on; None once it has its result or stopped waiting."""
        found = self._waiters.get(waiter)
        return found.job_id if found is not None else None

    def handle(self, job_id: int, event: Event, now: float) -> list[Effect]:
        """Feed an event to a job; a job that is gone (cancelled) ignores it. An upstream
        outcome the machine took is counted (``counters.upstream``). A step that raises
        fails the job and its clients (:meth:`_failed_by_bug`)."""
        job = self._jobs.get(job_id)
        if job is None:
            return []
        resolution = job.resolution
        try:
            try:
                actions = resolution.handle(event, now)
            finally:
                outcome = resolution.last_outcome
                if outcome is not None:
                    resolution.last_outcome = None
                    self.counters.upstream[outcome] += 1
            return self._run(job_id, actions, now)
        except Exception:
            return self._failed_by_bug(job_id, job.question, now)

    def _failed_by_bug(self, job_id: int, question: Question, now: float) -> list[Effect]:
        """A step of ``job_id`` raised: a bug of ours (ARCHITECTURE.md, principle 5), logged
        with its traceback and counted (``counters.bugs``); the job and the client jobs it
        works for end with SERVFAIL at once. The job must end too: left in the mesh, a
        sub-resolution with no parent keeps its question in flight, and the next asker
        merges into it and waits out its whole deadline."""
        self.counters.bugs += 1
        log.exception("resolution failed on %s", question)
        effects: list[Effect] = []
        for failed in (*self.client_jobs_of(job_id), job_id):
            effects.extend(self._finish(failed, servfail("internal error"), now))
        return effects

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due (monotonic seconds), or None: no timer."""
        return self._waiters.next_due()

    def handle_timer(self, at: float) -> list[Effect]:
        """Fire every timer due at monotonic ``at``: a passed deadline completes its waiter
        with SERVFAIL (Extended DNS Error 22, No Reachable Authority) and stops it waiting;
        a passed serve-stale wait gives :class:`StaleDue`."""
        effects: list[Effect] = []
        for waiter_id, waiter, timer in self._waiters.due(at):
            if timer is Timer.STALE:
                effects.append(StaleDue(waiter.job_id, waiter_id))
                continue
            zone = self.zone_of(waiter.job_id)
            self.release(waiter_id)
            reason = f"no server of {zone} answered within {self.client_deadline_s:g} s"
            failure = servfail(reason, ExtendedError.NO_REACHABLE_AUTHORITY)
            effects.append(Completed(waiter.job_id, failure, (waiter_id,)))
        return effects

    def release(self, waiter: int) -> None:
        """A client stopped waiting (its deadline passed, or it went away); the job is
        forgotten when nobody waits on it any more."""
        found = self._waiters.pop(waiter)
        if found is None:
            return
        job = self._jobs.get(found.job_id)
        if job is None:
            return
        job.waiters.discard(waiter)
        if not job.waiters and not job.parents:
            self._drop(found.job_id)

    def zone_of(self, job_id: int) -> str:
        """The zone the deepest sub-resolution working for ``job_id`` is asking now."""
        job = self._jobs.get(job_id)
        while job is not None and job.children:
            job = self._jobs.get(next(reversed(job.children)))
        return job.resolution.zone.to_text() if job is not None else "?"

    def describe(self, job_id: int) -> tuple[Question, int] | None:
        """The question a job resolves and its sub-resolution depth (for ``trace``)."""
        job = self._jobs.get(job_id)
        return (job.question, job.depth) if job is not None else None

    def client_jobs_of(self, job_id: int) -> list[int]:
        """The jobs with clients that ``job_id`` works for (itself included)."""
        found: list[int] = []
        seen: set[int] = set()
        queue = deque([job_id])
        while queue:
            current = queue.popleft()
            if current in seen or current not in self._jobs:
                continue
            seen.add(current)
            job = self._jobs[current]
            if job.waiters:
                found.append(current)
            queue.extend(job.parents)
        return found

    def fail(self, job_id: int, result: Result, now: float) -> list[Effect]:
        """End ``job_id`` with ``result`` at wall-clock ``now`` (a bug was caught while
        running it); the jobs waiting on it go on with ``now`` too."""
        return self._finish(job_id, result, now)

    def fail_all(self, result: Result, now: float) -> list[Effect]:
        """End every job with ``result``, oldest first (a job ended is fed nothing more)."""
        effects: list[Effect] = []
        while self._jobs:
            effects.extend(self._finish(min(self._jobs), result, now))
        return effects

    # --- internals ---------------------------------------------------------------------------

    def _add_waiter(self, job_id: int, deadline_at: float, stale_at: float | None) -> int:
        waiter = self._waiters.add(job_id, deadline_at, stale_at)
        self._jobs[job_id].waiters.add(waiter)
        return waiter

    def _end(self, job_id: int) -> _Job | None:
        """Take ``job_id`` out of every table and link; its children run on without it."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return None
        if self.on_job_end is not None:
            self.on_job_end(job_id)
        if self._inflight.get(job.question) == job_id:
            del self._inflight[job.question]
        for parent_id in job.parents:
            self._jobs[parent_id].children.pop(job_id, None)
        for child_id in job.children:
            self._jobs[child_id].parents.pop(job_id, None)
        return job

    def _drop(self, job_id: int) -> None:
        """Forget a job nobody waits on, and the sub-resolutions only it waited on."""
        job = self._end(job_id)
        if job is None:
            return
        for child_id in job.children:
            child = self._jobs.get(child_id)
            if child is not None and not child.parents and not child.waiters:
                self._drop(child_id)

    def _new_job(
        self,
        question: Question,
        budget: Budget,
        ancestry: frozenset[Question],
        depth: int,
        *,
        refresh: bool = False,
    ) -> int:
        job_id = next(self._ids)
        ancestry = ancestry | {question}
        resolution = Resolution(
            question,
            root=self.root,
            caches=self.caches,
            budget=budget,
            rng=self._rng,
            default_timeout_s=self.default_timeout_s,
            refresh=refresh,
            harden_glue=self.harden_glue,
            ancestry=ancestry,
            qname_minimisation=self.qname_minimisation,
            validator=self.validator,
        )
        self._jobs[job_id] = _Job(question, resolution, budget, ancestry, depth)
        self._inflight[question] = job_id
        return job_id

    def _run(self, job_id: int, actions: list[Action], now: float) -> list[Effect]:
        effects: list[Effect] = []
        for action in actions:
            match action:
                case SendQuery():
                    effects.append(Transmit(job_id, action))
                case StartSubquery():
                    effects.extend(self._start_subquery(job_id, action, now))
                case Finished():
                    effects.extend(self._finish(job_id, action.result, now))
                case _:
                    typing.assert_never(action)
        return effects

    def _waits_on(self, waiter: int, target: int) -> bool:
        """True when job ``target`` already waits (transitively) on job ``waiter``."""
        seen: set[int] = set()
        queue = deque([waiter])
        while queue:
            current = queue.popleft()
            if current == target:
                return True
            if current in seen or current not in self._jobs:
                continue
            seen.add(current)
            queue.extend(self._jobs[current].parents)
        return False

    def _link(self, parent_id: int, child_id: int, ref: int) -> None:
        self._jobs[child_id].parents[parent_id] = ref
        self._jobs[parent_id].children[child_id] = None

    def _start_subquery(self, job_id: int, action: StartSubquery, now: float) -> list[Effect]:
        job = self._jobs[job_id]
        existing = self._inflight.get(action.question)
        refusal = None
        cycle_via = None
        if action.question in job.ancestry or (
            existing is not None and self._waits_on(job_id, existing)
        ):
            refusal = f"dependency cycle: {action.question} is needed to resolve itself"
            cycle_via = action.question.qname.to_text()
            self.counters.cycles += 1
        elif job.depth + 1 > self.limits.max_subquery_depth:
            refusal = f"sub-resolutions nested deeper than {self.limits.max_subquery_depth}"
        elif not job.budget.spend_subquery():
            refusal = f"work limit: {self.limits.max_subqueries} sub-resolutions"
        if refusal is not None:
            done = SubqueryDone(action.ref, replace(servfail(refusal), cycle_via=cycle_via))
            return self._run(job_id, job.resolution.handle(done, now), now)
        self.counters.subqueries += 1
        if existing is not None:
            self._link(job_id, existing, action.ref)
            self.counters.merged += 1
            return []
        child_id = self._new_job(action.question, job.budget, job.ancestry, job.depth + 1)
        self._link(job_id, child_id, action.ref)
        try:
            actions = self._jobs[child_id].resolution.start(now)
            return self._run(child_id, actions, now)
        except Exception:  # a bug, in its start or a sub-resolution's it starts in turn:
            self._drop(child_id)  # end them, or the next asker joins a job that never runs;
            raise  # the job that asked fails with its clients (handle: _failed_by_bug)

    def _finish(self, job_id: int, result: Result, now: float) -> list[Effect]:
        job = self._end(job_id)
        if job is None:
            return []
        self.counters.cycles += job.resolution.cycles_met
        effects: list[Effect] = []
        for parent_id, ref in job.parents.items():
            effects.extend(self.handle(parent_id, SubqueryDone(ref, result), now))
        if job.waiters:  # after the parents: if one raises (a bug), they keep their deadline
            for waiter in job.waiters:
                self._waiters.pop(waiter)
            effects.insert(0, Completed(job_id, result, tuple(sorted(job.waiters))))
        return effects
