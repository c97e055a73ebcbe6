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
from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery
from resolver.files import load_root_hints
from resolver.lab.authority import lab_response, load_zone
from resolver.lab.description import LabDescription
from resolver.limits import Limits
from resolver.mesh import Completed, Effect, Mesh, Transmit
from resolver.model import Question, Result, ZoneCut
from resolver.paths import lab_root_hints
from resolver.records import read_reply
from resolver.transport.upstream import query_wire

Responder = Callable[[str, dns.message.Message], dns.message.Message | Failure]
"""(server address, query) -> the server's reply, or a failure."""


def lab_responder(description: LabDescription, seed: int = 0) -> Responder:
    """Answer as the lab's servers would, faults included (delays do not exist here)."""
    loaded = {zone: load_zone(str(path), zone) for zone, path in description.zone_files.items()}
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
    )
    question = Question(dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
    walk = Walk(result=Result(dns.rcode.SERVFAIL))
    job_id, effects = mesh.start(question, now)
    queue = deque(effects)
    while queue:
        effect = queue.popleft()
        if isinstance(effect, Completed):
            assert effect.job_id == job_id
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
            event = ReplyReceived(send.ref, read_reply(reply.to_wire()), rtt_s)
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
    server was settled by a reply on another try. ``Walk.sent_at`` says when each try left."""
    mesh = Mesh(
        root=lab_root(),
        caches=caches if caches is not None else Caches(),
        limits=Limits(),
        rng=random.Random(seed),
        default_timeout_s=default_timeout_s,
    )
    question = Question(dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
    walk = Walk(result=Result(dns.rcode.SERVFAIL))
    start = now
    job_id, effects = mesh.start(question, now)
    timeline: list[tuple[float, int, int, ReplyReceived | QueryFailed, int]] = []
    order = itertools.count()
    open_tries: dict[tuple[object, ...], set[int]] = {}
    closed: set[int] = set()

    def transmit(effect: Transmit, at: float) -> None:
        send = effect.query
        walk.sent.append(send)
        walk.sent_at.append(at - start)
        walk.by_server[send.server] += 1
        try_id = len(walk.sent)
        open_tries.setdefault((effect.job_id, send.server, send.qname, send.qtype), set()).add(
            try_id
        )
        reply = responder(send.server, dns.message.from_wire(query_wire(send, 0)))
        seconds = None if isinstance(reply, Failure) else delay(send.server, send)
        listen_s = max(getattr(send, "listen_s", 0.0), send.timeout_s)  # 0 on main
        if seconds is None or seconds > send.timeout_s:
            failed = QueryFailed(send.ref, Failure.TIMEOUT)
            heapq.heappush(
                timeline, (at + send.timeout_s, next(order), effect.job_id, failed, try_id)
            )
        if seconds is not None and seconds <= listen_s and not isinstance(reply, Failure):
            received = ReplyReceived(send.ref, read_reply(reply.to_wire()), seconds)
            heapq.heappush(timeline, (at + seconds, next(order), effect.job_id, received, try_id))

    def perform(effects: list[Effect], at: float) -> Result | None:
        for effect in effects:
            if isinstance(effect, Completed):
                if effect.job_id == job_id:
                    return effect.result
                continue
            transmit(effect, at)
        return None

    result = perform(effects, now)
    while result is None:
        assert timeline, "the resolution stopped without finishing"
        at, _, owner, event, try_id = heapq.heappop(timeline)
        if try_id in closed:
            continue  # the transport closed this try's socket
        if isinstance(event, ReplyReceived):
            # The question at that server is settled: every try of it is closed.
            sent = walk.sent[try_id - 1]
            closed.update(open_tries.pop((owner, sent.server, sent.qname, sent.qtype), set()))
        result = perform(mesh.handle(owner, event, at), at)
        walk.elapsed_s = at - start
    walk.result = result
    return walk
