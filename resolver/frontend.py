"""The edge between the listeners and the resolver: one call per client query.

:meth:`Frontend.on_query` is the one way in. A query from a client allowed to recurse is
looked up in the answer cache first (the hot path: :meth:`AnswerCache.hit
<resolver.cache.answer.AnswerCache.hit>`, no dnspython, no task); anything else is screened
(:func:`resolver.screen.screen_query`, with the access decision and the query already read)
and answered at once (a rejection, a local name) or resolved on callbacks as a
:class:`SlowQuery`, whose :meth:`~SlowQuery.finish` is the one way out. Prefetches and
serve-stale (RFC 8767) are started from here too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import cast

import dns.edns
import dns.message
import dns.rcode

from resolver.access import Access, AccessList
from resolver.cache.answer import AnswerCache, AnswerEntry, PrefetchDue
from resolver.core.compose import render, render_result
from resolver.core.local import local_answer
from resolver.driver import Driver
from resolver.histogram import Histogram
from resolver.model import ClientQuery, ExtendedError, Result, Transport
from resolver.querylog import log_query
from resolver.ratelimit import RateLimiter
from resolver.screen import Rejected, read_plain_query, screen_query
from resolver.stats import FrontendStats
from resolver.transport.framing import MAX_TCP_MESSAGE
from resolver.transport.listeners import DROP, PENDING, Address, NoReply, ReplyTo
from resolver.wire import (
    FastQuery,
    error_reply,
    query_from_key,
    question_end,
    read_fast_query,
    read_header,
    truncated_reply,
)

log = logging.getLogger(__name__)

_RECURSION_ALLOWED = (Access.ALLOW, Access.ALLOW_SNOOP)
_CACHEABLE_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN)
"""YXDOMAIN is a DNAME's answer (RFC 6672 §2.2), kept as long as the DNAME's TTL."""


STALE_REFRESH_INTERVAL_S = 30.0
"""RFC 8767 §4: after a failed refresh, serve stale without retrying for 30 seconds."""


class SlowQuery:
    """One client query on the slow path, from its screening to its reply."""

    __slots__ = ("address", "client", "done", "frontend", "limit", "query", "reply_to",
                 "security", "started", "transport")  # fmt: skip

    def __init__(
        self,
        frontend: Frontend,
        query: ClientQuery,
        limit: int,
        client: str,
        transport: Transport,
        *,
        reply_to: ReplyTo,
        address: Address,
        started: float,
    ) -> None:
        self.frontend = frontend
        self.query = query
        self.limit = limit
        """The largest reply the client may get (its UDP size, or 65535 over TCP)."""
        self.client = client
        self.transport = transport
        self.reply_to = reply_to
        self.address = address
        self.started = started
        """When the query arrived (the monotonic clock), for its latency."""
        self.done = False
        self.security: str | None = None
        """The answer's DNSSEC state, for the query log (None: not validated)."""

    def resolved(self, result: Result) -> None:
        """The resolution's result: render the reply and finish (None after a bug, which is
        raised on for the driver to count)."""
        if result.security is not None:
            self.security = result.security.value
        try:
            reply = self.frontend._reply_for(self.query, result, self.limit, self.client)
        except Exception:
            self.finish(None)
            raise
        self.finish(reply)

    def finish(self, reply: bytes | None) -> None:
        """The one way out: count, time and log the reply, and send it (None: nothing is
        sent). Once, even after a bug on the way."""
        if self.done:
            return
        self.done = True
        frontend = self.frontend
        frontend.pending -= 1
        if not frontend.pending and frontend._idle is not None and not frontend._idle.done():
            frontend._idle.set_result(None)
        frontend._record(
            self.query.wire, self.client, self.transport, self.started, reply, dnssec=self.security
        )
        self.reply_to(self.address, reply)


