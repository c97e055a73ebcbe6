"""One query to one upstream server (RFC 1035 §4.2, RFC 5452, RFC 6891, RFC 7766).

Each UDP query leaves from a new socket, so the kernel gives it a fresh random source port,
and carries an ID from :mod:`secrets`. The socket is connected to the server's address and
port, so the kernel delivers nothing from anywhere else; a datagram that does not carry our
ID and question is counted and ignored, and we keep waiting until the timeout (RFC 5452
§9.1). A truncated reply (TC=1) is asked again over TCP and never used itself. Destinations
outside the outbound allow-list are refused here, before any socket exists.

Slow answers are still answers: when a try's wait (``SendQuery.timeout_s``, the RTO) passes,
the timeout is reported but the socket stays open, with its own port and ID, and a late reply
is still delivered, until the question at that server is settled: a reply on any of its tries,
a switch to TCP, the exchange's deadline (``SendQuery.listen_s`` after the send) or the end of
the resolution (:meth:`Upstream.settle`). Before this, a server that answers most names in a
millisecond (an RTO of 50 ms) and some in 350 ms had each try's socket closed before its reply
came, so those names failed after a few short tries.

No task or datagram endpoint per query: one query needs one send and one receive, so the
socket is watched (through one epoll set of our own, see ``_SocketWatch``) and its
reader callback finishes the exchange; only a TCP fallback runs as a task. The endpoint
machinery cost more than the rest of the query (``benchmarks/cache_benchmark.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name

from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery
from resolver.names import lowered_wire
from resolver.records import Reply, read_reply
from resolver.transport.batch import EndOfTurn
from resolver.wire import FLAG_TC, HEADER_LENGTH, build_query, randomize_case, reply_matches

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EDNS_PAYLOAD = 1232
"""Our advertised UDP size upstream (DNS Flag Day 2020)."""

MISMATCH_LIMIT = 3
"""Unexpected datagrams on the sockets of one question at one server (all its open tries)
before the question is asked over TCP instead: somebody is guessing IDs (RFC 5452 §9.2;
Unbound's ``unwanted-reply-threshold`` acts on the same signal)."""


_NONBLOCKING_DATAGRAM = socket.SOCK_DGRAM | getattr(socket, "SOCK_NONBLOCK", 0)
"""Non-blocking from creation where the system allows it (one system call fewer)."""

INSECURE_PORT = 33333
"""The fixed source port of the test-only insecure mode."""


OnOutcome = Callable[[ReplyReceived | QueryFailed], object]
"""What the caller of :meth:`Upstream.send` is told, once per query."""


LOCAL_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("::/128"),
)
"""This host's own addresses: loopback, and "this network" / unspecified, which Linux
delivers locally too (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2-3). Never queried unless the
outbound allow-list names them (as Unbound's ``do-not-query-localhost: yes``)."""


