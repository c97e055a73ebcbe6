"""One query to one upstream server (RFC 1035 §4.2, RFC 5452, RFC 6891, RFC 7766).

Each UDP query leaves from a new socket, so the kernel gives it a fresh random source port,
and carries an ID from :mod:`secrets`. The socket is connected to the server's address and
port, so the kernel delivers nothing from anywhere else; a datagram that does not carry our
ID and question is counted and ignored, and we keep waiting until the timeout (RFC 5452
§9.1). A truncated reply (TC=1) is asked again over TCP and never used itself. Destinations
outside the outbound allow-list are refused here, before any socket exists.

The socket is driven with ``loop.add_reader`` rather than a datagram endpoint: one query
needs one send and one receive, and the endpoint machinery cost more than the rest of the
query (measured with ``benchmarks/cache_benchmark.py`` and cProfile).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name

from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery
from resolver.names import lowered_wire
from resolver.records import Reply, read_reply
from resolver.wire import FLAG_TC, build_query, randomize_case, reply_matches

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EDNS_PAYLOAD = 1232
"""Our advertised UDP size upstream (DNS Flag Day 2020)."""

MISMATCH_LIMIT = 3
"""Unexpected datagrams on one query's socket before the question is asked over TCP
instead: somebody is guessing IDs (RFC 5452 §9.2; Unbound's ``unwanted-reply-threshold``
acts on the same signal)."""


INSECURE_PORT = 33333
"""The fixed source port of the test-only insecure mode."""


class _ForgeryDetectedError(Exception):
    """Too many mismatched replies: ask over TCP."""


def is_allowed(address: str, allow: Sequence[IPNetwork]) -> bool:
    """True when ``address`` lies in one of the ``allow`` networks."""
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in allow)


def query_wire(send: SendQuery, message_id: int, case_bits: int | None = None) -> bytes:
    """The iterative query for ``send`` in wire form: RD=0, EDNS0 unless the server is known
    to reject it (RFC 6891 §7), the name's letters cased by ``case_bits`` when given (0x20)."""
    qname_wire = lowered_wire(send.qname)
    if case_bits is not None:
        qname_wire = randomize_case(qname_wire, case_bits)
    return build_query(message_id, qname_wire, send.qtype, EDNS_PAYLOAD if send.use_edns else None)


class RandomIds:
    """Message IDs from the operating system's CSPRNG (RFC 5452 §9.2), read 4 KiB at a time:
    one ``getrandom`` call per 2,048 IDs instead of one per query."""

    def __init__(self) -> None:
        self._ids: list[int] = []

    def next(self) -> int:
        if not self._ids:
            self._ids = list(_UINT16S.unpack(secrets.token_bytes(4096)))
        return self._ids.pop()


_UINT16S = struct.Struct("!2048H")


@dataclass(slots=True)
class UpstreamCounters:
    """Plain counters, read by the metrics collector at scrape time."""

    sent_udp: int = 0
    sent_tcp: int = 0
    tcp_fallbacks: int = 0
    timeouts: int = 0
    network_errors: int = 0
    prohibited: int = 0
    mismatched: int = 0
    """Datagrams on a query's socket that did not match its ID and question."""
    forgery_tcp_switches: int = 0
    """Questions moved to TCP after repeated mismatched replies."""


