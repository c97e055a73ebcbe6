"""``rootwalk trace NAME [TYPE]``: resolve in-process from the root hints, printing each step
of the walk: the zone asked, the server, the RTT, what came back and what it taught."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.config import Settings
from resolver.core.classify import ClassifiedReply, ReplyKind, classify_reply
from resolver.core.events import Failure, QueryFailed, ReplyReceived
from resolver.driver import Driver
from resolver.files import load_root_hints
from resolver.limits import Limits
from resolver.mesh import Mesh, Transmit
from resolver.model import Question, Result
from resolver.records import WireRRset, name_from_wire
from resolver.reload import validator_for
from resolver.transport.upstream import Upstream


def _rrsets_text(rrsets: tuple[WireRRset, ...]) -> str:
    return "; ".join(
        f"{r.name} {dns.rdatatype.to_text(dns.rdatatype.RdataType.make(r.rdtype))} "
        + " ".join(d.to_text() for d in r)
        for r in rrsets
    )


def describe_reply(reply: ClassifiedReply) -> list[str]:
    """What a classified reply means, and what of it is cached, as lines of text."""
    match reply.kind:
        case ReplyKind.REFERRAL:
            assert reply.referral is not None
            servers = ", ".join(
                f"{name_from_wire(ns)} ({' '.join(addresses) if addresses else 'no glue'})"
                for ns, addresses in reply.referral.nameservers.items()
            )
            return [
                f"referral to {reply.referral.zone}: {servers}",
                f"cached: {_rrsets_text(reply.referral_rrsets)}",
            ]
        case ReplyKind.ANSWER | ReplyKind.CNAME:
            head = (
                "answer"
                if reply.kind is ReplyKind.ANSWER
                else f"CNAME, go on at {reply.next_qname}"
            )
            return [head, f"cached: {_rrsets_text(reply.chain)}"]
        case ReplyKind.NXDOMAIN | ReplyKind.NODATA:
            soa = f"; SOA {reply.soa.name} negative TTL {reply.soa.ttl}" if reply.soa else ""
            return [f"{reply.kind.value} for {reply.next_qname}{soa}", "cached: negative answer"]
        case _:
            return [f"{reply.kind.value} {reply.detail}".strip()]


async def trace(
    settings: Settings, question: Question, write: Callable[[str], None] = print
) -> Result:
    """Resolve ``question`` with fresh caches, writing one block per upstream exchange."""
    root = load_root_hints(settings.root_hints)
    validator = validator_for(settings)  # as serve's (resolver/reload.py)
    upstream = Upstream(port=settings.outbound_port, allow=settings.outbound_allow)
    mesh = Mesh(
        root=root,
        caches=Caches(),
        limits=Limits(),
        rng=random.Random(),
        default_timeout_s=settings.upstream_timeout_s,
        harden_glue=settings.harden_glue,
        validator=validator,
    )
    driver = Driver(mesh, upstream, deadline_s=settings.client_deadline_s, clock=time.time)
    step = 0

    def observe(effect: Transmit, event: ReplyReceived | QueryFailed) -> None:
        nonlocal step
        step += 1
        send = effect.query
        described = mesh.describe(effect.job_id)
        depth = described[1] if described else 0
        indent = "  " * depth
        what = f"{send.qname} {dns.rdatatype.to_text(send.qtype)}"
        sub = ""
        if depth and send.qtype in (dns.rdatatype.DNSKEY, dns.rdatatype.DS):
            sub = " (DNSSEC: the zone's keys, for the chain of trust)"
        elif depth:
            sub = " (sub-resolution: a name server's address)"
        write(f"{indent}[{step}] zone {send.zone}: ask {send.server} {what}{sub}")
        if isinstance(event, QueryFailed):
            if event.failure is Failure.LOCAL_ADDRESS:
                write(f"{indent}    -> skipped (local_address): {event.failure.value}")
            else:
                write(f"{indent}    -> {event.failure.value}")
            return
        reply = classify_reply(
            event.reply, send.zone, send.qname, send.qtype, used_edns=send.use_edns
        )
        lines = describe_reply(reply)
        write(f"{indent}    -> {lines[0]} ({event.rtt_s * 1000:.1f} ms)")
        for line in lines[1:]:
            write(f"{indent}       {line}")

    driver.observer = observe
    write(f";; tracing {question} from the root hints in {settings.root_hints}")
    result = await driver.resolve(question)
    write(f";; {dns.rcode.to_text(result.rcode)}" + (f": {result.reason}" if result.reason else ""))
    if result.security is not None:
        write(f";; DNSSEC: {result.security.value}")
    for rrset in result.answer + result.authority:
        write(rrset.to_text())
    await driver.close()
    return result