class Frontend:
    """Answers client queries: :meth:`on_query` is what the listeners call."""

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
        """Queries being resolved now; a miss past ``max_pending`` is dropped."""
        self._idle: asyncio.Future[None] | None = None
        """Set by :meth:`wait_idle` at shutdown; done when ``pending`` reaches 0."""
        self.access = access
        self.answers = answers
        self.clock = clock
        self.bugs = 0
        """Exceptions while starting a resolution (the query got no answer)."""
        self.rejected: dict[str, int] = {}
        self.answered: dict[tuple[str, bytes, int], int] = {}
        """Replies sent by the slow path, by (transport, QTYPE in wire form, RCODE); hits
        are counted by the answer cache."""
        self.latency = Histogram()
        """Seconds from a query's arrival to its reply, for queries that took the slow path
        (cache hits are not timed: timing would cost a tenth of a hit)."""

    def set_access(self, access: AccessList) -> None:
        """Use a new access list (a reload; it remembers its own decisions)."""
        self.access = access

    def stats(self) -> FrontendStats:
        """A read-only view of the counters, for the metrics collector at scrape time."""
        return FrontendStats(
            dict(self.answered), dict(self.rejected), self.latency.view(), bugs=self.bugs
        )

    def on_query(
        self, wire: bytes, client: str, transport: Transport, reply_to: ReplyTo, address: Address
    ) -> bytes | NoReply:
        """The one way in for a client's query (:data:`resolver.transport.listeners.OnQuery`):
        the reply to send now, :data:`DROP`, or :data:`PENDING` (``reply_to(address, reply)``
        is called once later). The access list is asked once and the query read once: a
        miss hands both on to the slow path."""
        if self.rate_limiter is not None and not self.rate_limiter.allow(client, self.clock()):
            return self._over_limit(wire)
        access = self.access.decide(client)
        if access in _RECURSION_ALLOWED:
            answer = self.answers.hit(wire, self.clock(), transport)
            if type(answer) is bytes:
                if self.query_log:
                    log_query(client, wire, transport, answer, cached=True, seconds=0.0)
                return answer
            if isinstance(answer, PrefetchDue):
                # The whole prefetch starts on the next turn of the loop: this hit's reply
                # goes out first, without reading the key into a question.
                asyncio.get_running_loop().call_soon(self._prefetch, answer.key)
                if self.query_log:
                    log_query(client, wire, transport, answer.reply, cached=True, seconds=0.0)
                return answer.reply
            fast = cast("FastQuery | None", answer)  # a miss: what the hit read
        else:
            fast = None  # not read: screening drops or refuses this client before reading
        return self._miss(wire, client, transport, access, fast, reply_to=reply_to, address=address)

    def _miss(
        self,
        wire: bytes,
        client: str,
        transport: Transport,
        access: Access,
        fast: FastQuery | None,
        *,
        reply_to: ReplyTo,
        address: Address,
    ) -> bytes | NoReply:
        """The slow path: screen the query, then answer at once or start resolving it."""
        started = time.monotonic()
        query = screen_query(wire, access, fast)
        if isinstance(query, Rejected):
            self.rejected[query.why] = self.rejected.get(query.why, 0) + 1
            self._record(wire, client, transport, started, query.reply)
            return DROP if query.reply is None else query.reply
        limit = query.udp_limit if transport is Transport.UDP else MAX_TCP_MESSAGE
        local = local_answer(query.question)
        if local is not None:
            reply = render_result(query, local, limit)
            self._record(wire, client, transport, started, reply)
            return reply
        if self.pending >= self.max_pending:
            self.rejected["overloaded"] = self.rejected.get("overloaded", 0) + 1
            return DROP  # the client retries; the cached names stay answered
        slow = SlowQuery(
            self,
            query,
            limit,
            client,
            transport,
            reply_to=reply_to,
            address=address,
            started=started,
        )
        self.pending += 1
        try:
            if query.cache_key is not None and self.answers.stale_s:
                self._answer_stale_or_resolve(slow)
            else:
                self.driver.resolve_then(query.question, slow.resolved)
        except Exception:
            self.bugs += 1
            log.exception("resolving a query from %s failed", client)
            slow.finish(None)
        return PENDING

    def _answer_stale_or_resolve(self, slow: SlowQuery) -> None:
        """Serve-stale (RFC 8767), on callbacks: with an expired entry at hand, refresh it;
        the stale answer (TTL 30, Extended DNS Error 3) goes out when the refresh fails or
        the mesh's serve-stale wait (``serve_stale_client_timeout_s``, §5) passes first, and
        the refresh goes on to fill the cache; a refresh in time answers with its own reply.
        After a failed refresh, stale answers go out at once for 30 s (§4). No expired
        entry: resolve as usual."""
        query = slow.query
        key = query.cache_key
        assert key is not None
        now = self.clock()
        entry = self.answers.stale(key, now)
        if entry is None:
            self.driver.resolve_then(query.question, slow.resolved)
            return

        def answer_stale() -> None:
            if not slow.done:
                try:
                    reply = self._stale_reply(entry, query, slow.limit)
                except Exception:
                    slow.finish(None)
                    raise
                slow.finish(reply)

        if self.answers.stale_retry_at(key) > now:
            answer_stale()
            return

        def on_result(result: Result) -> None:
            if result.is_failure:
                self.answers.hold_stale_retries(key, self.clock() + STALE_REFRESH_INTERVAL_S)
            if slow.done:  # the stale answer went out: the refresh still fills the cache
                self._store_refresh(query, result)
            elif result.is_failure:
                answer_stale()
            else:
                slow.resolved(result)

        self.driver.resolve_then(query.question, on_result, on_stale=answer_stale)

    async def handle(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        """:meth:`on_query` for callers that await (tests, tools): the reply, or None when
        the query is dropped."""
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        outcome = self.on_query(wire, client, transport, functools.partial(_settle, future), ())
        if outcome is PENDING:
            return await future
        return None if outcome is DROP else outcome

    def _over_limit(self, wire: bytes) -> bytes | NoReply:
        """A rate-limited query: dropped or REFUSED, and counted."""
        self.rejected["ratelimited"] = self.rejected.get("ratelimited", 0) + 1
        header = read_header(wire)
        if not self.refuse_over_limit or header is None or header.is_response:
            return DROP
        return error_reply(wire, dns.rcode.REFUSED)

    def _record(
        self,
        wire: bytes,
        client: str,
        transport: Transport,
        started: float,
        reply: bytes | None,
        *,
        dnssec: str | None = None,
    ) -> None:
        """A slow-path query is done: counted, timed and logged."""
        elapsed = time.monotonic() - started
        self.latency.observe(elapsed)
        end = question_end(wire)
        qtype = wire[end - 4 : end - 2] if end is not None else b"\x00\x00"
        counted = (transport.value, qtype, reply[3] & 0xF if reply and len(reply) > 3 else -1)
        self.answered[counted] = self.answered.get(counted, 0) + 1
        if self.query_log:
            log_query(client, wire, transport, reply, cached=False, seconds=elapsed, dnssec=dnssec)

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
        """Refresh a popular entry before it expires: a mesh job whose one waiter stores the
        answer. Called on the turn after the hit that found it due (one per entry: the
        answer cache says so once), so that hit replied first; no task."""
        wire = query_from_key(key)
        fast = read_fast_query(wire)
        assert fast is not None, "a key always makes a plain query"
        query = read_plain_query(wire, fast)
        self.driver.resolve_then(
            query.question, functools.partial(self._store_refresh, query), refresh=True
        )

    def _store_refresh(self, query: ClientQuery, result: Result) -> None:
        """Keep a background refresh's answer (prefetch, serve-stale)."""
        self._render_and_store(query, result)

    def _stale_reply(self, entry: AnswerEntry, query: ClientQuery, limit: int) -> bytes:
        """The stale entry as a reply to ``query`` (RFC 8767 §4: TTL 30; an EDNS client
        gets Extended DNS Error 3, Stale Answer), truncated to ``limit``."""
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

    async def wait_idle(self) -> None:
        """Return once no client query is on the slow path (graceful shutdown)."""
        while self.pending:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle


def _settle(future: asyncio.Future[bytes | None], address: Address, reply: bytes | None) -> None:
    del address
    if not future.done():
        future.set_result(reply)
