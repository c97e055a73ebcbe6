"""What the resolver does with a client's bytes: screen, answer locally or resolve, render.

:func:`screen_query` is pure: it decides from the bytes and the access list alone whether
a query is dropped, answered with an error, or accepted (RFC 1035 §4.1.1, RFC 6891 §6.1.3,
RFC 5625 advice on what a resolver accepts). :class:`Frontend` wires it to the driver.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.access import Access, AccessList
from resolver.cache.answer import AnswerCache
from resolver.core.compose import (
    client_udp_limit,
    error_response,
    render,
    render_result,
)
from resolver.core.local import local_answer
from resolver.driver import Driver
from resolver.histogram import Histogram
from resolver.model import ClientQuery, ExtendedError, Question, Result, Transport
from resolver.names import remember_lowered
from resolver.ratelimit import RateLimiter
from resolver.records import name_from_wire
from resolver.transport.framing import MAX_TCP_MESSAGE
from resolver.wire import (
    HEADER_LENGTH,
    KEY_DO,
    KEY_EDNS,
    FastQuery,
    error_reply,
    is_cacheable_question,
    query_from_key,
    question_end,
    read_fast_query,
    read_header,
    truncated_reply,
)

log = logging.getLogger(__name__)
query_log = logging.getLogger("rootwalk.query")

_RECURSION_ALLOWED = (Access.ALLOW, Access.ALLOW_SNOOP)
_CACHEABLE_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN)
"""YXDOMAIN is a DNAME's answer (RFC 6672 §2.2), kept as long as the DNAME's TTL."""

_REFUSED_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
"""Zone transfers: a resolver serves none (Unbound answers REFUSED)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer with ``reply`` bytes, or drop when ``reply`` is None; ``why`` is for counters."""

    reply: bytes | None
    why: str


def _reject_question(qtype: int, qclass: int) -> tuple[int, str] | None:
    """(RCODE, counter) for a question a resolver does not answer, or None to resolve it."""
    if qclass != dns.rdataclass.IN or qtype in _REFUSED_TYPES:
        return dns.rcode.REFUSED, "refused"
    if (128 <= qtype <= 255 or qtype == dns.rdatatype.OPT) and qtype != dns.rdatatype.ANY:
        return dns.rcode.FORMERR, "malformed"
    return None


def read_plain_query(wire: bytes, fast: FastQuery) -> ClientQuery:
    """The :class:`ClientQuery` of a plain query that :func:`read_fast_query` read, without
    dnspython (the name is built from its bytes; letters as sent)."""
    end = fast.question_end
    qname = name_from_wire(wire[HEADER_LENGTH : end - 4], keep=False)
    remember_lowered(qname, fast.key[:-5])  # the key starts with the name, lower-cased
    qtype = dns.rdatatype.RdataType.make(int.from_bytes(wire[end - 4 : end - 2], "big"))
    key_flags = fast.key[-1]
    edns_do = None if not key_flags & KEY_EDNS else bool(key_flags & KEY_DO)
    return ClientQuery(
        wire,
        Question(qname, qtype),
        end,
        edns_do,
        fast.udp_limit,
        fast.key,
    )


def screen_query(wire: bytes, client: str, access: AccessList) -> ClientQuery | Rejected:
    """Decide what to do with a client's query before any resolution."""
    header = read_header(wire)
    if header is None:
        return Rejected(None, "malformed")  # no header: nothing to answer to
    if header.is_response:
        return Rejected(None, "response")  # QR=1: never answer answers (reflection loops)
    decision = access.decide(client)
    if decision is Access.DENY:
        return Rejected(None, "denied")
    if decision is Access.REFUSE:
        return Rejected(error_reply(wire, dns.rcode.REFUSED), "refused")
    if header.opcode != dns.opcode.QUERY:
        return Rejected(error_reply(wire, dns.rcode.NOTIMP), "notimp")
    fast = read_fast_query(wire)
    if fast is not None and is_cacheable_question(wire, fast):  # read without dnspython
        end = fast.question_end
        qclass = int.from_bytes(wire[end - 2 : end], "big")
        if _reject_question(int.from_bytes(wire[end - 4 : end - 2], "big"), qclass) is None:
            return read_plain_query(wire, fast)
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, IndexError):
        return Rejected(error_reply(wire, dns.rcode.FORMERR), "malformed")
    end_of_question = question_end(wire)
    if len(query.question) != 1 or end_of_question is None:
        return Rejected(render(error_response(query, dns.rcode.FORMERR), 512), "malformed")
    if query.edns > 0:
        return Rejected(render(error_response(query, dns.rcode.BADVERS), 512), "badvers")
    rrset = query.question[0]
    if not header.wants_recursion and decision is not Access.ALLOW_SNOOP:
        return Rejected(render(error_response(query, dns.rcode.REFUSED), 512), "refused")
    rejection = _reject_question(rrset.rdtype, rrset.rdclass)
    if rejection is not None:
        rcode, why = rejection
        return Rejected(render(error_response(query, dns.rcode.Rcode(rcode)), 512), why)
    edns_do = None if query.edns < 0 else bool(query.ednsflags & dns.flags.DO)
    return ClientQuery(
        wire, Question(rrset.name, rrset.rdtype), end_of_question, edns_do, client_udp_limit(query)
    )


