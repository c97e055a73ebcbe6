"""A synchronous driver for the sans-IO core: virtual time, in-memory authorities.

The lab's answer function serves the zones (no sockets); faults from the lab description
become the events the real transport would produce (a dropped query is a timeout).
"""

from __future__ import annotations

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
from resolver.core.hints import load_root_hints
from resolver.core.zonecut import ZoneCut
from resolver.lab.authority import lab_response, load_zone
from resolver.lab.description import LabDescription
from resolver.limits import Limits
from resolver.mesh import Completed, Mesh, Transmit
from resolver.model import Question, Result
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
