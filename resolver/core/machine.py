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
from dataclasses import dataclass, replace

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.rrset import Rank
from resolver.cache.view import Caches
from resolver.core.classify import ClassifiedReply, ReplyKind, classify_reply
from resolver.core.dname import cacheable, synthesised_cname
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
from resolver.core.qmin import MINIMISED_QTYPE, MinimisedStep, Minimiser, after_minimised
from resolver.core.select import select_server
from resolver.core.targets import TargetLookups, inside_without_glue, next_lookups
from resolver.limits import Budget
from resolver.model import (
    EDE_TEXT_LIMIT,
    ExtendedError,
    Question,
    Result,
    ZoneCut,
    addresses_of,
    join_reasons,
    servfail,
)
from resolver.names import lowered_wire, name_wire
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


SILENCE_SLACK_S = 1e-6
"""Rounding allowance when comparing a server's silence with the upstream timeout."""


@dataclass(slots=True)
class _Silence:
    """One server of the current zone that has not answered the current question yet: when
    it was first asked, when last, and the last try's wait (doubled for the next try)."""

    first_at: float
    last_at: float
    wait_s: float


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
        harden_glue: bool = True,
        ancestry: frozenset[Question] = frozenset(),
        qname_minimisation: bool = False,
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
        self._minimise = qname_minimisation
        self._qmin: Minimiser | None = None
        """The RFC 9156 walk toward ``qname``; None when minimisation is off or over."""
        self._qmin_name: dns.name.Name | None = None
        """The ancestor being asked now with QTYPE A; None: the full question."""
        self._now = 0.0
        self._cut = root  # replaced (by a copy or a cached cut) before it is changed
        self._cut_from_cache = False
        self._tried: set[str] = set()
        self._outcomes: list[str] = []
        self._targets = TargetLookups()
        self.cycles_met = 0
        """Name servers skipped because they would need themselves (the mesh counts them)."""
        self._ancestor_names = frozenset(lowered_wire(q.qname) for q in ancestry)
        """Names of the questions this one is asked for (the mesh's chain): a name server
        among them is a dependency cycle."""
        """The questions this resolution works for (sub-resolutions of the mesh): a name
        server whose name is among them would need itself."""
        self._names_seen: set[bytes] = {lowered_wire(question.qname)}
        """Owners met along a CNAME chain, lower-cased in wire form (a dnspython name
        hashes in Python, letter by letter)."""
        self.last_outcome: str | None = None
        """What the last upstream event taught, for the mesh to count and clear: the reply's
        kind (``answer``, ``referral``, ``rcode REFUSED``...) or the failure's name."""
        self._skip_cache_once = refresh
        """A refresh (prefetch, serve-stale) asks the servers again for the question itself,
        though cached delegations are still used."""
        self._referrals = 0
        self._next_ref = 0
        self._pending: SendQuery | None = None
        self._listening: dict[int, SendQuery] = {}
        """Earlier UDP tries that timed out but whose sockets still take a late reply."""
        self._silences: dict[str, _Silence] = {}
        """Servers of the current zone asked the current question and silent so far."""
        self._timed_out: set[str] = set()
        """Servers that timed out and are asked again (after the others) until a full
        ``default_timeout_s`` of silence gives them up."""
        self._pending_subquery: tuple[int, bytes, int] | None = None
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
                if self._pending is not None and event.ref == self._pending.ref:
                    return self._on_reply(event)
                if event.ref in self._listening:
                    return self._on_late_reply(event)
                return []
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
                if self._follow_cached_dname():
                    if self.state is State.FINISHED:
                        return
                    continue
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
        self._qmin = Minimiser(self.qname) if self._minimise else None
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
        lookup = self._next_target_lookup()
        if lookup is not None:
            return lookup
        if self._timed_out:
            # Every other server was asked: ask again the one silent longest (RFC 6298 §5.5).
            server = min(self._timed_out, key=lambda s: self._silences[s].last_at)
            return self._send(server)
        last_resort = self._last_resort_candidates()
        if last_resort:
            server = select_server(last_resort, zone_key, self._caches.infra, self._rng, self._now)
            return self._send(server)
        if self._cut_from_cache and self._targets.cycle_via is None:
            # The cached delegation led nowhere (expired glue, moved servers): walk again
            # from the root hints once (not when a dependency cycle stopped it: the walk
            # would meet the same cycle).
            self._set_cut(self._root.copy())
            self._cut_from_cache = False
            return self._query_targets()
        failure = self._no_server_left()
        if failure.cycle_via is None:  # a cycle is no fact about the name (RFC 9520 §3.1)
            self._caches.failures.record(
                self.qname, self.question.qtype, self._cut.zone.to_text(), failure.reason, self._now
            )
        return self._finish(failure)

    def _next_target_lookup(self) -> list[Action] | None:
        """Start the next name server address lookup (:mod:`resolver.core.targets`), skipping
        name servers this resolution is itself looking up for (a dependency cycle, as
        Unbound's ``iter_mark_cycle_targets``); None when none is left."""
        targets = self._targets
        while (found := next_lookups(self._cut, targets)) is not None:
            names, qtype = found
            cycles = [ns for ns in names if ns in self._ancestor_names]
            for ns_key in cycles:
                targets.spent.add(ns_key)
                self.cycles_met += 1
                self._met_cycle(name_from_wire(ns_key).to_text())
            names = [ns for ns in names if ns not in cycles]
            if not names:
                continue
            ns_key = self._rng.choice(names)
            targets.asked.add((ns_key, qtype))
            ref = self._new_ref()
            self._pending_subquery = (ref, ns_key, qtype)
            self.state = State.WAIT_SUBQUERY
            question = Question(name_from_wire(ns_key), dns.rdatatype.RdataType(qtype))
            return [StartSubquery(ref, question)]
        return None

    def _met_cycle(self, via: str) -> None:
        if self._targets.cycle_via is None:
            self._targets.cycle_via = via
        self._outcomes.append(f"dependency cycle through {via}")

    def _next_candidates(self) -> list[str]:
        """The cut's own addresses not tried yet; when the cut has last-resort addresses,
        only those not backed off after timeouts (the rest wait for
        :meth:`_last_resort_candidates`)."""
        tried, timed_out = self._tried, self._timed_out
        primary = [a for a in self._cut.addresses() if a not in tried and a not in timed_out]
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
        minimised = self._qmin_name is not None
        wait_s = self._wait_for(server)
        query = SendQuery(
            ref=self._new_ref(),
            server=server,
            qname=self._qmin_name or self.qname,
            qtype=MINIMISED_QTYPE if minimised else self.question.qtype,
            use_edns=infra.supports_edns(server, self._now),
            zone=self._cut.zone,
            timeout_s=wait_s,
            # A minimised question that times out falls back (RFC 9156 §2.3): no late reply.
            listen_s=wait_s if minimised else self._default_timeout_s,
        )
        self._pending = query
        self.state = State.WAIT_REPLY
        return [query]

    def _wait_for(self, server: str) -> float:
        """This try's wait for ``server``: its RTO for the first try of the question (RFC 6298
        §2.3, from the infra cache), then double the last wait after each timeout (§5.5),
        never past the upstream timeout nor past a full upstream timeout of silence since
        the first try."""
        now, default_s = self._now, self._default_timeout_s
        silence = self._silences.get(server)
        if silence is None:
            wait_s = self._caches.infra.timeout_s(server, default_s, now)
            self._silences[server] = _Silence(now, now, wait_s)
            return wait_s
        left_s = silence.first_at + default_s - now
        wait_s = max(min(2 * silence.wait_s, default_s, left_s), SILENCE_SLACK_S)
        silence.last_at, silence.wait_s = now, wait_s
        return wait_s

    # --- events --------------------------------------------------------------------------

    def _on_query_failed(self, event: QueryFailed) -> list[Action]:
        query = self._pending
        assert query is not None
        self._pending = None
        self.last_outcome = event.failure.name.lower()
        if event.failure in (Failure.TIMEOUT, Failure.NETWORK_ERROR):
            self._caches.infra.record_timeout(query.server, query.timeout_s, self._now)
        if self._qmin_name is not None and event.failure is not Failure.PROHIBITED:
            # A minimised question unanswered: its own fallback (RFC 9156 §2.3), not the wait
            # for a late reply, which the full name's question gets.
            self._server_failed(query.server, event.failure.value)
            self._minimised_query_failed(query.server)
            return self._advance()
        if event.failure is Failure.TIMEOUT and query.listen_s > query.timeout_s:
            self._listening[query.ref] = query  # its socket still takes a late reply
        silence = self._silences.get(query.server)
        if (
            event.failure is Failure.TIMEOUT
            and silence is not None
            and self._now - silence.first_at < self._default_timeout_s - SILENCE_SLACK_S
        ):
            # Not given up yet: ask the other servers first, then this one again.
            self._timed_out.add(query.server)
            self.state = State.QUERY_TARGETS
            return self._advance()
        self._server_failed(query.server, event.failure.value)
        return self._advance()

    def _on_late_reply(self, event: ReplyReceived) -> list[Action]:
        """A reply on a try that had timed out, its socket kept open for it: used like any
        reply; the try or sub-resolution in flight instead is abandoned."""
        self._pending = self._listening.pop(event.ref)
        self._pending_subquery = None
        self.state = State.WAIT_REPLY
        return self._on_reply(event)

    def _on_subquery_done(self, event: SubqueryDone) -> list[Action]:
        assert self._pending_subquery is not None
        _, ns_key, _qtype = self._pending_subquery
        self._pending_subquery = None
        self._take_target_result(ns_key, event.result)
        self.state = State.QUERY_TARGETS
        return self._advance()

    def _take_target_result(self, ns_key: bytes, result: Result) -> None:
        """Add the addresses a lookup found to the name server's; a CNAME on the way is
        followed (RFC 2181 §10.3 forbids it, Unbound follows it anyway: its
        ``processTargetResponse`` takes the chain's final addresses)."""
        addresses = list(self._cut.nameservers.get(ns_key, ()))
        found_any = False
        for rrset in result.answer:
            for address in addresses_of([rrset], rrset.owner_key):
                found_any = True
                if address not in addresses:
                    addresses.append(address)
        if ns_key in self._cut.nameservers:
            self._cut.nameservers[ns_key] = addresses
        if found_any:
            return
        name = name_from_wire(ns_key)
        if result.cycle_via is not None:
            self._targets.spent.add(ns_key)
            self._met_cycle(result.cycle_via)
        elif result.rcode == dns.rcode.NXDOMAIN:
            self._targets.spent.add(ns_key)
            self._outcomes.append(f"name server {name} does not exist")
        else:
            self._outcomes.append(f"no address for {name}")

    def _on_reply(self, event: ReplyReceived) -> list[Action]:
        query = self._pending
        assert query is not None
        self._pending = None
        self._settled(query.server)
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
        self.last_outcome = outcome
        self._remember(query, reply)
        if self._qmin_name is not None:
            return self._on_minimised_reply(query, reply)
        return self._on_classified(query, reply)

    def _remember(self, query: SendQuery, reply: ClassifiedReply) -> None:
        """Cache what the reply teaches, at its rank (RFC 2181 §5.4.1)."""
        now = self._now
        rrsets = self._caches.rrsets
        answer_rank = Rank.AUTH_ANSWER if reply.authoritative else Rank.ANSWER
        for rrset in cacheable(reply.chain):  # a DNAME's CNAMEs are made again from it
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
            case ReplyKind.YXDOMAIN:
                return self._finish_yxdomain(reply.chain)
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

    # --- DNAME (RFC 6672) ------------------------------------------------------------------

    def _follow_cached_dname(self) -> bool:
        """RFC 6672 §3.2 from the cache: a cached DNAME above the current name stands for a
        CNAME synthesised from it (with the DNAME's TTL), so names below it are answered
        without asking the DNAME's zone again. Checked before a cached CNAME, as Unbound
        does, so the DNAME always wins. False when no DNAME applies; True when one did (the
        machine moved on to the new name, or finished: YXDOMAIN, a loop, the hop limit)."""
        dname = self._caches.rrsets.dname_above(self.qname, self._now)
        if dname is None:
            return False
        cname = synthesised_cname(name_wire(self.qname), dname)
        if cname is None:
            self._finish_yxdomain((dname,))
        elif self.question.qtype == dns.rdatatype.CNAME:
            self.chain.extend((dname, cname))
            self._finish(Result(dns.rcode.NOERROR, tuple(self.chain)))
        elif self._restart_at(cname.target(), (dname, cname)):
            self.state = State.INIT
        return True

    def _finish_yxdomain(self, chain: tuple[WireRRset, ...]) -> list[Action]:
        """RFC 6672 §2.2: a DNAME rewrite longer than 255 octets answers YXDOMAIN, with the
        chain up to and including the DNAME."""
        self.chain.extend(chain)
        return self._finish(Result(dns.rcode.YXDOMAIN, tuple(self.chain)))

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

    # --- QNAME minimisation (RFC 9156) --------------------------------------------------

    def _minimise_next(self) -> None:
        """The next name to ask the cut's servers (RFC 9156 §3 steps 3-5): an ancestor with
        QTYPE A, skipping ancestors cached as NODATA (as Unbound), or the full question when
        the ancestor reached is the name itself or is cached as NXDOMAIN."""
        minimiser = self._qmin
        self._qmin_name = None
        while minimiser is not None:
            name = minimiser.next_name(self._cut.zone)
            if name is None:
                break
            negative = self._caches.negative.get(name, MINIMISED_QTYPE, self._now)
            if negative is None:
                self._qmin_name = name
                return
            if negative.rcode == dns.rcode.NXDOMAIN:
                break  # not trusted without DNSSEC (see _on_minimised_reply): ask the full name
        self._qmin = None

    def _minimise_no_more(self) -> None:
        """Fall back to the full name for the rest of this name (Unbound's default
        ``qname-minimisation-strict: no``); servers that failed only minimised questions
        may be asked the full one."""
        if self._qmin is not None:
            self._tried -= self._qmin.silent
            for server in self._qmin.silent:  # the full name is a new question to them
                self._silences.pop(server, None)
        self._qmin = None
        self._qmin_name = None
        self.state = State.QUERY_TARGETS

    def _minimised_query_failed(self, server: str) -> None:
        """A minimised question got no reply: ask the same ancestor of the other servers,
        up to ``MAX_MINIMISE_TIMEOUTS`` timeouts, then fall back to the full name."""
        assert self._qmin is not None
        if self._qmin.timed_out(server) or not self._next_candidates():
            self._minimise_no_more()

    def _on_minimised_reply(self, query: SendQuery, reply: ClassifiedReply) -> list[Action]:
        """A reply to a minimised question (RFC 9156 §3 step 6), as :func:`after_minimised`
        says: follow it as usual, add labels, or fall back to the full name."""
        step = after_minimised(reply.kind, reply.chain)
        if step is MinimisedStep.NEXT_NAME:
            self._minimise_next()
            self.state = State.QUERY_TARGETS
            return self._advance()
        if step is not MinimisedStep.AS_USUAL:
            self._minimise_no_more()
        if step is MinimisedStep.FULL_NAME:
            return self._advance()
        return self._on_classified(query, reply)

    # --- helpers -------------------------------------------------------------------------

    def _set_cut(self, cut: ZoneCut) -> None:
        self._cut = cut
        self._tried = set()
        self._outcomes = []
        self._targets = TargetLookups()
        self._listening = {}
        self._silences = {}
        self._timed_out = set()
        self._minimise_next()

    def _settled(self, server: str) -> None:
        """``server`` replied: the question at that server is settled (the transport closes
        its other tries' sockets), its silence ends."""
        self._listening = {r: q for r, q in self._listening.items() if q.server != server}
        self._silences.pop(server, None)
        self._timed_out.discard(server)

    def _server_failed(self, server: str, what: str) -> None:
        self._timed_out.discard(server)
        self._tried.add(server)
        self._outcomes.append(what)
        self.state = State.QUERY_TARGETS

    def _no_server_left(self) -> Result:
        """SERVFAIL that says why no server of the current zone gave an answer."""
        missing = self._missing_servers()
        if missing is not None:
            return missing
        zone = self._cut.zone.to_text()
        counts = Counter(self._outcomes)
        if len(counts) == 1:
            (what,) = counts
            if what == Failure.TIMEOUT.value:
                text = f"no server of {zone} answered"
            elif what.startswith("no address for"):
                text = f"no address for any name server of {zone}"
            elif what == Failure.LOCAL_ADDRESS.value:
                text = (
                    f"every name server of {zone} has a local address (127.0.0.0/8, ::1, "
                    "0.0.0.0/8, ::), not queried: outbound_allow does not name it"
                )
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

    def _missing_servers(self) -> Result | None:
        """SERVFAIL when the zone's servers could not even be addressed: a dependency cycle
        (with the name server it went through), name servers inside the zone without glue,
        or name servers that all do not exist (NXDOMAIN); None otherwise."""
        zone = self._cut.zone.to_text()
        code = ExtendedError.NO_REACHABLE_AUTHORITY
        outcomes = self._outcomes
        via = self._targets.cycle_via
        if via is not None:
            others = [o for o in outcomes if not o.startswith("dependency cycle")]
            text = f"dependency cycle through {via}: no other server of {zone} is reachable"
            if others:
                text += " (" + ", ".join(dict.fromkeys(others)) + ")"
            return replace(servfail(text, code), cycle_via=via)
        inside = inside_without_glue(self._cut)
        if inside and not self._tried and not outcomes:
            names = ", ".join(name_from_wire(ns).to_text() for ns in inside)
            text = (
                f"dependency cycle: the name servers of {zone} ({names}) are inside it "
                "and have no glue"
            )
            return replace(servfail(text, code), cycle_via=name_from_wire(inside[0]).to_text())
        missing_only = all(o.startswith("name server ") for o in outcomes)
        if outcomes and missing_only and not self._tried and not inside:
            names = ", ".join(sorted(o.split()[2] for o in outcomes))
            text = f"all name servers of {zone} are missing (NXDOMAIN): {names}"
            return servfail(text, code)
        return None

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
            cycle_via=result.cycle_via,
        )
        self.state = State.FINISHED
        self._pending = None
        self._pending_subquery = None
        self._listening = {}
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
