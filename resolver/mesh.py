"""The in-flight table: runs resolutions and their sub-resolutions, detects cycles.

Sans-IO like the core: the driver calls :meth:`Mesh.start` and :meth:`Mesh.handle` and
performs the returned effects. A sub-resolution (the address of a glueless name server) is
a job of its own whose result is fed back to its parent; a sub-question that is already
being asked higher up the same chain is a cycle and fails at once (Unbound ``mesh.c``
``mesh_detect_cycle``). Sub-resolutions share the client query's :class:`Budget`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``query`` upstream for job ``job_id``."""

    job_id: int
    query: SendQuery


@dataclass(frozen=True, slots=True)
class Completed:
    """The client-level job ``job_id`` has its result."""

    job_id: int
    result: Result


Effect = Transmit | Completed


@dataclass(slots=True)
class _Job:
    resolution: Resolution
    budget: Budget
    parent: tuple[int, int] | None  # (parent job id, the parent's subquery ref)
    ancestry: frozenset[Question]
    depth: int


class Mesh:
    """Every resolution in flight, keyed by job id."""

    def __init__(self, *, root: ZoneCut, limits: Limits, rng: random.Random) -> None:
        self.root = root
        self.limits = limits
        self._rng = rng
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._jobs)

    def start(self, question: Question, now: float) -> tuple[int, list[Effect]]:
        """Start resolving a client's question; returns its job id and the first effects."""
        budget = Budget(self.limits)
        job_id = self._new_job(question, budget, parent=None, ancestry=frozenset(), depth=0)
        return job_id, self._run(job_id, self._jobs[job_id].resolution.start(now), now)

    def handle(self, job_id: int, event: Event, now: float) -> list[Effect]:
        """Feed an event to a job; a job that is gone (cancelled) ignores it."""
        job = self._jobs.get(job_id)
        if job is None:
            return []
        return self._run(job_id, job.resolution.handle(event, now), now)

    def cancel(self, job_id: int) -> None:
        """Forget a job and all its sub-resolutions (the client's deadline passed)."""
        children = [
            cid for cid, job in self._jobs.items() if job.parent and job.parent[0] == job_id
        ]
        self._jobs.pop(job_id, None)
        for child in children:
            self.cancel(child)

    def zone_of(self, job_id: int) -> str:
        """The zone the deepest sub-resolution of ``job_id`` is asking now, as text."""
        deepest = job_id
        while True:
            child = next(
                (cid for cid, job in self._jobs.items() if job.parent and job.parent[0] == deepest),
                None,
            )
            if child is None:
                break
            deepest = child
        job = self._jobs.get(deepest)
        return job.resolution.zone.to_text() if job is not None else "?"

    def root_of(self, job_id: int) -> int:
        """The client-level job that ``job_id`` works for."""
        job = self._jobs.get(job_id)
        while job is not None and job.parent is not None:
            job_id = job.parent[0]
            job = self._jobs.get(job_id)
        return job_id

    def _new_job(
        self,
        question: Question,
        budget: Budget,
        *,
        parent: tuple[int, int] | None,
        ancestry: frozenset[Question],
        depth: int,
    ) -> int:
        job_id = next(self._ids)
        resolution = Resolution(question, root=self.root, budget=budget, rng=self._rng)
        self._jobs[job_id] = _Job(resolution, budget, parent, ancestry | {question}, depth)
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

    def _start_subquery(self, job_id: int, action: StartSubquery, now: float) -> list[Effect]:
        job = self._jobs[job_id]
        refusal = None
        if action.question in job.ancestry:
            refusal = f"dependency cycle: {action.question} is needed to resolve itself"
        elif job.depth + 1 > self.limits.max_subquery_depth:
            refusal = f"sub-resolutions nested deeper than {self.limits.max_subquery_depth}"
        elif not job.budget.spend_subquery():
            refusal = f"work limit: {self.limits.max_subqueries} sub-resolutions"
        if refusal is not None:
            done = SubqueryDone(action.ref, servfail(refusal))
            return self._run(job_id, job.resolution.handle(done, now), now)
        child_id = self._new_job(
            action.question,
            job.budget,
            parent=(job_id, action.ref),
            ancestry=job.ancestry,
            depth=job.depth + 1,
        )
        return self._run(child_id, self._jobs[child_id].resolution.start(now), now)

    def _finish(self, job_id: int, result: Result, now: float) -> list[Effect]:
        job = self._jobs.pop(job_id, None)
        if job is None:
            return []
        if job.parent is None:
            return [Completed(job_id, result)]
        parent_id, ref = job.parent
        return self.handle(parent_id, SubqueryDone(ref, result), now)