class Upstream:
    """Sends the core's ``SendQuery`` actions and returns the matching events."""

    def __init__(
        self,
        *,
        port: int,
        allow: Sequence[IPNetwork],
        use_0x20: bool = False,
        insecure_for_tests: bool = False,
    ) -> None:
        self.port = port
        self.allow = tuple(allow)
        self.counters = UpstreamCounters()
        self._allowed: dict[str, bool] = {}
        self.use_0x20 = use_0x20
        """Randomise the letter case of each query's name and accept only replies that echo it
        exactly (off by default: some servers do not preserve case)."""
        self._insecure = insecure_for_tests
        """Test-only: one fixed source port and sequential IDs, the way naive resolvers do it,
        so the forgery test can show that it would catch a poisoning."""
        self._next_id = 0
        self._random_ids = RandomIds()

    def set_allow(self, allow: Sequence[IPNetwork]) -> None:
        """Use a new outbound allow-list (a reload)."""
        self.allow = tuple(allow)
        self._allowed = {}

    def _is_allowed(self, address: str) -> bool:
        allowed = self._allowed.get(address)
        if allowed is None:
            allowed = is_allowed(address, self.allow)
            if len(self._allowed) < 100_000:
                self._allowed[address] = allowed
        return allowed

    async def query(self, send: SendQuery) -> ReplyReceived | QueryFailed:
        """Ask ``send.server`` one question; UDP first, TCP when the reply is truncated."""
        if not self._is_allowed(send.server):
            self.counters.prohibited += 1
            log.warning("refused to send to %s: not in the outbound allow-list", send.server)
            return QueryFailed(send.ref, Failure.PROHIBITED)
        wire = query_wire(send, self._message_id(), secrets.randbits(64) if self.use_0x20 else None)
        started = time.monotonic()
        try:
            self.counters.sent_udp += 1
            try:
                reply_wire = await self._exchange_udp(wire, send.server, send.timeout_s)
            except _ForgeryDetectedError:
                self.counters.forgery_tcp_switches += 1
                reply_wire = None
            if reply_wire is None or reply_wire[2] & (FLAG_TC >> 8):
                self.counters.tcp_fallbacks += 1
                self.counters.sent_tcp += 1
                reply = await self._exchange_tcp(send, send.timeout_s)
            else:
                reply = read_reply(reply_wire)
        except TimeoutError:
            self.counters.timeouts += 1
            return QueryFailed(send.ref, Failure.TIMEOUT)
        except dns.exception.Timeout:
            self.counters.timeouts += 1
            return QueryFailed(send.ref, Failure.TIMEOUT)
        except (OSError, EOFError) as exc:
            self.counters.network_errors += 1
            log.debug("network error from %s: %s", send.server, exc)
            return QueryFailed(send.ref, Failure.NETWORK_ERROR)
        except (dns.exception.DNSException, ValueError) as exc:
            log.debug("malformed reply from %s: %s", send.server, exc)
            return QueryFailed(send.ref, Failure.MALFORMED)
        return ReplyReceived(send.ref, reply, time.monotonic() - started)

    def _message_id(self) -> int:
        if self._insecure:
            self._next_id = (self._next_id + 1) & 0xFFFF
            return self._next_id
        return self._random_ids.next()

    async def _exchange_udp(self, wire: bytes, server: str, timeout_s: float) -> bytes:
        """Send from a fresh connected socket; wait for the matching datagram."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        mismatched = 0
        try:
            sock.setblocking(False)
            if self._insecure:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", INSECURE_PORT))
            sock.connect((server, self.port))
            sock.send(wire)
            done: asyncio.Future[bytes] = loop.create_future()

            def on_readable() -> None:
                while not done.done():
                    try:
                        data = sock.recv(65535)
                    except BlockingIOError:
                        return
                    except OSError as exc:  # e.g. ICMP port unreachable
                        done.set_exception(exc)
                        return
                    if reply_matches(data, wire, exact_case=self.use_0x20):
                        done.set_result(data)
                    else:
                        nonlocal mismatched
                        mismatched += 1
                        self.counters.mismatched += 1
                        if mismatched >= MISMATCH_LIMIT and not self._insecure:
                            done.set_exception(_ForgeryDetectedError())

            def on_timeout() -> None:
                if not done.done():
                    done.set_exception(TimeoutError())

            fileno = sock.fileno()
            loop.add_reader(fileno, on_readable)
            timer = loop.call_later(timeout_s, on_timeout)
            try:
                return await done
            finally:
                timer.cancel()
                loop.remove_reader(fileno)
        finally:
            sock.close()

    async def _exchange_tcp(self, send: SendQuery, timeout_s: float) -> Reply:
        """The same question over TCP (RFC 7766 §5), with a new ID."""
        query = dns.message.from_wire(query_wire(send, secrets.randbits(16)))
        message = await dns.asyncquery.tcp(query, send.server, timeout=timeout_s, port=self.port)
        return Reply.from_message(message)
