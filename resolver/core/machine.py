"""One question, one state machine: iterative resolution (RFC 1034 §5.3.3).

A :class:`Resolution` starts at the closest known zone cut (the root hints), asks one server
at a time, follows referrals down, restarts at the target of a CNAME that leaves the zone,
and finishes with an answer, a negative answer (RFC 2308) or SERVFAIL. Addresses of glueless
name servers come from separate sub-resolutions (``StartSubquery``), which the mesh runs.

The machine is sans-IO: it never sends, sleeps or reads a clock. ``start`` and ``handle``
return actions; the driver performs them and feeds the outcomes back as events.
"""

from __future__ import annotations

import enum
import random
import typing
from collections import Counter

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.rrset import Rank
from resolver.cache.view import Caches
from resolver.core.classify import ClassifiedReply, ReplyKind, classify_reply
from resolver.core.events import (
    Action,
    Event,
    Failure,
    Finished,
    QueryFailed,
    ReplyReceived,
    SendQuery,
    StartSubquery,
    SubqueryDone,
)
from resolver.core.select import select_server
from resolver.core.zonecut import ZoneCut, addresses_of
from resolver.limits import Budget
from resolver.model import EDE_TEXT_LIMIT, ExtendedError, Question, Result, join_reasons, servfail
from resolver.names import is_at_or_below, lowered_wire
from resolver.records import WireRRset, name_from_wire


class State(enum.Enum):
    INIT = "init"  # find the zone cut for the current name
    QUERY_TARGETS = "query targets"  # pick a server, or find a glueless server's address
    WAIT_REPLY = "wait reply"
    WAIT_SUBQUERY = "wait subquery"
    FINISHED = "finished"


PARENT_SIDE_TYPES = frozenset({dns.rdatatype.DS})
"""Types whose authoritative data lives on the parent side of a zone cut: DS (RFC 4035
§3.1.4.1, RFC 4034 §5). Of the types RFC 4035 names, only DS is parent-only; NSEC and RRSIG
exist on both sides and follow the question's other types."""


def parent_side_name(qname: dns.name.Name, qtype: int) -> dns.name.Name:
    """Where the search for a zone cut starts: at the parent for a parent-side type, so a DS
    question for a delegation point is asked of the parent zone's servers (RFC 4035
    §3.1.4.1), else at the name itself."""
    if qtype in PARENT_SIDE_TYPES and len(qname) > 1:
        return qname.parent()
    return qname


