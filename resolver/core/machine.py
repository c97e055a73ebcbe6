"""One question, one state machine: iterative resolution (RFC 1034 §5.3.3).

A :class:`Resolution` starts at the closest known zone cut (the root hints), asks one server
at a time, follows referrals down, restarts at the target of a CNAME that leaves the zone,
and finishes with an answer, a negative answer (RFC 2308) or SERVFAIL. Addresses of glueless
name servers come from separate sub-resolutions (``StartSubquery``), which the mesh runs.

The machine is sans-IO: it never sends, sleeps or reads a clock. ``start`` and ``handle``
return actions; the driver performs them and feeds the outcomes back as events.

As Unbound's iterator, it has one handler per state (:mod:`resolver.core.state`) and a
dispatcher, :meth:`Resolution._advance`: INIT and QUERYTARGETS here, QUERY_RESP in
:mod:`resolver.core.response`; what every handler shares lives in
:mod:`resolver.core.progress`, the SERVFAIL that explains an unreachable zone in
:mod:`resolver.core.unreachable`.
"""

from __future__ import annotations

import typing

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.rrset import Rank
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
from resolver.core.progress import SILENCE_SLACK_S, Silence
from resolver.core.qmin import MINIMISED_QTYPE, Minimiser
from resolver.core.response import ResponseHandling
from resolver.core.select import select_server
from resolver.core.state import (
    QUERY_TARGETS,
    Done,
    Init,
    QueryTargets,
    ReplyArrived,
    WaitingKeys,
    WaitingReply,
    WaitingSubquery,
)
from resolver.core.targets import next_lookups
from resolver.core.unreachable import no_server_left
from resolver.model import ExtendedError, Question, Result, addresses_of, servfail
from resolver.names import NameKey, parent_key
from resolver.records import name_from_wire

PARENT_SIDE_TYPES = frozenset({dns.rdatatype.DS})
"""Types whose authoritative data lives on the parent side of a zone cut: DS (RFC 4035
§3.1.4.1, RFC 4034 §5). Of the types RFC 4035 names, only DS is parent-only; NSEC and RRSIG
exist on both sides and follow the question's other types."""


_SIGNED_FETCHES = frozenset({dns.rdatatype.DNSKEY, dns.rdatatype.DS})
_CNAME = dns.rdatatype.CNAME


def parent_side_name(
    qname: dns.name.Name, qname_key: NameKey, qtype: int
) -> tuple[dns.name.Name, NameKey]:
    """Where the search for a zone cut starts, and its key: at the parent for a parent-side
    type, so a DS question for a delegation point is asked of the parent zone's servers
    (RFC 4035 §3.1.4.1), else at the name itself."""
    if qtype in PARENT_SIDE_TYPES and len(qname) > 1:
        return qname.parent(), parent_key(qname_key)
    return qname, qname_key


