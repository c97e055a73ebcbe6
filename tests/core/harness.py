"""A synchronous driver for the sans-IO core: virtual time, in-memory authorities.

The lab's answer function serves the zones (no sockets); faults from the lab description
become the events the real transport would produce (a dropped query is a timeout).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery
from resolver.files import load_root_hints
from resolver.lab.authority import lab_response, load_zone
from resolver.lab.description import LabDescription
from resolver.limits import Limits
from resolver.mesh import Completed, Effect, Mesh, StaleDue, Transmit
from resolver.model import Question, Result, ZoneCut
from resolver.paths import lab_root_hints
from resolver.records import read_reply
from resolver.transport.upstream import query_wire

Responder = Callable[[str, dns.message.Message], dns.message.Message | Failure]
"""(server address, query) -> the server's reply, or a failure."""


def lab_responder(description: LabDescription, seed: int = 0, *, signed: bool = False) -> Responder:
    """Answer as the lab's servers would, faults included (delays do not exist here);
    ``signed``: serve the signed zones where there are some, as the real lab does."""
    files = description.serving_files() if signed else description.zone_files
    loaded = {zone: load_zone(str(path), zone) for zone, path in files.items()}
    servers = {spec.address: spec for spec in description.servers}
    rng = random.Random(seed)

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        spec = servers.get(address)
        if spec is None:
            return Failure.TIMEOUT
        faults = spec.faults
        if faults.drop and rng.random() < faults.drop:
            return Failure.TIMEOUT
        if faults.garbage or faults.wrong_id:
            return Failure.TIMEOUT  # the transport ignores them until its timeout
        response = lab_response({z: loaded[z] for z in spec.zones}, faults, query)
        return Failure.TIMEOUT if response is None else response

    return respond


@dataclass
class Walk:
    """The outcome of one synchronous resolution and what it sent."""

    result: Result
    sent: list[SendQuery] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    by_server: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0


def lab_root() -> ZoneCut:
    return load_root_hints(lab_root_hints())


def resolve(
    qname: str,
    qtype: str,
    responder: Responder,
    *,
    limits: Limits | None = None,
    seed: int = 1,
    root: ZoneCut | None = None,
    caches: Caches | None = None,
    now: float = 1_000_000.0,
    rtt_s: float = 0.001,
    harden_glue: bool = True,
    qname_minimisation: bool = True,
    validator: Validator | None = None,
    checking_disabled: bool = False,
) -> Walk:
    """Run one client question to its end; time is virtual (a timeout costs the query's
    timeout). Pass the same ``caches`` to several calls to see what the cache remembers."""
    mesh = Mesh(
        root=root or lab_root(),
        caches=caches if caches is not None else Caches(),
        limits=limits or Limits(),
        rng=random.Random(seed),
        harden_glue=harden_glue,
        qname_minimisation=qname_minimisation,
        validator=validator,
    )
    question = Question(
        dns.name.from_text(qname),
        dns.rdatatype.from_text(qtype),
        checking_disabled=checking_disabled,
    )
    walk = Walk(result=Result(dns.rcode.SERVFAIL))
    waiter, effects = mesh.start(question, now, now)  # no timers fire here: see VirtualDriver
    queue = deque(effects)
    while queue:
        effect = queue.popleft()
        if isinstance(effect, Completed):
            assert effect.waiters == (waiter,)
            walk.result = effect.result
            assert not queue, "effects after completion"
            assert len(mesh) == 0, "jobs left in the mesh"
            return walk
        assert isinstance(effect, Transmit)
        send = effect.query
        walk.sent.append(send)
        walk.by_server[send.server] += 1
        reply = responder(send.server, dns.message.from_wire(query_wire(send, 0)))
        if isinstance(reply, Failure):
            walk.elapsed_s += send.timeout_s
            now += send.timeout_s
            event: ReplyReceived | QueryFailed = QueryFailed(send.ref, reply)
        else:
            walk.elapsed_s += rtt_s
            now += rtt_s
            event = ReplyReceived(send.ref, read_reply(reply.to_wire(max_size=65535)), rtt_s)
        queue.extend(mesh.handle(effect.job_id, event, now))
    raise AssertionError("the resolution stopped without finishing")


Delay = Callable[[str, SendQuery], float | None]
"""(server address, the query sent) -> seconds until its reply arrives; None: never."""


def resolve_timed(
    qname: str,
    qtype: str,
    responder: Responder,
    delay: Delay,
    *,
    caches: Caches | None = None,
    now: float = 1_000_000.0,
    seed: int = 1,
    default_timeout_s: float = 1.0,
) -> Walk:
    """As :func:`resolve`, with events in virtual-time order as the real transport makes
    them: a try whose reply takes longer than its wait reports a timeout at its wait, and
    its reply still arrives later unless ``listen_s`` has passed or the question at that
    server was settled by a reply on another try. ``Walk.sent_at`` says when each try left.
    No client deadline (see :class:`VirtualDriver` for one)."""
    driver = VirtualDriver(
        responder,
        delay,
        caches=caches,
        now=now,
        seed=seed,
        default_timeout_s=default_timeout_s,
        client_deadline_s=float("inf"),
    )
    waiter = driver.ask(qname, qtype)
    driver.run()
    result = driver.results.get(waiter)
    finished = result is not None and driver.finished_at[waiter] != float("inf")
    assert result is not None and finished, "the resolution stopped without finishing"
    walk = driver.walk
    walk.result = result
    walk.elapsed_s = driver.finished_at[waiter] - now
    return walk