class Resolution:
    """Iterative resolution of one question, as a state machine."""

    def __init__(
        self,
        question: Question,
        *,
        root: ZoneCut,
        caches: Caches,
        budget: Budget,
        rng: random.Random,
        default_timeout_s: float = 1.0,
        refresh: bool = False,
        outcomes: Counter[str] | None = None,
        harden_glue: bool = True,
    ) -> None:
        self.question = question
        self.state = State.INIT
        self.qname = question.qname
        self.chain: list[WireRRset] = []
        self._root = root
        self._caches = caches
        self._budget = budget
        self._rng = rng
        self._default_timeout_s = default_timeout_s
        self._harden_glue = harden_glue
        self._now = 0.0
        self._cut = root  # replaced (by a copy or a cached cut) before it is changed
        self._cut_from_cache = False
        self._tried: set[str] = set()
        self._outcomes: list[str] = []
        self._asked_ns: set[bytes] = set()
        self._names_seen: set[bytes] = {lowered_wire(question.qname)}
        """Owners met along a CNAME chain, lower-cased in wire form (a dnspython name
        hashes in Python, letter by letter)."""
        self._upstream_outcomes: Counter[str] = outcomes if outcomes is not None else Counter()
        self._skip_cache_once = refresh
        """A refresh (prefetch, serve-stale) asks the servers again for the question itself,
        though cached delegations are still used."""
        self._referrals = 0
        self._next_ref = 0
        self._pending: SendQuery | None = None
        self._pending_subquery: tuple[int, bytes] | None = None
        self.result: Result | None = None

    @property
    def zone(self) -> dns.name.Name:
        """The zone whose servers the machine is asking now."""
        return self._cut.zone

    # --- entry points ------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin the walk; returns the first actions."""
        self._now = now
        return self._advance()

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; returns the next actions (empty while waiting)."""
        self._now = now
        if self.state is State.FINISHED:
            return []
        match event:
            case ReplyReceived():
                if self._pending is None or event.ref != self._pending.ref:
                    return []
                return self._on_reply(event)
            case QueryFailed():
                if self._pending is None or event.ref != self._pending.ref:
                    return []
                return self._on_query_failed(event)
            case SubqueryDone():
                if self._pending_subquery is None or event.ref != self._pending_subquery[0]:
                    return []
                return self._on_subquery_done(event)
            case _:
                typing.assert_never(event)

    # --- the dispatcher and one handler per state ----------------------------------------

    def _advance(self) -> list[Action]:
        while True:
            match self.state:
                case State.INIT:
                    self._init()
                case State.QUERY_TARGETS:
                    return self._query_targets()
                case State.WAIT_REPLY | State.WAIT_SUBQUERY:
                    return []
                case State.FINISHED:
                    assert self.result is not None
                    return [Finished(self.result)]
                case _:
                    typing.assert_never(self.state)

    def _init(self) -> None:
        """INIT: answer from the cache if it can (RFC 1034 §5.3.3 step 1), following cached
        CNAMEs, else start at the closest cached zone cut (step 2), else at the root hints."""
        now = self._now
        caches = self._caches
        qtype = self.question.qtype
        while not self._skip_cache_once:
            failure = caches.failures.get(self.qname, qtype, now)
            if failure is not None:
                self._finish(servfail(f"{failure} (cached failure)", self._failure_code))
                return
            if qtype != dns.rdatatype.ANY:  # ANY is relayed, never assembled from the cache
                cached = caches.rrsets.get(self.qname, qtype, now, Rank.ANSWER)
                if cached is not None:
                    self.chain.append(cached)
                    self._finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
                    return
                cname = (
                    caches.rrsets.get(self.qname, dns.rdatatype.CNAME, now, Rank.ANSWER)
                    if qtype != dns.rdatatype.CNAME
                    else None
                )
                if cname is not None:
                    if not self._restart_at(cname.target(), (cname,)):
                        return
                    continue
            negative = caches.negative.get(self.qname, qtype, now)
            if negative is not None:
                self._finish(Result(negative.rcode, tuple(self.chain), (negative.soa,)))
                return
            break
        self._skip_cache_once = False
        cut = caches.rrsets.closest_cut(parent_side_name(self.qname, qtype), now)
        self._set_cut(cut if cut is not None else self._root.copy())
        self._cut_from_cache = cut is not None
        self.state = State.QUERY_TARGETS

    _failure_code = ExtendedError.NO_REACHABLE_AUTHORITY

    def _query_targets(self) -> list[Action]:
        """QUERY_TARGETS: ask the next untried server, or start a glueless lookup."""
        candidates = self._next_candidates()
        zone_key = lowered_wire(self._cut.zone)
        if candidates:
            server = select_server(candidates, zone_key, self._caches.infra, self._rng, self._now)
            return self._send(server)
        glueless = [
            ns
            for ns in self._cut.glueless()
            if ns not in self._asked_ns and not is_at_or_below(ns, zone_key)
        ]
        if glueless:
            ns_key = self._rng.choice(glueless)
            self._asked_ns.add(ns_key)
            ref = self._new_ref()
            self._pending_subquery = (ref, ns_key)
            self.state = State.WAIT_SUBQUERY
            return [StartSubquery(ref, Question(name_from_wire(ns_key), dns.rdatatype.A))]
        last_resort = self._last_resort_candidates()
        if last_resort:
            server = select_server(last_resort, zone_key, self._caches.infra, self._rng, self._now)
            return self._send(server)
        if self._cut_from_cache:
            # The cached delegation led nowhere (expired glue, moved servers): walk again
            # from the root hints once.
            self._set_cut(self._root.copy())
            self._cut_from_cache = False
            return self._query_targets()
        failure = self._no_server_left()
        self._caches.failures.record(
            self.qname, self.question.qtype, self._cut.zone.to_text(), failure.reason, self._now
        )
        return self._finish(failure)

    def _next_candidates(self) -> list[str]:
        """The cut's own addresses not tried yet; when the cut has last-resort addresses,
        only those not backed off after timeouts (the rest wait for
        :meth:`_last_resort_candidates`)."""
        tried = self._tried
        primary = [a for a in self._cut.addresses() if a not in tried]
        if not self._cut.fallback:
            return primary
        infra, now = self._caches.infra, self._now
        return [a for a in primary if not infra.is_blocked(a, now)]

    def _last_resort_candidates(self) -> list[str]:
        """When the cut's own addresses and its glueless servers are spent: the parent's
        glue where the child disagreed, or out-of-bailiwick glue with ``harden_glue`` off
        (``ZoneCut.fallback``, as Unbound's parent-side last resort), then the backed-off
        addresses."""
        tried = self._tried
        fallback = [a for a in self._cut.fallback_addresses() if a not in tried]
        return fallback or [a for a in self._cut.addresses() if a not in tried]

    def _send(self, server: str) -> list[Action]:
        if not self._budget.spend_upstream_query():
            return self._finish(
                servfail(
                    f"work limit: {self._budget.limits.max_upstream_queries} upstream queries "
                    f"spent resolving {self.question}"
                )
            )
        infra = self._caches.infra
        query = SendQuery(
            ref=self._new_ref(),
            server=server,
            qname=self.qname,
            qtype=self.question.qtype,
            use_edns=infra.supports_edns(server, self._now),
            zone=self._cut.zone,
            timeout_s=infra.timeout_s(server, self._default_timeout_s, self._now),
        )
        self._pending = query
        self.state = State.WAIT_REPLY
        return [query]

    # --- events --------------------------------------------------------------------------

    def _on_query_failed(self, event: QueryFailed) -> list[Action]:
        query = self._pending
        assert query is not None
        self._pending = None
        self._upstream_outcomes[event.failure.name.lower()] += 1
        if event.failure in (Failure.TIMEOUT, Failure.NETWORK_ERROR):
            self._caches.infra.record_timeout(query.server, query.timeout_s, self._now)
        self._server_failed(query.server, event.failure.value)
        return self._advance()

    def _on_subquery_done(self, event: SubqueryDone) -> list[Action]:
        assert self._pending_subquery is not None
        _, ns_key = self._pending_subquery
        self._pending_subquery = None
        addresses: list[str] = []
        for rrset in event.result.answer:
            found = addresses_of([rrset], rrset.owner_key)
            addresses.extend(a for a in found if a not in addresses)
        if ns_key in self._cut.nameservers:
            self._cut.nameservers[ns_key] = addresses
        if not addresses:
            self._outcomes.append(f"no address for {name_from_wire(ns_key)}")
        self.state = State.QUERY_TARGETS
        return self._advance()

    def _on_reply(self, event: ReplyReceived) -> list[Action]:
        query = self._pending
        assert query is not None
        self._pending = None
        self._caches.infra.record_rtt(query.server, event.rtt_s, self._now)
        reply = classify_reply(
            event.reply,
            query.zone,
            query.qname,
            query.qtype,
            used_edns=query.use_edns,
            harden_glue=self._harden_glue,
        )
        outcome = reply.kind.value
        if reply.kind is ReplyKind.SERVER_ERROR:
            outcome = f"rcode {reply.detail}"  # e.g. "rcode REFUSED": a bounded set of names
        self._upstream_outcomes[outcome] += 1
        self._remember(query, reply)
        return self._on_classified(query, reply)

    def _remember(self, query: SendQuery, reply: ClassifiedReply) -> None:
        """Cache what the reply teaches, at its rank (RFC 2181 §5.4.1)."""
        now = self._now
        rrsets = self._caches.rrsets
        answer_rank = Rank.AUTH_ANSWER if reply.authoritative else Rank.ANSWER
        for rrset in reply.chain:
            rrsets.put(rrset, answer_rank, now)
        for rrset in reply.referral_rrsets:
            rank = Rank.AUTHORITY if rrset.rdtype == dns.rdatatype.NS else Rank.ADDITIONAL
            rrsets.put(rrset, rank, now)
        if reply.kind in (ReplyKind.NXDOMAIN, ReplyKind.NODATA) and reply.soa is not None:
            assert reply.next_qname is not None
            rcode = dns.rcode.NXDOMAIN if reply.kind is ReplyKind.NXDOMAIN else dns.rcode.NOERROR
            self._caches.negative.put(reply.next_qname, query.qtype, rcode, reply.soa, now)

    def _on_classified(self, query: SendQuery, reply: ClassifiedReply) -> list[Action]:
        match reply.kind:
            case ReplyKind.ANSWER:
                self.chain.extend(reply.chain)
                return self._finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
            case ReplyKind.NXDOMAIN | ReplyKind.NODATA:
                self.chain.extend(reply.chain)
                rcode = (
                    dns.rcode.NXDOMAIN if reply.kind is ReplyKind.NXDOMAIN else dns.rcode.NOERROR
                )
                authority = (reply.soa,) if reply.soa is not None else ()
                return self._finish(Result(rcode, tuple(self.chain), authority))
            case ReplyKind.CNAME | ReplyKind.CNAME_LOOP:
                return self._follow_cname(reply)
            case ReplyKind.REFERRAL:
                return self._follow_referral(reply)
            case ReplyKind.EDNS_UNSUPPORTED:
                # RFC 6891 §7: a FORMERR to a query with OPT means retry without EDNS.
                self._caches.infra.mark_no_edns(query.server, self._now)
                self.state = State.QUERY_TARGETS
                return self._send(query.server)
            case ReplyKind.SERVER_ERROR:
                self._caches.infra.mark_lame(query.server, lowered_wire(query.zone), self._now)
                self._server_failed(query.server, f"answered {reply.detail}")
                return self._advance()
            case ReplyKind.LAME:
                self._caches.infra.mark_lame(query.server, lowered_wire(query.zone), self._now)
                self._server_failed(query.server, "sent a lame reply")
                return self._advance()
            case _:
                typing.assert_never(reply.kind)

    def _follow_cname(self, reply: ClassifiedReply) -> list[Action]:
        """Restart at the CNAME target (RFC 1034 §5.3.3 step 4c)."""
        assert reply.next_qname is not None
        if reply.kind is ReplyKind.CNAME_LOOP:
            self.chain.extend(reply.chain)
            return self._finish(servfail(f"CNAME loop at {reply.next_qname}"))
        if self._restart_at(reply.next_qname, reply.chain):
            self.state = State.INIT
        return self._advance()

    def _restart_at(self, target: dns.name.Name, chain: tuple[WireRRset, ...]) -> bool:
        """Add ``chain`` and move on to ``target``; False (and finished) on a loop or when
        the chain grows too long."""
        self.chain.extend(chain)
        target_key = lowered_wire(target)
        if target_key in self._names_seen:
            self._finish(servfail(f"CNAME loop at {target}"))
            return False
        hops = sum(1 for r in self.chain if r.rdtype == dns.rdatatype.CNAME)
        if hops > self._budget.limits.max_cname_hops:
            limit = self._budget.limits.max_cname_hops
            self._finish(servfail(f"CNAME chain longer than {limit} at {target}"))
            return False
        self._names_seen.update(r.owner_key for r in chain if r.rdtype == dns.rdatatype.CNAME)
        self._names_seen.add(target_key)
        self.qname = target
        return True

    def _follow_referral(self, reply: ClassifiedReply) -> list[Action]:
        """Go down one zone cut (RFC 1034 §5.3.3 step 4b)."""
        assert reply.referral is not None
        self._referrals += 1
        if self._referrals > self._budget.limits.max_referrals:
            return self._finish(
                servfail(
                    f"more than {self._budget.limits.max_referrals} referrals for {self.question}"
                )
            )
        self._set_cut(reply.referral)
        self.state = State.QUERY_TARGETS
        return self._advance()

    # --- helpers -------------------------------------------------------------------------

    def _set_cut(self, cut: ZoneCut) -> None:
        self._cut = cut
        self._tried = set()
        self._outcomes = []
        self._asked_ns = set()

    def _server_failed(self, server: str, what: str) -> None:
        self._tried.add(server)
        self._outcomes.append(what)
        self.state = State.QUERY_TARGETS

    def _no_server_left(self) -> Result:
        """SERVFAIL that says why no server of the current zone gave an answer."""
        zone = self._cut.zone.to_text()
        counts = Counter(self._outcomes)
        if len(counts) == 1:
            (what,) = counts
            if what == Failure.TIMEOUT.value:
                text = f"no server of {zone} answered"
            elif what.startswith("no address for"):
                text = f"no address for any name server of {zone}"
            else:
                text = f"all servers for {zone} {what}"
        elif counts:
            head = f"no usable server for {zone}: "
            text = head + join_reasons(
                [f"{n} {what}" for what, n in counts.items()], EDE_TEXT_LIMIT - len(head)
            )
        else:
            text = f"no address for any name server of {zone}"
        code = (
            ExtendedError.PROHIBITED
            if Failure.PROHIBITED.value in counts and len(counts) == 1
            else ExtendedError.NO_REACHABLE_AUTHORITY
        )
        return servfail(text, code)

    def _finish(self, result: Result) -> list[Action]:
        max_ttl = self._caches.rrsets.bounds.max_ttl
        max_negative_ttl = self._caches.negative.max_ttl
        self.result = Result(
            result.rcode,
            _capped(result.answer, max_ttl),
            _capped(result.authority, max_negative_ttl),
            result.reason,
            result.error_code,
            upstream_queries=self._budget.upstream_queries,
        )
        self.state = State.FINISHED
        self._pending = None
        self._pending_subquery = None
        return [Finished(self.result)]

    def _new_ref(self) -> int:
        self._next_ref += 1
        return self._next_ref


def _capped(rrsets: tuple[WireRRset, ...], max_ttl: int) -> tuple[WireRRset, ...]:
    """The RRsets with no TTL above ``max_ttl``, so the first answer shows a client what the
    cache would (Unbound's cache-max-ttl and cache-max-negative-ttl apply to replies too)."""
    if all(rrset.ttl <= max_ttl for rrset in rrsets):
        return rrsets
    return tuple(rrset.with_ttl(max_ttl) if rrset.ttl > max_ttl else rrset for rrset in rrsets)