class Resolution(ResponseHandling):
    """Iterative resolution of one question, as a state machine."""

    # --- entry points ------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin the walk; returns the first actions."""
        self._now = now
        return self._advance()

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; returns the next actions (empty while waiting).

        An event is taken only by the waiting state that awaits its ``ref`` (a reply also
        by an earlier try still listening for it); any other is stale and ignored, as is
        every event once finished: the I/O around the machine races it (a late reply, a
        sub-resolution that ends after its parent finished)."""
        self._now = now
        state = self.state
        match event:
            case ReplyReceived():
                if isinstance(state, WaitingReply) and event.ref == state.query.ref:
                    self.state = ReplyArrived(state.query, event)
                elif not isinstance(state, Done) and event.ref in self._listening:
                    # A reply on a try that had timed out, its socket kept open for it: used
                    # like any reply; the try or sub-resolution in flight is abandoned.
                    self.state = ReplyArrived(self._listening.pop(event.ref), event)
                else:
                    return []
                return self._advance()
            case QueryFailed():
                if isinstance(state, WaitingReply) and event.ref == state.query.ref:
                    return self._on_query_failed(state.query, event)
                return []
            case SubqueryDone():
                if isinstance(state, WaitingSubquery) and event.ref == state.ref:
                    return self._on_subquery_done(state, event)
                if isinstance(state, WaitingKeys) and event.ref == state.ref:
                    return self._on_keys_fetched(state, event.result)
                return []
            case _:
                typing.assert_never(event)

    # --- the dispatcher and one handler per state ----------------------------------------

    def _advance(self) -> list[Action]:
        while True:
            state = self.state
            match state:
                case Init():
                    actions = self._init()
                    if actions:
                        return actions
                case QueryTargets():
                    return self._query_targets()
                case ReplyArrived():
                    return self._query_response(state)
                case WaitingReply() | WaitingSubquery() | WaitingKeys():
                    return []
                case Done():
                    return [Finished(state.result)]
                case _:
                    typing.assert_never(state)

    def _init(self) -> list[Action] | None:
        """INIT: answer from the cache if it can (RFC 1034 §5.3.3 step 1), following cached
        CNAMEs, else start at the closest cached zone cut (step 2), else at the root hints."""
        now = self._now
        caches = self._caches
        qtype = self.question.qtype
        if self._validator is not None and self._validating:
            bogus = self._validator.bogus_answer(self.qname_key, qtype, now)
            if bogus is not None:  # kept val_bogus_ttl_s: not fetched nor verified again
                self._validator.count(bogus)
                return self._finish_bogus(bogus)
        elif self._validator is not None and qtype in _SIGNED_FETCHES:
            # A DNSKEY or DS fetch needs the RRSIGs, which the RRset cache does not keep
            # for unvalidated data: asked of the servers (the key cache spares the fetches
            # for known zones).
            self._skip_cache_once = True
        while not self._skip_cache_once:
            if self._validating and qtype != dns.rdatatype.ANY:
                # Only what a validation judged answers a validated question (RFC 4035
                # §4.5); anything else is asked again, with DO. A failure to reach the
                # zone is remembered all the same (RFC 9520).
                failure = caches.failures.get(self.qname, qtype, now, key=self.qname_key)
                if failure is not None:
                    self._finish(servfail(f"{failure} (cached failure)", self._failure_code))
                    return None
                if self._follow_cached_dname():
                    if isinstance(self.state, Init):
                        continue
                    return self._take_pending_actions()
                taken = self._from_validated_cache()
                if taken is None:
                    if self._negative_from_validated_cache():
                        return None
                    break
                if taken:
                    return taken
                continue
            key = self.qname_key
            failure = caches.failures.get(self.qname, qtype, now, key=key)
            if failure is not None:
                self._finish(servfail(f"{failure} (cached failure)", self._failure_code))
                return None
            if qtype != dns.rdatatype.ANY:  # ANY is relayed, never assembled from the cache
                if self._follow_cached_dname():
                    if isinstance(self.state, Done):
                        return None
                    continue
                if self._validator is None:
                    cached = caches.rrsets.get(self.qname, qtype, now, Rank.ANSWER, key=key)
                else:  # CD=1 under validation: only with its RRSIGs (RFC 4035 §3.2.1)
                    cached = self._validated_for_cd()
                if cached is not None:
                    self.chain.append(cached)
                    self._finish(
                        Result(dns.rcode.NOERROR, tuple(self.chain), proof=(*self._proof,))
                    )
                    return None
                cname = None
                if qtype != _CNAME and self._validator is None:
                    cname = caches.rrsets.get(self.qname, _CNAME, now, Rank.ANSWER, key=key)
                elif qtype != _CNAME and (
                    found := caches.rrsets.get_validated(self.qname, _CNAME, now, key=key)
                ):  # CD=1: a CNAME with its RRSIGs too, as the answer (RFC 4035 §3.2.1)
                    cname, _, sigs = found
                    self._proof.extend(() if sigs is None else (sigs,))
                if cname is not None:
                    if not self._restart_at(cname.target(), cname.target_key(), (cname,)):
                        return None
                    continue
            negative = caches.negative.get(self.qname, qtype, now, key=key)
            if negative is not None:
                chain, proof = tuple(self.chain), (*self._proof,)  # the chain's RRSIGs (CD)
                self._finish(Result(negative.rcode, chain, (negative.soa,), proof=proof))
                return None
            break
        self._skip_cache_once = False
        self._qmin = Minimiser(self.qname) if self._minimise else None
        start, start_key = parent_side_name(self.qname, self.qname_key, qtype)
        cut = caches.rrsets.closest_cut(start, now, key=start_key)
        self._set_cut(cut if cut is not None else self._root.copy())
        self._cut_from_cache = cut is not None
        self.state = QUERY_TARGETS
        return None

    _failure_code = ExtendedError.NO_REACHABLE_AUTHORITY

    def _query_targets(self) -> list[Action]:
        """QUERY_TARGETS: ask the next untried server, or start a glueless lookup."""
        candidates = self._next_candidates()
        zone_key = self._cut.zone_key
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
        failure = no_server_left(self._cut, self._outcomes, self._tried, self._targets.cycle_via)
        if failure.cycle_via is None:  # a cycle is no fact about the name (RFC 9520 §3.1)
            self._caches.failures.record(
                self.qname,
                self.question.qtype,
                self._cut.zone.to_text(),
                failure.reason,
                self._now,
                key=self.qname_key,
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
            self.state = WaitingSubquery(ref, ns_key, qtype)
            question = Question(
                name_from_wire(ns_key),
                dns.rdatatype.RdataType(qtype),
                qname_key=ns_key,
                checking_disabled=self._validator is not None,  # as Unbound's target queries
            )
            return [StartSubquery(ref, question)]
        return None

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
            qname_key=self._qmin_key if minimised else self.qname_key,
            qtype=MINIMISED_QTYPE if minimised else self.question.qtype,
            use_edns=infra.supports_edns(server, self._now),
            zone=self._cut.zone,
            zone_key=self._cut.zone_key,
            dnssec_ok=self._validator is not None,
            timeout_s=wait_s,
            # A minimised question that times out falls back (RFC 9156 §2.3): no late reply.
            listen_s=wait_s if minimised else self._default_timeout_s,
        )
        self.state = WaitingReply(query)
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
            self._silences[server] = Silence(now, now, wait_s)
            return wait_s
        left_s = silence.first_at + default_s - now
        wait_s = max(min(2 * silence.wait_s, default_s, left_s), SILENCE_SLACK_S)
        silence.last_at, silence.wait_s = now, wait_s
        return wait_s

    # --- events (in a waiting state) --------------------------------------------------------------------------

    def _on_query_failed(self, query: SendQuery, event: QueryFailed) -> list[Action]:
        """The try awaited got no usable reply: back off and ask another server, or this
        one again later (RFC 6298 §5.5), or give the server up."""
        self._count_upstream(event.failure.name.lower())
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
            self.state = QUERY_TARGETS
            return self._advance()
        self._server_failed(query.server, event.failure.value)
        return self._advance()

    def _minimised_query_failed(self, server: str) -> None:
        """A minimised question got no reply: ask the same ancestor of the other servers,
        up to ``MAX_MINIMISE_TIMEOUTS`` timeouts, then fall back to the full name."""
        assert self._qmin is not None
        if self._qmin.timed_out(server) or not self._next_candidates():
            self._minimise_no_more()

    def _on_subquery_done(self, state: WaitingSubquery, event: SubqueryDone) -> list[Action]:
        self._take_target_result(state.ns_key, event.result)
        self.state = QUERY_TARGETS
        return self._advance()

    def _take_target_result(self, ns_key: NameKey, result: Result) -> None:
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
