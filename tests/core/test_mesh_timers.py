"""The mesh's timers and links (issue 11, point 2): client deadlines and serve-stale waits
fire from :meth:`Mesh.handle_timer` at their instant in virtual time, jobs leave no links
behind, and a job failed by a bug hands its parents the real ``now``."""

from __future__ import annotations

import random
from collections import deque

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.view import Caches
from resolver.core.events import (
    Action,
    Event,
    Failure,
    QueryFailed,
    ReplyReceived,
    SendQuery,
    StartSubquery,
    SubqueryDone,
)
from resolver.core.machine import Resolution
from resolver.limits import Limits
from resolver.mesh import Completed, Effect, Mesh, StaleDue, Transmit
from resolver.model import ExtendedError, Question, servfail
from resolver.records import read_reply
from resolver.transport.upstream import query_wire
from tests.core.harness import Delay, VirtualDriver, lab_responder, lab_root
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
T0 = 1_000_000.0


def silent(_server: str, _send: SendQuery) -> float | None:
    return None


def fast(_server: str, _send: SendQuery) -> float | None:
    return 0.001


def silent_in(zone: str) -> Delay:
    """Every server of ``zone`` is silent; the others answer in 1 ms."""

    def delay(_server: str, send: SendQuery) -> float | None:
        return None if send.zone == dns.name.from_text(zone) else 0.001

    return delay


def assert_empty(mesh: Mesh) -> None:
    """No job, question, waiter or timer is left: nothing leaks links or entries."""
    assert len(mesh) == 0
    assert mesh.get_timer() is None
    assert not mesh._jobs and not mesh._inflight and mesh._waiters.is_empty()


def test_a_passed_deadline_is_servfail_with_ede_22_at_exactly_the_deadline() -> None:
    driver = VirtualDriver(LAB, silent, now=T0, client_deadline_s=0.3)
    waiter = driver.ask("www.example.lab.", "A")
    assert driver.mesh.get_timer() == T0 + 0.3
    driver.run()
    result = driver.results[waiter]
    assert result.rcode == dns.rcode.SERVFAIL
    assert result.error_code == ExtendedError.NO_REACHABLE_AUTHORITY
    assert result.reason == "no server of . answered within 0.3 s"
    assert driver.finished_at[waiter] == T0 + 0.3
    assert_empty(driver.mesh)


def test_each_merged_client_keeps_its_own_deadline() -> None:
    driver = VirtualDriver(LAB, silent, now=T0, client_deadline_s=0.5)
    first = driver.ask("www.example.lab.", "A")
    driver.run(until=T0 + 0.2)
    second = driver.ask("www.example.lab.", "A")  # merged into the same job
    assert driver.mesh.counters.merged == 1
    driver.run(until=T0 + 0.6)
    assert driver.finished_at == {first: T0 + 0.5}
    assert len(driver.mesh) == 1  # the second client still waits on the walk
    driver.run()
    assert driver.finished_at[second] == T0 + 0.7
    assert_empty(driver.mesh)


def test_the_serve_stale_wait_fires_at_its_setting_and_the_client_waits_on() -> None:
    driver = VirtualDriver(
        LAB, silent, now=T0, client_deadline_s=1.0, serve_stale_client_timeout_s=0.25
    )
    waiter = driver.ask("www.example.lab.", "A", stale_wait=True)
    plain = driver.ask("www.example.lab.", "A")
    driver.run()
    assert driver.stale_due == {waiter: T0 + 0.25}  # only the client that asked for it
    assert driver.finished_at == {waiter: T0 + 1.0, plain: T0 + 1.0}


def test_no_stale_turn_when_the_result_comes_first() -> None:
    driver = VirtualDriver(LAB, fast, now=T0, serve_stale_client_timeout_s=0.25)
    waiter = driver.ask("www.example.lab.", "A", stale_wait=True)
    driver.run()
    assert driver.results[waiter].rcode == dns.rcode.NOERROR
    assert driver.finished_at[waiter] < T0 + 0.25
    assert driver.stale_due == {}
    assert_empty(driver.mesh)


def test_a_sub_resolution_shared_by_two_clients_is_dropped_with_the_last() -> None:
    """www.glueless.lab.'s server needs a sub-resolution (nsg.other.example.) that never
    ends; a second question in the zone joins that sub-resolution. Each deadline drops its
    own job; the shared one goes with the last, and no link is left behind."""
    driver = VirtualDriver(LAB, silent_in("other.example."), now=T0, client_deadline_s=0.5)
    first = driver.ask("www.glueless.lab.", "A")
    driver.run(until=T0 + 0.1)
    assert len(driver.mesh) == 2  # the client's job and its sub-resolution
    second = driver.ask("glueless.lab.", "SOA")
    driver.run(until=T0 + 0.2)
    assert len(driver.mesh) == 3  # the second job joined the same sub-resolution
    assert driver.mesh.zone_of(driver.mesh.job_of(first) or 0) == "other.example."
    driver.run(until=T0 + 0.55)
    assert set(driver.results) == {first}
    assert len(driver.mesh) == 2  # the shared sub-resolution stays for the second
    driver.run()
    assert set(driver.results) == {first, second}
    assert_empty(driver.mesh)