STALE_REFRESH_INTERVAL_S = 30.0
"""RFC 8767 §4: after a failed refresh, serve stale without retrying for 30 seconds."""


class Frontend:
    """Answers client queries: the handlers the listeners call.

    :meth:`answer_from_cache` is the hot path: a plain query from an allowed client whose
    answer is cached is answered from stored bytes, without dnspython and without a task.
    Everything else goes to :meth:`handle`, which resolves and fills the answer cache.
    Prefetches (refreshing an entry asked for late in its life) and serve-stale (RFC 8767,
    when the answer cache keeps expired entries) are driven from here too.
    """

    def __init__(
        self,
        driver: Driver,
        access: AccessList,
        answers: AnswerCache,
        clock: Callable[[], float],
        *,
        query_log: bool = False,
        rate_limiter: RateLimiter | None = None,
        refuse_over_limit: bool = False,
        max_pending: int = 100,
    ) -> None:
        self.driver = driver
        self.query_log = query_log
        self.rate_limiter = rate_limiter
        self.refuse_over_limit = refuse_over_limit
        self.max_pending = max_pending
        self.pending = 0
        """Queries on the slow path now; a miss past ``max_pending`` is dropped."""
        self._idle: asyncio.Future[None] | None = None
        """Set by :meth:`wait_idle` at shutdown; done when ``pending`` reaches 0."""
        self.access = access
        self.answers = answers
        self.clock = clock
        self.rejected: dict[str, int] = {}
        self.answered: dict[tuple[str, bytes, int], int] = {}
        """Replies sent by the slow path, by (transport, QTYPE in wire form, RCODE); hits
        are counted by the answer cache (``hits_by_kind``). Read at scrape time."""
        self._udp_hits = answers.hits_by_kind[Transport.UDP]
        self._tcp_hits = answers.hits_by_kind[Transport.TCP]
        self._udp_ready = answers.ready_by_transport[Transport.UDP]
        self._tcp_ready = answers.ready_by_transport[Transport.TCP]
        self.latency = Histogram()
        """Seconds from a query's arrival to its reply, for queries that took the slow path
        (cache hits are not timed: timing would cost a tenth of a hit)."""
        self._tasks: set[asyncio.Task[Result]] = set()
        answers.on_prefetch = self._prefetch

    def set_access(self, access: AccessList) -> None:
        """Use a new access list (a reload; it remembers its own decisions)."""
        self.access = access

    def answer_from_cache(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        """The cached reply for a plain query, or None to take the slow path (empty bytes:
        drop it)."""
        if self.rate_limiter is not None and not self.rate_limiter.allow(client, self.clock()):
            return self._over_limit(wire)
        if self.access.decide(client) not in _RECURSION_ALLOWED:
            return None
        if transport is Transport.UDP:  # no dict keyed by the enum: Enum.__hash__ is Python
            ready = self._udp_ready
            counts = self._udp_hits
        else:
            ready = self._tcp_ready
            counts = self._tcp_hits
        now = self.clock()
        reply = self.answers.answer_ready(wire, now, ready, counts)
        if reply is None:
            query = read_fast_query(wire)
            if query is None:
                return None
            limit = query.udp_limit if transport is Transport.UDP else MAX_TCP_MESSAGE
            reply = self.answers.lookup(query, wire, now, limit, counts, ready=ready)
        if reply is None:
            if self.pending >= self.max_pending:
                self.rejected["overloaded"] = self.rejected.get("overloaded", 0) + 1
                return b""  # drop: the client retries, the cached names stay answered
            return None
        if self.query_log:
            self._log_query(client, wire, transport, reply, cached=True, seconds=0.0)
        return reply

    def _over_limit(self, wire: bytes) -> bytes:
        """A rate-limited query: dropped (empty bytes) or REFUSED, and counted."""
        self.rejected["ratelimited"] = self.rejected.get("ratelimited", 0) + 1
        header = read_header(wire)
        if not self.refuse_over_limit or header is None or header.is_response:
            return b""
        return error_reply(wire, dns.rcode.REFUSED)

    def _log_query(
        self,
        client: str,
        wire: bytes,
        transport: Transport,
        reply: bytes | None,
        *,
        cached: bool,
        seconds: float,
    ) -> None:
        """One line in the query log (logger ``rootwalk.query``)."""
        end = question_end(wire)
        qname = qtype = "?"
        if end is not None:
            try:
                qname = dns.name.from_wire(wire, 12)[0].to_text()
                qtype = dns.rdatatype.to_text(
                    dns.rdatatype.RdataType(int.from_bytes(wire[end - 4 : end - 2], "big"))
                )
            except dns.exception.DNSException:
                pass
        rcode = (
            dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0xF))
            if reply and len(reply) > 3
            else "DROPPED"
        )
        query_log.info(
            "%s %s %s %s from %s%s",
            qname, qtype, rcode, transport.value, client, " (cached)" if cached else "",
            extra={"client": client, "qname": qname, "qtype": qtype, "rcode": rcode,
                   "transport": transport.value, "cached": cached, "seconds": round(seconds, 6)},
        )  # fmt: skip

    def _count(self, transport: Transport, wire: bytes, reply: bytes | None) -> None:
        end = question_end(wire)
        qtype = wire[end - 4 : end - 2] if end is not None else b"\x00\x00"
        counted = (transport.value, qtype, reply[3] & 0xF if reply and len(reply) > 3 else -1)
        self.answered[counted] = self.answered.get(counted, 0) + 1

    def answer_later(
        self,
        wire: bytes,
        client: str,
        transport: Transport,
        send: Callable[[bytes | None], None],
    ) -> bool:
        """The slow path without a task: ``send`` is called once with the reply (None: drop
        it), at once or when the resolution ends. False when a task is needed (serve-stale
        waits on a refresh with a timeout): :meth:`handle` answers then."""
        if self.answers.stale_s:
            return False
        started = time.monotonic()
        self.pending += 1
        finished = False

        def finish(reply: bytes | None) -> None:
            nonlocal finished
            if not finished:  # once, even after a bug on the way
                finished = True
                self._answered(wire, client, transport, started, reply)
                send(reply)

        try:
            reply, query, limit = self._screen(wire, client, transport)
            if query is None:
                finish(reply)
            else:
                self.driver.resolve_then(
                    query.question,
                    functools.partial(self._finish_resolved, query, limit, client, finish),
                )
        except Exception:
            finish(None)  # no answer, but no query left counted as pending
            raise
        return True

    def _finish_resolved(
        self,
        query: ClientQuery,
        limit: int,
        client: str,
        finish: Callable[[bytes | None], None],
        result: Result,
    ) -> None:
        """Hand a resolved query's reply to ``finish`` (None after a bug, which is raised on
        for the driver to count)."""
        try:
            reply = self._reply_for(query, result, limit, client)
        except Exception:
            finish(None)
            raise
        finish(reply)

    async def handle(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        started = time.monotonic()
        self.pending += 1
        reply = None
        try:
            reply = await self._answer(wire, client, transport)
        finally:
            self._answered(wire, client, transport, started, reply)
        return reply

    def _answered(
        self, wire: bytes, client: str, transport: Transport, started: float, reply: bytes | None
    ) -> None:
        """A slow-path query is done: counted, timed and logged."""
        self.pending -= 1
        if not self.pending and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        elapsed = time.monotonic() - started
        self.latency.observe(elapsed)
        self._count(transport, wire, reply)
        if self.query_log:
            self._log_query(client, wire, transport, reply, cached=False, seconds=elapsed)

    def _screen(
        self, wire: bytes, client: str, transport: Transport
    ) -> tuple[bytes | None, ClientQuery | None, int]:
        """(reply, None, limit) for a query answered without resolving (rejected, or a
        local name), else (None, query, limit): ``limit`` is the largest reply it may get."""
        query = screen_query(wire, client, self.access)
        if isinstance(query, Rejected):
            self.rejected[query.why] = self.rejected.get(query.why, 0) + 1
            return query.reply, None, 0
        limit = query.udp_limit if transport is Transport.UDP else MAX_TCP_MESSAGE
        local = local_answer(query.question)
        if local is not None:
            return render_result(query, local, limit), None, limit
        return None, query, limit

    async def _answer(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        reply, query, limit = self._screen(wire, client, transport)
        if query is None:
            return reply
        if query.cache_key is not None and self.answers.stale_s:
            stale = await self._stale_or_none(query, limit)
            if stale is not None:
                return stale
        return self._reply_for(query, await self.driver.resolve(query.question), limit, client)

    def _reply_for(self, query: ClientQuery, result: Result, limit: int, client: str) -> bytes:
        """The reply for a resolved query (kept for the hot path when it may be cached),
        truncated to ``limit``."""
        if result.is_failure:
            log.info("SERVFAIL for %s from %s: %s", query.question, client, result.reason)
        full = self._render_and_store(query, result)
        return full if len(full) <= limit else truncated_reply(full, query.question_end)

    def _render_and_store(self, query: ClientQuery, result: Result) -> bytes:
        """The whole reply, kept for the hot path when it may be cached."""
        full = render_result(query, result, MAX_TCP_MESSAGE)
        if query.cache_key is not None and result.rcode in _CACHEABLE_RCODES:
            self.answers.store(query.cache_key, full, query.question_end, self.clock())
        return full

    def _prefetch(self, key: bytes) -> None:
        """Refresh a popular entry before it expires (called from the hot path): a mesh job
        whose one waiter stores the answer; started after this hit's reply, no task."""
        wire = query_from_key(key)
        fast = read_fast_query(wire)
        assert fast is not None, "a key always makes a plain query"
        query = read_plain_query(wire, fast)
        asyncio.get_running_loop().call_soon(
            functools.partial(
                self.driver.resolve_then,
                query.question,
                functools.partial(self._store_refresh, query),
                refresh=True,
            )
        )

    def _store_refresh(self, query: ClientQuery, result: Result) -> None:
        """Keep a background refresh's answer (prefetch, serve-stale)."""
        self._render_and_store(query, result)

    async def _stale_or_none(self, query: ClientQuery, limit: int) -> bytes | None:
        """RFC 8767: with an expired entry at hand, refresh; if the refresh fails or the
        mesh's serve-stale wait (``serve_stale_client_timeout_s``, §5) passes first, answer
        the stale entry (TTL 30, Extended DNS Error 3) while the refresh goes on. A refresh
        in time gives its own reply; None means there is nothing stale: answer normally."""
        now = self.clock()
        assert query.cache_key is not None
        entry = self.answers.stale(query.cache_key, now)
        if entry is None:
            return None
        key = query.cache_key
        if self.answers.stale_retry_at(key) <= now:
            turn: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()

            def on_result(result: Result) -> None:
                if result.is_failure:
                    self.answers.hold_stale_retries(key, self.clock() + STALE_REFRESH_INTERVAL_S)
                if turn.done():  # the stale answer went out: the refresh still fills the cache
                    self._store_refresh(query, result)
                else:
                    turn.set_result(result)

            def on_stale() -> None:
                if not turn.done():
                    turn.set_result(None)

            self.driver.resolve_then(query.question, on_result, on_stale=on_stale)
            fresh = await turn
            if fresh is not None and not fresh.is_failure:
                full = self._render_and_store(query, fresh)
                return full if len(full) <= limit else truncated_reply(full, query.question_end)
        reply = self.answers.stale_reply(entry, query.question_end, query.wire)
        if query.edns_do is not None:
            stale = dns.message.from_wire(reply)
            stale.use_edns(
                0,
                payload=stale.payload,
                options=[dns.edns.EDEOption(dns.edns.EDECode(ExtendedError.STALE_ANSWER))],
            )
            return render(stale, limit)
        return reply if len(reply) <= limit else render(dns.message.from_wire(reply), limit)

    async def settle(self) -> None:
        """Wait for background refreshes (prefetch, serve-stale) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait_idle(self) -> None:
        """Return once no client query is on the slow path (graceful shutdown)."""
        while self.pending:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
