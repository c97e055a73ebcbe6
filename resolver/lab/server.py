"""The lab's authoritative servers: one per 127.53.x.y address, with injected faults."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode

from resolver.lab.authority import ServedZone, authoritative_answer, load_zone
from resolver.lab.description import LabDescription, ServerSpec, load_lab_description
from resolver.model import Transport
from resolver.transport.listeners import Listeners
from resolver.wire import FLAG_TC, set_id

log = logging.getLogger(__name__)

LAB_EDNS_PAYLOAD = 1232


def _udp_limit(query: dns.message.Message) -> int:
    """The largest UDP reply the querier accepts (RFC 6891 §6.2.5; 512 without EDNS)."""
    return max(512, query.payload) if query.edns >= 0 else 512


def render_reply(response: dns.message.Message, limit: int) -> bytes:
    """Render, setting TC and dropping what does not fit when over ``limit`` (RFC 2181 §9)."""
    return response.to_wire(max_size=limit, prefer_truncation=True)


class LabAuthority:
    """One lab server: answers from its zones, with faults, counting what it receives."""

    def __init__(
        self, spec: ServerSpec, zones: dict[dns.name.Name, ServedZone], rng: random.Random
    ) -> None:
        self.spec = spec
        self.zones = zones
        self._rng = rng
        self.queries_received = 0
        self.queries_by_transport: dict[Transport, int] = {Transport.UDP: 0, Transport.TCP: 0}

    async def handle(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        del client
        self.queries_received += 1
        self.queries_by_transport[transport] += 1
        faults = self.spec.faults
        if faults.drop and self._rng.random() < faults.drop:
            return None
        if faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        if faults.garbage:
            return self._rng.randbytes(self._rng.randint(1, 64))
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if faults.rcode is not None or (faults.formerr_edns and query.edns >= 0):
            response = dns.message.make_response(query)
            response.use_edns(False)
            response.set_rcode(faults.rcode if faults.rcode is not None else dns.rcode.FORMERR)
        else:
            response = authoritative_answer(self.zones, query)
            if query.edns >= 0:
                response.use_edns(0, payload=LAB_EDNS_PAYLOAD)
        if transport is Transport.UDP and faults.truncate:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= FLAG_TC
        limit = _udp_limit(query) if transport is Transport.UDP else 65535
        reply = render_reply(response, limit)
        if faults.wrong_id:
            reply = set_id(reply, query.id ^ 0x5A5A)
        return reply


class Lab:
    """All the lab's servers, started on one port."""

    def __init__(self, description: LabDescription, port: int, *, seed: int = 0) -> None:
        self.description = description
        self.port = port
        self._rng = random.Random(seed)
        loaded = {zone: load_zone(str(path), zone) for zone, path in description.zone_files.items()}
        self.authorities = [
            LabAuthority(spec, {z: loaded[z] for z in spec.zones}, self._rng)
            for spec in description.servers
        ]
        self._listeners: list[Listeners] = []

    @classmethod
    def from_file(cls, path: Path, port: int) -> Lab:
        return cls(load_lab_description(path), port)

    def authority(self, address: str) -> LabAuthority:
        """The lab server at ``address``."""
        for authority in self.authorities:
            if authority.spec.address == address:
                return authority
        raise KeyError(address)

    def total_queries(self) -> int:
        return sum(a.queries_received for a in self.authorities)

    async def start(self) -> None:
        for authority in self.authorities:
            listeners = Listeners(authority.handle)
            await listeners.listen_udp(authority.spec.address, self.port)
            if authority.spec.faults.tcp:
                await listeners.listen_tcp(authority.spec.address, self.port)
            self._listeners.append(listeners)
        log.info("lab: %d servers on port %d", len(self.authorities), self.port)

    async def close(self) -> None:
        for listeners in self._listeners:
            await listeners.close()
        self._listeners.clear()
