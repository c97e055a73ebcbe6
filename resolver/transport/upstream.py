"""One query to one upstream server (RFC 1035 §4.2, RFC 5452, RFC 6891, RFC 7766).

Each UDP query leaves from a new socket, so the kernel gives it a fresh random source port,
and carries an ID from :mod:`secrets`. The socket is connected to the server's address and
port, so the kernel delivers nothing from anywhere else; a datagram that does not carry our
ID and question is counted and ignored, and we keep waiting until the timeout (RFC 5452
§9.1). A truncated reply (TC=1) is asked again over TCP and never used itself. Destinations
outside the outbound allow-list are refused here, before any socket exists.

No task or datagram endpoint per query: one query needs one send and one receive, so the
socket is watched and its reader callback finishes the exchange; only a TCP fallback runs as
a task. The endpoint machinery cost more than the rest of the query
(``benchmarks/cache_benchmark.py``).

Where a query may go is :mod:`resolver.transport.outbound` (the allow-list, this host's own
addresses); the UDP tries, their sockets and late replies are :mod:`resolver.transport.udp`;
this module opens each try, falls back to TCP, and counts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name

from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery
from resolver.records import Reply, read_reply
from resolver.stats import UpstreamCounters
from resolver.transport.outbound import IPNetwork, is_allowed, is_local_address
from resolver.transport.udp import GroupKey, QuestionTries, SocketWatch, UdpExchange
from resolver.wire import FLAG_TC, build_query, randomize_case

log = logging.getLogger(__name__)

EDNS_PAYLOAD = 1232
"""Our advertised UDP size upstream (DNS Flag Day 2020)."""


_NONBLOCKING_DATAGRAM = socket.SOCK_DGRAM | getattr(socket, "SOCK_NONBLOCK", 0)
"""Non-blocking from creation where the system allows it (one system call fewer)."""

INSECURE_PORT = 33333
"""The fixed source port of the test-only insecure mode."""


OnOutcome = Callable[[ReplyReceived | QueryFailed], object]
"""What the caller of :meth:`Upstream.send` is told, once per query."""


def query_wire(send: SendQuery, message_id: int, case_bits: int | None = None) -> bytes:
    """The iterative query for ``send`` in wire form: RD=0, EDNS0 unless the server is known
    to reject it (RFC 6891 §7) with DO when the resolution validates (RFC 3225), the name's letters cased by ``case_bits`` when given (0x20)."""
    qname_wire: bytes = send.qname_key
    if case_bits is not None:
        qname_wire = randomize_case(qname_wire, case_bits)
    return build_query(
        message_id,
        qname_wire,
        send.qtype,
        EDNS_PAYLOAD if send.use_edns else None,
        dnssec_ok=send.dnssec_ok,
    )


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
        self._watch: SocketWatch | None = None
        """The sockets in flight and the running loop, set at the first query:
        ``asyncio.get_running_loop`` makes a ``getpid`` system call each time on Python 3.11
        (5% of a cold resolution)."""
        self._tcp_tasks: set[asyncio.Task[ReplyReceived | QueryFailed]] = set()
        self._questions: dict[Hashable, dict[GroupKey, QuestionTries]] = {}
        """Open UDP tries by resolution (``send``'s ``owner``), then question at a server."""

    def stats(self) -> UpstreamCounters:
        """A copy of the counters, for the metrics collector at scrape time."""
        return replace(self.counters)

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

    def send(self, send: SendQuery, on_outcome: OnOutcome, owner: Hashable = None) -> None:
        """Ask ``send.server`` one question; ``on_outcome`` is called later with the reply or
        the failure: once, or twice when a late reply follows a timeout. UDP first; TCP when
        the reply is truncated or forged replies arrive. ``owner`` (the resolution) groups
        its tries of one question at one server, settled together. No task is created for a
        UDP exchange: the socket's reader callback finishes it."""
        watch = self._watch
        if watch is None or watch.loop.is_closed():
            if watch is not None:
                watch.close()
            watch = self._watch = SocketWatch(asyncio.get_running_loop())
        loop = watch.loop
        if not self._is_allowed(send.server):
            if is_local_address(send.server):
                self.counters.local_skipped += 1
                log.info("skipped %s for %s: a local address", send.server, send.zone)
                loop.call_soon(on_outcome, QueryFailed(send.ref, Failure.LOCAL_ADDRESS))
                return
            self.counters.prohibited += 1
            log.warning("refused to send to %s: not in the outbound allow-list", send.server)
            loop.call_soon(on_outcome, QueryFailed(send.ref, Failure.PROHIBITED))
            return
        wire = query_wire(send, self._message_id(), secrets.randbits(64) if self.use_0x20 else None)
        self.counters.sent_udp += 1
        family = socket.AF_INET6 if ":" in send.server else socket.AF_INET
        sock = socket.socket(family, _NONBLOCKING_DATAGRAM)
        try:
            if sock.gettimeout() != 0.0:  # no SOCK_NONBLOCK here
                sock.setblocking(False)
            if self._insecure:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", INSECURE_PORT))
            sock.connect((send.server, self.port))
        except OSError as exc:
            sock.close()
            self._network_error(send, exc, lambda event: loop.call_soon(on_outcome, event))
            return
        key = (send.server, send.qname_key, int(send.qtype))
        questions = self._questions.setdefault(owner, {})
        question = questions.get(key)
        if question is None:
            question = questions[key] = QuestionTries()
        exchange = UdpExchange(self, watch, sock=sock, wire=wire, send=send, on_outcome=on_outcome)
        exchange.joined(question, owner, key)
        watch.send_soon(exchange)

    def open_tries(self) -> int:
        """UDP tries whose sockets are open (waiting, or kept for a late reply)."""
        return len(self._watch.waiting()) if self._watch is not None else 0

    def settle(self, owner: Hashable) -> None:
        """``owner``'s resolution ended: close the sockets of its tries still open."""
        for question in list(self._questions.pop(owner, {}).values()):
            question.settle()

    def _left(
        self, exchange: UdpExchange, question: QuestionTries, owner: Hashable, key: GroupKey
    ) -> None:
        question.exchanges.remove(exchange)
        if not question.exchanges:
            questions = self._questions.get(owner)
            if questions is not None and questions.get(key) is question:
                del questions[key]
                if not questions:
                    del self._questions[owner]

    def close(self) -> None:
        """Abandon every exchange in flight (shutdown): sockets closed, no outcome."""
        if self._watch is not None:
            for exchange in self._watch.waiting():
                exchange.end()
            self._watch.close()
        for task in list(self._tcp_tasks):
            task.cancel()

    def _message_id(self) -> int:
        if self._insecure:
            self._next_id = (self._next_id + 1) & 0xFFFF
            return self._next_id
        return self._random_ids.next()

    def _received(
        self, send: SendQuery, data: bytes, question_end: int, started: float, on_outcome: OnOutcome
    ) -> None:
        """A matching datagram arrived: the reply, or TCP when it is truncated."""
        if data[2] & (FLAG_TC >> 8):
            self.counters.tcp_fallbacks += 1
            self._over_tcp(send, started, on_outcome)
            return
        try:
            # reply_matches checked the question against ours: the same length, so it ends
            # where ours does (before our OPT record, if any).
            reply = read_reply(data, question_end)
        except ValueError as exc:
            log.debug("malformed reply from %s: %s", send.server, exc)
            on_outcome(QueryFailed(send.ref, Failure.MALFORMED))
            return
        on_outcome(ReplyReceived(send.ref, reply, time.monotonic() - started))

    def _timed_out(self, send: SendQuery, on_outcome: OnOutcome) -> None:
        self.counters.timeouts += 1
        on_outcome(QueryFailed(send.ref, Failure.TIMEOUT))

    def _network_error(self, send: SendQuery, exc: OSError, on_outcome: OnOutcome) -> None:
        self.counters.network_errors += 1
        log.debug("network error from %s: %s", send.server, exc)
        on_outcome(QueryFailed(send.ref, Failure.NETWORK_ERROR))

    def _forgery_detected(self, send: SendQuery, started: float, on_outcome: OnOutcome) -> None:
        self.counters.forgery_tcp_switches += 1
        self.counters.tcp_fallbacks += 1
        self._over_tcp(send, started, on_outcome)

    def _case_mismatch(self, send: SendQuery, started: float, on_outcome: OnOutcome) -> None:
        """A UDP reply echoed our question in another letter case (0x20 on): ask over TCP,
        where the case is not relied on (draft-vixie-dnsext-dns0x20)."""
        self.counters.case_tcp_switches += 1
        self.counters.tcp_fallbacks += 1
        self._over_tcp(send, started, on_outcome)

    def _over_tcp(self, send: SendQuery, started: float, on_outcome: OnOutcome) -> None:
        self.counters.sent_tcp += 1
        task = asyncio.get_running_loop().create_task(self._tcp_outcome(send, started))
        self._tcp_tasks.add(task)

        def finished(done: asyncio.Task[ReplyReceived | QueryFailed]) -> None:
            self._tcp_tasks.discard(done)
            if not done.cancelled():
                on_outcome(done.result())

        task.add_done_callback(finished)

    async def _tcp_outcome(self, send: SendQuery, started: float) -> ReplyReceived | QueryFailed:
        try:
            # A TCP try waits the whole upstream timeout, not the UDP try's RTO.
            reply = await self._exchange_tcp(send, max(send.listen_s, send.timeout_s))
        except (TimeoutError, dns.exception.Timeout):
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

    async def _exchange_tcp(self, send: SendQuery, timeout_s: float) -> Reply:
        """The same question over TCP (RFC 7766 §5), with a new ID."""
        query = dns.message.from_wire(query_wire(send, secrets.randbits(16)))
        message = await dns.asyncquery.tcp(query, send.server, timeout=timeout_s, port=self.port)
        return Reply.from_message(message)