def _local_network_of(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IPNetwork | None:
    return next((network for network in LOCAL_NETWORKS if ip in network), None)


def is_local_address(address: str) -> bool:
    """True for an address of this host (:data:`LOCAL_NETWORKS`; an IPv4-mapped IPv6
    address counts as its IPv4 address)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return _local_network_of(ip) is not None


def is_allowed(address: str, allow: Sequence[IPNetwork]) -> bool:
    """True when ``address`` lies in one of the ``allow`` networks. A local address
    (:data:`LOCAL_NETWORKS`) must be named: only an entry inside a local range counts, so
    ``0.0.0.0/0`` allows the internet but not 127.0.0.1, while ``127.0.0.0/8`` or
    ``127.53.0.0/16`` allow the lab (Unbound's ``do-not-query-localhost``)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    local = _local_network_of(ip)
    if local is None:
        return any(ip in network for network in allow)
    return any(ip in network and _is_inside(network, local) for network in allow)


def _is_inside(network: IPNetwork, outer: IPNetwork) -> bool:
    """``network`` lies wholly inside ``outer`` (same family)."""
    return (
        network.version == outer.version
        and int(network.network_address) >= int(outer.network_address)
        and int(network.broadcast_address) <= int(outer.broadcast_address)
    )


def _question_end_of(send: SendQuery) -> int:
    """Where the question of our query for ``send`` ends: header, name, type and class."""
    return HEADER_LENGTH + len(lowered_wire(send.qname)) + 4


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
    local_skipped: int = 0
    """Queries not sent to a local address the outbound allow-list does not name."""
    mismatched: int = 0
    """Datagrams on a query's socket that did not match its ID and question."""
    forgery_tcp_switches: int = 0
    """Questions moved to TCP after repeated mismatched replies."""
    late_replies: int = 0
    """Replies that came after their try had timed out, on its socket kept open."""


GroupKey = tuple[str, bytes, int]
"""A question at a server: (server, lower-cased qname in wire form, qtype)."""


@dataclass(slots=True)
class _Question:
    """The open UDP tries of one question at one server for one resolution, and what
    arrived on their sockets that was not the reply."""

    exchanges: list[_UdpExchange] = field(default_factory=list)
    mismatched: int = 0

    def settle(self) -> None:
        """Close every try's socket: the question at this server is settled."""
        for exchange in list(self.exchanges):
            exchange.end()


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
        self._watch: _SocketWatch | None = None
        """The sockets in flight and the running loop, set at the first query:
        ``asyncio.get_running_loop`` makes a ``getpid`` system call each time on Python 3.11
        (5% of a cold resolution)."""
        self._tcp_tasks: set[asyncio.Task[ReplyReceived | QueryFailed]] = set()
        self._questions: dict[Hashable, dict[GroupKey, _Question]] = {}
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
            watch = self._watch = _SocketWatch(asyncio.get_running_loop())
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
        key = (send.server, lowered_wire(send.qname), int(send.qtype))
        questions = self._questions.setdefault(owner, {})
        question = questions.get(key)
        if question is None:
            question = questions[key] = _Question()
        exchange = _UdpExchange(self, watch, sock=sock, wire=wire, send=send, on_outcome=on_outcome)
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
        self, exchange: _UdpExchange, question: _Question, owner: Hashable, key: GroupKey
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


class _UdpExchange:
    """One UDP query in flight: its connected socket, its timer, and what it has seen.

    Driven by the event loop's reader callback (RFC 5452 §9.1: only a datagram with our ID
    and question is the reply; others are counted, and too many move the question to TCP).
    """

    __slots__ = (
        "_end", "_fd", "_key", "_on_outcome", "_owner", "_question", "_send", "_sock",
        "_started", "_timed_out", "_timer", "_upstream", "_watch", "_wire",
    )  # fmt: skip

    def __init__(
        self,
        upstream: Upstream,
        watch: _SocketWatch,
        *,
        sock: socket.socket,
        wire: bytes,
        send: SendQuery,
        on_outcome: OnOutcome,
    ) -> None:
        self._upstream = upstream
        self._sock = sock
        self._wire = wire
        self._send = send
        self._on_outcome = on_outcome
        self._question: _Question | None = None
        self._owner: Hashable = None
        self._key: GroupKey | None = None
        self._timed_out = False
        self._end = _question_end_of(send)
        self._started = 0.0  # set by send_query: the round trip starts at the send
        self._fd = sock.fileno()
        self._watch = watch
        watch.watch(self._fd, self)
        self._timer = watch.loop.call_later(send.timeout_s, self._on_timeout)

    def joined(self, question: _Question, owner: Hashable, key: GroupKey) -> None:
        """Count this try among the open tries of its question at its server."""
        self._question, self._owner, self._key = question, owner, key
        question.exchanges.append(self)

    def send_query(self) -> None:
        """Send the query (queued by :meth:`_SocketWatch.send_soon`), unless already over."""
        if self._watch.is_watching(self._fd, self):
            self._started = time.monotonic()
            try:
                self._sock.send(self._wire)
            except OSError as exc:
                self.end()
                self._upstream._network_error(self._send, exc, self._on_outcome)

    def end(self) -> None:
        """Stop listening and close the socket (at most once)."""
        if not self._watch.is_watching(self._fd, self):
            return
        self._timer.cancel()
        self._watch.forget(self._fd)
        self._sock.close()
        if self._question is not None:
            assert self._key is not None
            self._upstream._left(self, self._question, self._owner, self._key)

    def on_readable(self) -> None:
        upstream = self._upstream
        while True:
            try:
                data = self._sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. ICMP port unreachable
                self.end()
                upstream._network_error(self._send, exc, self._on_outcome)
                return
            if reply_matches(
                data, self._wire, exact_case=upstream.use_0x20, query_question_end=self._end
            ):
                self._settle()
                if self._timed_out:
                    upstream.counters.late_replies += 1
                upstream._received(self._send, data, self._end, self._started, self._on_outcome)
                return
            upstream.counters.mismatched += 1
            question = self._question
            assert question is not None
            question.mismatched += 1
            if question.mismatched >= MISMATCH_LIMIT and not upstream._insecure:
                # Ask over TCP for the newest try: the one the resolution waits on, if any.
                newest = question.exchanges[-1]
                self._settle()
                upstream._forgery_detected(newest._send, newest._started, newest._on_outcome)
                return

    def _settle(self) -> None:
        """The question at this server is settled: close this try and its other tries."""
        if self._question is not None:
            self._question.settle()
        else:
            self.end()

    def _on_timeout(self) -> None:
        send = self._send
        if send.listen_s > send.timeout_s and not self._timed_out:
            # Report the timeout, keep the socket for a late reply until the exchange's
            # deadline.
            self._timed_out = True
            self._timer = self._watch.loop.call_later(send.listen_s - send.timeout_s, self.end)
        else:
            self.end()
        self._upstream._timed_out(send, self._on_outcome)


class _SocketWatch:
    """The upstream sockets waiting for their reply.

    On Linux they are watched through one epoll set of our own, which the event loop
    watches: two ``epoll_ctl`` calls per socket (in and out), where the loop's reader API
    spent three or four and a poll handle per socket (``epoll_ctl`` alone was 5% of the CPU
    of resolving never-seen names, ``py-spy --native``). Elsewhere the loop's reader API is
    used directly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: dict[int, _UdpExchange] = {}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        if self._epoll is not None:
            loop.add_reader(self._epoll.fileno(), self._on_ready)
        self._outbox: EndOfTurn[_UdpExchange] = EndOfTurn(loop, self._send_all)

    def send_soon(self, exchange: _UdpExchange) -> None:
        """Send ``exchange``'s query at the end of this turn of the loop, with the others
        of the turn (see :mod:`resolver.transport.batch`)."""
        self._outbox.add(exchange)

    @staticmethod
    def _send_all(outbox: list[_UdpExchange]) -> None:
        for exchange in outbox:
            exchange.send_query()

    def is_watching(self, fd: int, exchange: _UdpExchange) -> bool:
        return self._waiting.get(fd) is exchange

    def watch(self, fd: int, exchange: _UdpExchange) -> None:
        self._waiting[fd] = exchange
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self.loop.add_reader(fd, exchange.on_readable)

    def forget(self, fd: int) -> None:
        """Stop watching ``fd`` (its socket is closed next). It is taken out of the epoll set
        explicitly: closing alone would leave it there while a forked child still holds the
        descriptor."""
        del self._waiting[fd]
        if self._epoll is not None:
            self._epoll.unregister(fd)
        else:
            self.loop.remove_reader(fd)

    def waiting(self) -> list[_UdpExchange]:
        return list(self._waiting.values())

    def _on_ready(self) -> None:
        assert self._epoll is not None
        for fd, _events in self._epoll.poll(0):
            exchange = self._waiting.get(fd)
            if exchange is not None:  # None: finished earlier in this same batch
                exchange.on_readable()

    def close(self) -> None:
        if self._epoll is not None and not self._epoll.closed:
            if not self.loop.is_closed():
                self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