def test_finished_jobs_with_sub_resolutions_leave_no_links() -> None:
    driver = VirtualDriver(LAB, fast, now=T0)
    waiters = [driver.ask(q, "A") for q in ("www.glueless.lab.", "www.v6only.lab.")]
    driver.run()
    assert all(driver.results[w].rcode == dns.rcode.NOERROR for w in waiters)
    assert driver.mesh.counters.subqueries >= 2
    assert_empty(driver.mesh)


def test_a_job_failed_by_a_bug_gives_its_parent_the_real_now() -> None:
    """The sub-resolutions of www.glueless.lab.'s only server fail with a bug: the parent,
    left without a server, records the failure (RFC 9520 §3.2 backoff) at ``now``. With
    ``now=0.0`` passed on, the entry expired decades ago and the backoff was lost."""
    caches = Caches()
    mesh = Mesh(root=lab_root(), caches=caches, limits=Limits(), rng=random.Random(1))
    question = Question(dns.name.from_text("www.glueless.lab."), dns.rdatatype.A)
    waiter, effects = mesh.start(question, T0, 0.0)
    client_job = mesh.job_of(waiter)
    queue = deque(effects)
    done = None
    while queue:
        effect = queue.popleft()
        if isinstance(effect, Completed):
            done = effect
            continue
        assert isinstance(effect, Transmit)
        if effect.job_id != client_job:  # a sub-resolution: a bug ends it
            queue.extend(mesh.fail(effect.job_id, servfail("internal error"), T0))
            continue
        reply = LAB(effect.query.server, dns.message.from_wire(query_wire(effect.query, 0)))
        event: ReplyReceived | QueryFailed
        if isinstance(reply, Failure):
            event = QueryFailed(effect.query.ref, reply)
        else:
            event = ReplyReceived(effect.query.ref, read_reply(reply.to_wire()), 0.001)
        queue.extend(mesh.handle(effect.job_id, event, T0))
    assert done is not None and done.waiters == (waiter,)
    assert done.result.rcode == dns.rcode.SERVFAIL
    assert caches.failures.get(question.qname, question.qtype, T0) is not None
    assert_empty(mesh)


def test_stale_due_names_the_job_and_waiter() -> None:
    mesh = Mesh(
        root=lab_root(),
        caches=Caches(),
        limits=Limits(),
        rng=random.Random(1),
        client_deadline_s=4.0,
        serve_stale_client_timeout_s=1.8,
    )
    question = Question(dns.name.from_text("www.example.lab."), dns.rdatatype.A)
    waiter, _ = mesh.start(question, T0, 10.0, stale_wait=True)
    assert mesh.get_timer() == 11.8
    assert mesh.handle_timer(11.7) == []
    assert mesh.handle_timer(11.8) == [StaleDue(mesh.job_of(waiter) or 0, waiter)]
    assert mesh.get_timer() == 14.0
    mesh.release(waiter)
    assert_empty(mesh)


def test_the_mesh_counts_upstream_outcomes_from_events_the_machines_take() -> None:
    """The machine reports what an event taught (``last_outcome``); the mesh counts it and
    no machine holds the mesh's counter. An event the machine ignores counts nothing."""
    driver = VirtualDriver(LAB, fast, now=T0)
    driver.ask("www.example.lab.", "A")
    driver.run()
    upstream = driver.mesh.counters.upstream
    assert upstream["answer"] == 1 and upstream["referral"] >= 1
    assert "timeout" not in upstream
    silent_driver = VirtualDriver(LAB, silent, now=T0, client_deadline_s=3.0)
    waiter = silent_driver.ask("www.example.lab.", "A")
    job = silent_driver.mesh.job_of(waiter)
    assert job is not None
    before = dict(silent_driver.mesh.counters.upstream)
    assert silent_driver.mesh.handle(job, QueryFailed(999, Failure.TIMEOUT), T0) == []
    assert dict(silent_driver.mesh.counters.upstream) == before  # a stale ref: ignored
    silent_driver.run()
    assert silent_driver.mesh.counters.upstream["timeout"] >= 1