class VirtualDriver:
    """The driver's loop in virtual time: tries, replies and the mesh's timers (client
    deadlines, serve-stale waits) happen in time order and nothing really waits. The wall
    clock (``now``, for caches) and the monotonic clock (for timers) are the same virtual
    clock here. ``results``, ``stale_due`` and ``finished_at`` are keyed by waiter."""

    def __init__(
        self,
        responder: Responder,
        delay: Delay = lambda _server, _send: 0.001,
        *,
        caches: Caches | None = None,
        now: float = 1_000_000.0,
        seed: int = 1,
        default_timeout_s: float = 1.0,
        client_deadline_s: float = 4.0,
        serve_stale_client_timeout_s: float = 1.8,
        limits: Limits | None = None,
    ) -> None:
        self.mesh = Mesh(
            root=lab_root(),
            caches=caches if caches is not None else Caches(),
            limits=limits or Limits(),
            rng=random.Random(seed),
            default_timeout_s=default_timeout_s,
            client_deadline_s=client_deadline_s,
            serve_stale_client_timeout_s=serve_stale_client_timeout_s,
        )
        self.responder = responder
        self.delay = delay
        self.now = now
        self.start = now
        self.walk = Walk(result=Result(dns.rcode.SERVFAIL))
        self.results: dict[int, Result] = {}
        self.finished_at: dict[int, float] = {}
        self.stale_due: dict[int, float] = {}
        self._timeline: list[tuple[float, int, int, ReplyReceived | QueryFailed, int]] = []
        self._order = itertools.count()
        self._open_tries: dict[tuple[object, ...], set[int]] = {}
        self._closed: set[int] = set()

    def ask(self, qname: str, qtype: str, *, stale_wait: bool = False) -> int:
        """A client asks now; returns its waiter id."""
        question = Question(dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
        waiter, effects = self.mesh.start(question, self.now, self.now, stale_wait=stale_wait)
        self._perform(effects)
        return waiter

    def run(self, until: float = float("inf")) -> None:
        """Play events and timers in time order up to ``until`` (or until none is left)."""
        while True:
            timer = self.mesh.get_timer()
            event_at = self._timeline[0][0] if self._timeline else None
            if timer is not None and (event_at is None or timer <= event_at):
                if timer > until:
                    break
                self.now = timer
                self._perform(self.mesh.handle_timer(timer))
                continue
            if event_at is None or event_at > until:
                break
            at, _, owner, event, try_id = heapq.heappop(self._timeline)
            if try_id in self._closed:
                continue  # the transport closed this try's socket
            self.now = at
            if isinstance(event, ReplyReceived):
                # The question at that server is settled: every try of it is closed.
                sent = self.walk.sent[try_id - 1]
                key = (owner, sent.server, sent.qname, sent.qtype)
                self._closed.update(self._open_tries.pop(key, set()))
            self._perform(self.mesh.handle(owner, event, at))
        if until != float("inf"):
            self.now = until

    def _perform(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Completed):
                for waiter in effect.waiters:
                    self.results[waiter] = effect.result
                    self.finished_at[waiter] = self.now
            elif isinstance(effect, StaleDue):
                self.stale_due[effect.waiter] = self.now
            else:
                self._transmit(effect)

    def _transmit(self, effect: Transmit) -> None:
        at = self.now
        send = effect.query
        walk = self.walk
        walk.sent.append(send)
        walk.sent_at.append(at - self.start)
        walk.by_server[send.server] += 1
        try_id = len(walk.sent)
        key = (effect.job_id, send.server, send.qname, send.qtype)
        self._open_tries.setdefault(key, set()).add(try_id)
        reply = self.responder(send.server, dns.message.from_wire(query_wire(send, 0)))
        seconds = None if isinstance(reply, Failure) else self.delay(send.server, send)
        listen_s = max(send.listen_s, send.timeout_s)
        timeline = self._timeline
        if seconds is None or seconds > send.timeout_s:
            failed = QueryFailed(send.ref, Failure.TIMEOUT)
            entry = (at + send.timeout_s, next(self._order), effect.job_id, failed, try_id)
            heapq.heappush(timeline, entry)
        if seconds is not None and seconds <= listen_s and not isinstance(reply, Failure):
            received = ReplyReceived(send.ref, read_reply(reply.to_wire(max_size=65535)), seconds)
            heapq.heappush(
                timeline, (at + seconds, next(self._order), effect.job_id, received, try_id)
            )
