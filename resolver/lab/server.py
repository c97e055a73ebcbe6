"""The lab's authoritative servers: one per 127.53.x.y address, with injected faults."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.lab.authority import (
    FORGED_ADDRESS,
    ServedZone,
    lab_response,
    load_zone,
    name_delay_s,
)
from resolver.lab.description import Faults, LabDescription, ServerSpec, load_lab_description
from resolver.model import Transport
from resolver.transport.listeners import Listeners
from resolver.wire import FLAG_TC, set_id

log = logging.getLogger(__name__)


def _udp_limit(query: dns.message.Message) -> int:
    """The largest UDP reply the querier accepts (RFC 6891 §6.2.5; 512 without EDNS)."""
    return max(512, query.payload) if query.edns >= 0 else 512


def render_reply(response: dns.message.Message, limit: int) -> bytes:
    """Render, setting TC and dropping what does not fit when over ``limit`` (RFC 2181 §9).
    Records keep the zone's order (no shuffling): which of keytrap.lab.'s colliding keys a
    validator meets first decides where Unbound gives up (EDE 6 or 9), so a shuffled order
    made the signed lab's oracle flaky."""
    return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


_PARSED: dict[tuple[Path, int, dns.name.Name], ServedZone] = {}


def loaded_zone(path: Path, origin: dns.name.Name) -> ServedZone:
    """The zone in ``path``, parsed once per process while the file is unchanged: the test
    suite starts labs many times, and the signed zones cost about 3x as much to parse as
    their sources (0.29 s for the whole lab against 0.10 s). Servers never change a zone."""
    key = (path, path.stat().st_mtime_ns, origin)
    if key not in _PARSED:
        _PARSED[key] = load_zone(str(path), origin)
    return _PARSED[key]


RECENT_QUESTIONS = 64
"""Questions each lab server remembers for tests."""


class LabAuthority:
    """One lab server: answers from its zones, with faults, counting what it receives."""

    def __init__(
        self, spec: ServerSpec, zones: dict[dns.name.Name, ServedZone], rng: random.Random
    ) -> None:
        self.spec = spec
        self.zones = zones
        self._rng = rng
        self.queries_received = 0
        self.questions: deque[tuple[str, str]] = deque(maxlen=RECENT_QUESTIONS)
        """The last questions received (name as sent, letter case kept; type), so tests can
        see what each server was asked (QNAME minimisation, 0x20)."""
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
        if delay_s := name_delay_s(faults, query):
            await asyncio.sleep(delay_s)
        if query.question:
            question = query.question[0]
            self.questions.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        response = lab_response(self.zones, faults, query)
        if response is None:
            return None
        if faults.no_aa or faults.swap_case or faults.wrong_question:
            misstate(response, faults)
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


def misstate(response: dns.message.Message, faults: Faults) -> None:
    """Apply the header and question faults (``no_aa``, ``swap_case``, ``wrong_question``)
    to a reply about to be sent."""
    if faults.no_aa:
        response.flags &= ~dns.flags.AA
    if not response.question:
        return
    question = response.question[0]
    name = question.name
    if faults.swap_case:
        name = dns.name.Name([label.swapcase() for label in name.labels])
    if faults.wrong_question:
        name = dns.name.Name([b"wrong", *name.labels])
    response.question[0] = dns.rrset.RRset(name, question.rdclass, question.rdtype)


class Forger:
    """What a spraying lab server remembers and sends (RFC 5452 §3's attacker, given the
    best seat: it owns the authority's address and port and sees every query it receives)."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.count = count
        self._rng = rng
        self.recent_ports: list[int] = []
        self.recent_ids: list[int] = []
        self.sent = 0

    def forgeries(self, query_wire: bytes) -> list[tuple[bytes, int]]:
        """(forged reply, destination port) pairs for one query; only what was seen
        before this query is used to aim them."""
        try:
            query = dns.message.from_wire(query_wire)
        except dns.exception.DNSException:
            return []
        forged = dns.message.make_response(query)
        forged.flags |= dns.flags.AA
        rrset = query.question[0]
        forged.answer.append(dns.rrset.from_text(rrset.name, 3600, "IN", "A", FORGED_ADDRESS))
        wire = forged.to_wire()
        ports = self.recent_ports[-8:] + [self._rng.randint(1024, 65535) for _ in range(4)]
        ids = [(seen + step) & 0xFFFF for seen in self.recent_ids[-2:] for step in range(1, 9)]
        ids += [self._rng.randrange(65536) for _ in range(self.count)]
        return [(set_id(wire, message_id), port) for port in ports for message_id in ids]

    def remember(self, port: int, message_id: int) -> None:
        self.recent_ports = [*self.recent_ports[-31:], port]
        self.recent_ids = [*self.recent_ids[-31:], message_id]


class _SprayingProtocol(asyncio.DatagramProtocol):
    """UDP for a lab server with the ``spray`` fault: forgeries first, the real answer after."""

    def __init__(self, authority: LabAuthority, forger: Forger) -> None:
        self._authority = authority
        self._forger = forger
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self._transport is not None
        host, port = str(addr[0]), int(addr[1])
        for forged, target in self._forger.forgeries(data):
            self._transport.sendto(forged, (host, target))
            self._forger.sent += 1
        if len(data) >= 2:
            self._forger.remember(port, int.from_bytes(data[:2], "big"))
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = await self._authority.handle(data, str(addr[0]), Transport.UDP)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    async def cancel_pending(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Lab:
    """All the lab's servers, started on one port."""

    def __init__(self, description: LabDescription, port: int, *, seed: int = 0) -> None:
        self.description = description
        self.port = port
        self._rng = random.Random(seed)
        loaded = {
            zone: loaded_zone(path, zone) for zone, path in description.serving_files().items()
        }
        self.authorities = [
            LabAuthority(spec, {z: loaded[z] for z in spec.zones}, self._rng)
            for spec in description.servers
        ]
        self._listeners: list[Listeners] = []
        self._spraying: list[tuple[asyncio.DatagramTransport, _SprayingProtocol]] = []
        self.forgers: dict[str, Forger] = {}

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
        loop = asyncio.get_running_loop()
        for authority in self.authorities:
            listeners = Listeners.for_handler(authority.handle)
            if authority.spec.faults.spray:
                forger = Forger(authority.spec.faults.spray, self._rng)
                self.forgers[authority.spec.address] = forger
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda a=authority, f=forger: _SprayingProtocol(a, f),  # type: ignore[misc]
                    local_addr=(authority.spec.address, self.port),
                )
                self._spraying.append((transport, protocol))
            else:
                await listeners.listen_udp(authority.spec.address, self.port)
            if authority.spec.faults.tcp:
                await listeners.listen_tcp(authority.spec.address, self.port)
            self._listeners.append(listeners)
        log.info("lab: %d servers on port %d", len(self.authorities), self.port)

    async def close(self) -> None:
        for listeners in self._listeners:
            await listeners.close()
        self._listeners.clear()
        for transport, protocol in self._spraying:
            transport.close()
            await protocol.cancel_pending()
        self._spraying.clear()