def test_a_resolution_that_fails_to_start_leaves_no_job_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in a resolution's start (planted: it raises for nsg.other.example.) reaches the
    caller of :meth:`Mesh.start`, or, for a sub-question, fails the job that asked it (its
    client gets SERVFAIL); either way the job is gone: left in the table, the next client
    asking the same question (or needing it as a name server's address) would join a job
    that never runs and wait out its deadline."""
    start = Resolution.start

    def broken(self: Resolution, now: float) -> list[Action]:
        if self.question.qname == dns.name.from_text("nsg.other.example."):
            raise RuntimeError("a planted bug")
        return start(self, now)

    monkeypatch.setattr(Resolution, "start", broken)
    mesh = Mesh(root=lab_root(), caches=Caches(), limits=Limits(), rng=random.Random(1))
    ns_question = Question(dns.name.from_text("nsg.other.example."), dns.rdatatype.A)
    with pytest.raises(RuntimeError):
        mesh.start(ns_question, T0, 0.0)
    assert_empty(mesh)  # as a client's question

    client_question = Question(dns.name.from_text("www.glueless.lab."), dns.rdatatype.A)
    waiter, effects = mesh.start(client_question, T0, 0.0)
    queue, done = deque(effects), []
    while queue:  # as a sub-question, once the referral names nsg.: the mesh fails the job
        effect = queue.popleft()
        if isinstance(effect, Completed):
            done.append(effect)
            continue
        reply = LAB(effect.query.server, dns.message.from_wire(query_wire(effect.query, 0)))
        assert not isinstance(reply, Failure)
        event = ReplyReceived(effect.query.ref, read_reply(reply.to_wire()), 0.001)
        queue.extend(mesh.handle(effect.job_id, event, T0))
    assert [(c.waiters, c.result.rcode) for c in done] == [((waiter,), dns.rcode.SERVFAIL)]
    assert ns_question not in mesh._inflight and mesh.counters.bugs == 1
    assert_empty(mesh)


def test_clients_of_a_job_whose_parent_raises_still_get_one_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client asks nsg.other.example. A itself while www.glueless.lab. needs it as its
    name server's address; when that job finishes, the parent's handling of the result
    raises (a planted bug). The mesh fails the parent (its client gets SERVFAIL) and goes
    on finishing the child: its own client gets the child's answer, once. (Before, the
    exception reached the driver and the child's client waited for its deadline; earlier
    still its waiter was dropped and it was never answered.)"""
    handle = Resolution.handle

    def broken(self: Resolution, event: Event, now: float) -> list[Action]:
        if isinstance(event, SubqueryDone):
            raise RuntimeError("a planted bug in the parent")
        return handle(self, event, now)

    monkeypatch.setattr(Resolution, "handle", broken)
    mesh = Mesh(root=lab_root(), caches=Caches(), limits=Limits(), rng=random.Random(1))
    parent = Question(dns.name.from_text("www.glueless.lab."), dns.rdatatype.A)
    child = Question(dns.name.from_text("nsg.other.example."), dns.rdatatype.A)
    parent_waiter, effects = mesh.start(parent, T0, 0.0)
    queue, done = deque(effects), []
    client = None
    while queue:
        effect = queue.popleft()
        if isinstance(effect, Completed):
            done.append(effect)
            continue
        if client is None and child in mesh._inflight:
            client, more = mesh.start(child, T0, 0.0)  # merges into the sub-resolution
            assert more == []
        reply = LAB(effect.query.server, dns.message.from_wire(query_wire(effect.query, 0)))
        assert not isinstance(reply, Failure)
        event = ReplyReceived(effect.query.ref, read_reply(reply.to_wire()), 0.001)
        queue.extend(mesh.handle(effect.job_id, event, T0))
    assert client is not None
    answers = {waiter: c.result.rcode for c in done for waiter in c.waiters}
    assert answers == {parent_waiter: dns.rcode.SERVFAIL, client: dns.rcode.NOERROR}
    assert len([w for c in done for w in c.waiters]) == 2  # each once
    assert mesh.counters.bugs == 1
    assert_empty(mesh)


def test_fail_all_ends_every_job_with_its_clients_answered() -> None:
    """A reload that changes the DNSSEC settings ends everything in flight (sub-resolutions
    included): each client gets the failure once, and nothing is left to write a verdict
    of the old settings into the caches afterwards."""
    mesh = Mesh(root=lab_root(), caches=Caches(), limits=Limits(), rng=random.Random(1))
    questions = [
        Question(dns.name.from_text(name), dns.rdatatype.A)
        for name in ("www.glueless.lab.", "www.example.lab.", "www.glueless.lab.")
    ]
    started = [mesh.start(question, T0, 0.0) for question in questions]
    waiters = [waiter for waiter, _ in started]
    queue = deque(effect for _, effects in started for effect in effects)
    while len(mesh) < 3:  # until www.glueless.lab. waits on its server's address
        effect = queue.popleft()
        assert isinstance(effect, Transmit)
        reply = LAB(effect.query.server, dns.message.from_wire(query_wire(effect.query, 0)))
        assert not isinstance(reply, Failure)
        event = ReplyReceived(effect.query.ref, read_reply(reply.to_wire()), 0.001)
        queue.extend(mesh.handle(effect.job_id, event, T0))
    assert mesh.counters.subqueries >= 1
    effects = mesh.fail_all(servfail("the DNSSEC settings were reloaded"), T0)
    completed = [effect for effect in effects if isinstance(effect, Completed)]
    assert sorted(w for effect in completed for w in effect.waiters) == sorted(waiters)
    assert all(effect.result.rcode == dns.rcode.SERVFAIL for effect in completed)
    assert_empty(mesh)


def drive(mesh: Mesh, effects: list[Effect]) -> list[Completed]:
    """Answer every Transmit from the in-memory lab until no effect is left; the Completed
    effects met on the way."""
    queue, done = deque(effects), []
    while queue:
        effect = queue.popleft()
        if isinstance(effect, Completed):
            done.append(effect)
            continue
        assert isinstance(effect, Transmit)
        reply = LAB(effect.query.server, dns.message.from_wire(query_wire(effect.query, 0)))
        assert not isinstance(reply, Failure)
        event = ReplyReceived(effect.query.ref, read_reply(reply.to_wire()), 0.001)
        queue.extend(mesh.handle(effect.job_id, event, T0))  # never raises
    return done


def test_the_mesh_fails_a_resolution_whose_step_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a sub-resolution's step (planted: nsg.other.example.'s machine raises on its
    first reply) is the mesh's to handle, not its driver's: :meth:`Mesh.handle` returns the
    client's SERVFAIL, counts the bug, and leaves no job behind."""
    handle = Resolution.handle

    def broken(self: Resolution, event: Event, now: float) -> list[Action]:
        if self.question.qname.to_text().startswith("nsg."):
            raise RuntimeError("a planted bug in a sub-resolution")
        return handle(self, event, now)

    monkeypatch.setattr(Resolution, "handle", broken)
    mesh = Mesh(root=lab_root(), caches=Caches(), limits=Limits(), rng=random.Random(1))
    question = Question(dns.name.from_text("www.glueless.lab."), dns.rdatatype.A)
    waiter, effects = mesh.start(question, T0, 0.0)
    done = drive(mesh, effects)
    assert [(c.waiters, c.result.rcode) for c in done] == [((waiter,), dns.rcode.SERVFAIL)]
    assert mesh.counters.bugs == 1
    assert_empty(mesh)


