"""The UDP tries of :class:`~resolver.transport.upstream.Upstream`: one connected socket per
try, watched for its reply, and kept for a late one (RFC 5452 §9.1, RFC 1035 §4.2.1).

Slow answers are still answers: when a try's wait (``SendQuery.timeout_s``, the RTO) passes,
the timeout is reported but the socket stays open, with its own port and ID, and a late reply
is still delivered, until the question at that server is settled: a reply on any of its tries,
a switch to TCP, the exchange's deadline (``SendQuery.listen_s`` after the send) or the end of
the resolution (:meth:`Upstream.settle`). Before this, a server that answers most names in a
millisecond (an RTO of 50 ms) and some in 350 ms had each try's socket closed before its reply
came, so those names failed after a few short tries.

No task or datagram endpoint per query: one query needs one send and one receive, so the
socket is watched (through one epoll set of our own, see :class:`SocketWatch`) and its
reader callback finishes the exchange. What a try finds (the reply, a failure, forged
datagrams) it hands back to its ``Upstream``, which counts it and tells the caller.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resolver.core.events import SendQuery
from resolver.transport.batch import EndOfTurn
from resolver.wire import HEADER_LENGTH, differs_only_in_case, reply_matches

if TYPE_CHECKING:
    from resolver.transport.upstream import OnOutcome, Upstream

MISMATCH_LIMIT = 3
"""Unexpected datagrams on the sockets of one question at one server (all its open tries)
before the question is asked over TCP instead: somebody is guessing IDs (RFC 5452 §9.2;
Unbound's ``unwanted-reply-threshold`` acts on the same signal)."""


def question_end_of(send: SendQuery) -> int:
    """Where the question of our query for ``send`` ends: header, name, type and class."""
    return HEADER_LENGTH + len(send.qname_key) + 4


GroupKey = tuple[str, bytes, int]
"""A question at a server: (server, lower-cased qname in wire form, qtype)."""


@dataclass(slots=True)
class QuestionTries:
    """The open UDP tries of one question at one server for one resolution, and what
    arrived on their sockets that was not the reply."""

    exchanges: list[UdpExchange] = field(default_factory=list)
    mismatched: int = 0

    def settle(self) -> None:
        """Close every try's socket: the question at this server is settled."""
        for exchange in list(self.exchanges):
            exchange.end()


class UdpExchange:
    """One UDP query in flight: its connected socket, its timer, and what it has seen.

    Driven by the event loop's reader callback (RFC 5452 §9.1: only a datagram with our ID
    and question is the reply; others are counted, and too many move the question to TCP;
    with 0x20 on, one with our ID and question in another letter case moves it to TCP at once).
    """

    __slots__ = (
        "_end", "_fd", "_key", "_on_outcome", "_owner", "_question", "_send", "_sock",
        "_started", "_timed_out", "_timer", "_upstream", "_watch", "_wire",
    )  # fmt: skip

    def __init__(
        self,
        upstream: Upstream,
        watch: SocketWatch,
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
        self._question: QuestionTries | None = None
        self._owner: Hashable = None
        self._key: GroupKey | None = None
        self._timed_out = False
        self._end = question_end_of(send)
        self._started = 0.0  # set by send_query: the round trip starts at the send
        self._fd = sock.fileno()
        self._watch = watch
        watch.watch(self._fd, self)
        self._timer: asyncio.TimerHandle | None = None
        """Armed when the query leaves (:meth:`send_query`), not when it is queued: the wait
        is the server's round trip, not the rest of the turn that queued it."""

    def joined(self, question: QuestionTries, owner: Hashable, key: GroupKey) -> None:
        """Count this try among the open tries of its question at its server."""
        self._question, self._owner, self._key = question, owner, key
        question.exchanges.append(self)

    def send_query(self) -> None:
        """Send the query (queued by :meth:`SocketWatch.send_soon`), unless already over."""
        if self._watch.is_watching(self._fd, self):
            self._started = time.monotonic()
            try:
                self._sock.send(self._wire)
            except OSError as exc:
                self.end()
                self._upstream._network_error(self._send, exc, self._on_outcome)
                return
            self._timer = self._watch.loop.call_later(self._send.timeout_s, self._on_timeout)

    def end(self) -> None:
        """Stop listening and close the socket (at most once)."""
        if not self._watch.is_watching(self._fd, self):
            return
        if self._timer is not None:
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
            question = self._question
            assert question is not None
            if upstream.use_0x20 and differs_only_in_case(data, self._wire, self._end):
                # Our ID and question but not our letter case: a server that does not keep
                # the case, or a forger who guessed ID and port. Not used; asked again over
                # TCP now (no off-path spoofing there) rather than waiting for the timeout.
                newest = question.exchanges[-1]
                self._settle()
                upstream._case_mismatch(newest._send, newest._started, newest._on_outcome)
                return
            upstream.counters.mismatched += 1
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


class SocketWatch:
    """The upstream sockets waiting for their reply.

    On Linux they are watched through one epoll set of our own, which the event loop
    watches: two ``epoll_ctl`` calls per socket (in and out), where the loop's reader API
    spent three or four and a poll handle per socket (``epoll_ctl`` alone was 5% of the CPU
    of resolving never-seen names, ``py-spy --native``). Elsewhere the loop's reader API is
    used directly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: dict[int, UdpExchange] = {}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        if self._epoll is not None:
            loop.add_reader(self._epoll.fileno(), self._on_ready)
        self._outbox: EndOfTurn[UdpExchange] = EndOfTurn(loop, self._send_all)

    def send_soon(self, exchange: UdpExchange) -> None:
        """Send ``exchange``'s query at the end of this turn of the loop, with the others
        of the turn (see :mod:`resolver.transport.batch`)."""
        self._outbox.add(exchange)

    @staticmethod
    def _send_all(outbox: list[UdpExchange]) -> None:
        for exchange in outbox:
            exchange.send_query()

    def is_watching(self, fd: int, exchange: UdpExchange) -> bool:
        return self._waiting.get(fd) is exchange

    def watch(self, fd: int, exchange: UdpExchange) -> None:
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

    def waiting(self) -> list[UdpExchange]:
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
