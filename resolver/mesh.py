"""The in-flight table: one resolution per question, shared by everyone who asks it.

Sans-IO like the core: the driver calls :meth:`Mesh.start`, :meth:`Mesh.handle` and
:meth:`Mesh.release` and performs the returned effects. Identical questions in flight are
merged (Unbound ``services/mesh.c``): many clients asking the same uncached question cause
one walk. A sub-resolution (the address of a glueless name server) is a job of its own whose
result is fed back to every job waiting on it; a sub-question that would wait on itself,
directly or through merged jobs, is a cycle and fails at once. Sub-resolutions share the
client query's :class:`Budget`.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from resolver.cache.view import Caches
from resolver.core.events import (
    Action,
    Event,
    Finished,
    SendQuery,
    StartSubquery,
    SubqueryDone,
)
from resolver.core.machine import Resolution
from resolver.core.zonecut import ZoneCut
from resolver.limits import Budget, Limits
from resolver.model import Question, Result, servfail


class Transmit(NamedTuple):
    """Send ``query`` upstream for job ``job_id``."""

    job_id: int
    query: SendQuery


class Completed(NamedTuple):
    """Job ``job_id``, which clients wait on, has its result."""

    job_id: int
    result: Result


Effect = Transmit | Completed


@dataclass(slots=True)
class _Job:
    question: Question
    resolution: Resolution
    budget: Budget
    ancestry: frozenset[Question]
    depth: int
    clients: int = 0
    parents: list[tuple[int, int]] = field(default_factory=list)  # (job id, its subquery ref)


@dataclass(slots=True)
class MeshCounters:
    started: int = 0
    merged: int = 0
    subqueries: int = 0
    cycles: int = 0
    upstream: Counter[str] = field(default_factory=Counter)
    """Upstream outcomes: reply kinds (answer, referral, nxdomain...) and failures."""


@dataclass(frozen=True, slots=True)
class MeshStats:
    """What the mesh has done, read at scrape time (:meth:`Mesh.stats`)."""

    in_flight: int
    """Resolutions in flight, sub-resolutions included."""
    merged: int
    """Questions that joined a resolution in flight instead of starting one."""
    upstream: dict[str, int]
    """Upstream outcomes: reply kinds (answer, referral, nxdomain...) and failures."""


class Mesh:
    """Every resolution in flight, keyed by job id and by question."""

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
    ) -> None:
        self.root = root
        self.harden_glue = harden_glue
        self.qname_minimisation = qname_minimisation
        """RFC 9156; read when a resolution starts, so a reload applies to the next ones."""
        self.caches = caches
        self.limits = limits
        self.default_timeout_s = default_timeout_s
        self._rng = rng
        self._jobs: dict[int, _Job] = {}
        self._inflight: dict[Question, int] = {}
        self._ids = itertools.count(1)
        self.counters = MeshCounters()
        self.on_job_end: Callable[[int], object] | None = None
        """Told each job that ends (finished or dropped): the driver closes the sockets of
        its upstream tries still open for a late reply."""

    def __len__(self) -> int:
        return len(self._jobs)

    def stats(self) -> MeshStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        return MeshStats(len(self._jobs), self.counters.merged, dict(self.counters.upstream))

    def start(
        self, question: Question, now: float, *, refresh: bool = False
    ) -> tuple[int, list[Effect]]:
        """A client asks ``question``: join the walk in flight, or start one. A ``refresh``
        asks the servers again even if the answer is cached (prefetch, serve-stale)."""
        existing = self._inflight.get(question)
        if existing is not None:
            self._jobs[existing].clients += 1
            self.counters.merged += 1
            return existing, []
        job_id = self._new_job(question, Budget(self.limits), frozenset(), 0, refresh=refresh)
        self._jobs[job_id].clients = 1
        self.counters.started += 1
        return job_id, self._run(job_id, self._jobs[job_id].resolution.start(now), now)

    def handle(self, job_id: int, event: Event, now: float) -> list[Effect]:
        """Feed an event to a job; a job that is gone (cancelled) ignores it."""
        job = self._jobs.get(job_id)
        if job is None:
            return []
        return self._run(job_id, job.resolution.handle(event, now), now)

    def release(self, job_id: int) -> None:
        """One client stopped waiting (its deadline passed); forget the job when nobody
        waits on it any more."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.clients = max(0, job.clients - 1)
        if job.clients == 0 and not job.parents:
            self._drop(job_id)

    def zone_of(self, job_id: int) -> str:
        """The zone the deepest sub-resolution working for ``job_id`` is asking now."""
        deepest = job_id
        while (child := self._child_of(deepest)) is not None:
            deepest = child
        job = self._jobs.get(deepest)
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
            if job.clients:
                found.append(current)
            queue.extend(parent for parent, _ref in job.parents)
        return found

    def fail(self, job_id: int, result: Result) -> list[Effect]:
        """End ``job_id`` with ``result`` (a bug was caught while running it)."""
        if job_id not in self._jobs:
            return []
        return self._finish(job_id, result, 0.0)

    # --- internals ---------------------------------------------------------------------------

    def _child_of(self, job_id: int) -> int | None:
        return next(
            (cid for cid, job in self._jobs.items() if any(p == job_id for p, _ in job.parents)),
            None,
        )

    def _drop(self, job_id: int) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        if self.on_job_end is not None:
            self.on_job_end(job_id)
        if self._inflight.get(job.question) == job_id:
            del self._inflight[job.question]
        for child_id, child in list(self._jobs.items()):
            child.parents = [(p, ref) for p, ref in child.parents if p != job_id]
            if not child.parents and not child.clients:
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
            outcomes=self.counters.upstream,
            harden_glue=self.harden_glue,
            ancestry=ancestry,
            qname_minimisation=self.qname_minimisation,
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
            queue.extend(parent for parent, _ref in self._jobs[current].parents)
        return False

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
            self._jobs[existing].parents.append((job_id, action.ref))
            self.counters.merged += 1
            return []
        child_id = self._new_job(action.question, job.budget, job.ancestry, job.depth + 1)
        self._jobs[child_id].parents.append((job_id, action.ref))
        return self._run(child_id, self._jobs[child_id].resolution.start(now), now)

    def _finish(self, job_id: int, result: Result, now: float) -> list[Effect]:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return []
        if self.on_job_end is not None:
            self.on_job_end(job_id)
        if self._inflight.get(job.question) == job_id:
            del self._inflight[job.question]
        self.counters.cycles += job.resolution.cycles_met
        effects: list[Effect] = []
        if job.clients:
            effects.append(Completed(job_id, result))
        for parent_id, ref in job.parents:
            effects.extend(self.handle(parent_id, SubqueryDone(ref, result), now))
        return effects