def test_a_sub_resolution_whose_own_sub_resolution_fails_to_start_is_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nsg.other.example.'s resolution starts by asking for a further address at once (as
    it does when the cache holds a delegation without glue), and that grandchild's start
    raises (a planted bug). The sub-resolution must end with it: left in the mesh with no
    parent, its queries were lost and the next client asking nsg.other.example. joined it
    and waited out its whole deadline. The client that needed it gets SERVFAIL, the bug is
    counted once; a client asking nsg.other.example. itself sees the bug raised from
    :meth:`Mesh.start` and leaves no job behind either. Once the bug is gone, the next
    client of the same name gets a walk of its own and its answer."""
    start = Resolution.start
    nsg = dns.name.from_text("nsg.other.example.")
    grandchild = Question(dns.name.from_text("ns9.other.example."), dns.rdatatype.A)
    planted = [True]

    def broken(self: Resolution, now: float) -> list[Action]:
        if planted[0] and self.question == grandchild:
            raise RuntimeError("a planted bug in a grandchild's start")
        actions = start(self, now)
        if planted[0] and self.question.qname == nsg:
            return [*actions, StartSubquery(10_000, grandchild)]
        return actions

    monkeypatch.setattr(Resolution, "start", broken)
    mesh = Mesh(root=lab_root(), caches=Caches(), limits=Limits(), rng=random.Random(1))
    ns_question = Question(nsg, dns.rdatatype.A)
    with pytest.raises(RuntimeError):
        mesh.start(ns_question, T0, 0.0)
    assert_empty(mesh)  # as a client's question

    client_question = Question(dns.name.from_text("www.glueless.lab."), dns.rdatatype.A)
    waiter, effects = mesh.start(client_question, T0, 0.0)
    done = drive(mesh, effects)
    assert [(c.waiters, c.result.rcode) for c in done] == [((waiter,), dns.rcode.SERVFAIL)]
    assert mesh.counters.bugs == 1
    assert_empty(mesh)  # the sub-resolution ended with its grandchild

    planted[0] = False
    waiter, effects = mesh.start(ns_question, T0, 0.0)
    assert effects  # a walk of its own, not a merge into a job that never runs
    done = drive(mesh, effects)
    assert [(c.waiters, c.result.rcode) for c in done] == [((waiter,), dns.rcode.NOERROR)]
    assert_empty(mesh)
