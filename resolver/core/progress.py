"""What one resolution knows so far, and the steps every state handler shares.

:class:`Progress` holds the current name, the CNAME chain, the zone cut being asked, which of
its servers were tried and which are silent, the QNAME-minimisation walk, and the
:mod:`~resolver.core.state` the machine is in. :class:`~resolver.core.machine.Resolution`
(INIT, QUERYTARGETS and the events) and :class:`~resolver.core.response.ResponseHandling`
(QUERY_RESP) build on it, each in its own module.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.core.events import Action, Finished, SendQuery
from resolver.core.qmin import MINIMISED_QTYPE, Minimiser
from resolver.core.state import INIT, QUERY_TARGETS, Done, State
from resolver.core.targets import TargetLookups
from resolver.limits import Budget
from resolver.model import Question, Result, Security, ZoneCut, servfail
from resolver.names import NameKey, suffix_key
from resolver.records import Reply, WireRRset

if TYPE_CHECKING:
    from resolver.core.dnssec.segment import Segment

SILENCE_SLACK_S = 1e-6
"""Rounding allowance when comparing a server's silence with the upstream timeout."""


@dataclass(slots=True)
class Silence:
    """One server of the current zone that has not answered the current question yet: when
    it was first asked, when last, and the last try's wait (doubled for the next try)."""

    first_at: float
    last_at: float
    wait_s: float


class Progress:
    """The state of one iterative resolution; the handlers live in subclasses."""

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
        validator: Validator | None = None,
    ) -> None:
        self.question = question
        self.state: State = INIT
        self.qname = question.qname
        self.qname_key: NameKey = question.qname_key
        """``qname``'s key: the name the caches are asked for and replies are matched to."""
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
        self._qmin_key = NameKey(b"")
        """``_qmin_name``'s key, while there is one."""
        self._now = 0.0
        self._cut = root  # replaced (by a copy or a cached cut) before it is changed
        self._cut_from_cache = False
        self._tried: set[str] = set()
        self._outcomes: list[str] = []
        self._targets = TargetLookups()
        self.cycles_met = 0
        """Name servers skipped because they would need themselves (the mesh counts them)."""
        self._ancestor_names = frozenset(q.qname_key for q in ancestry)
        """Names of the questions this one is asked for (the mesh's chain): a name server
        among them would need itself, a dependency cycle."""
        self._names_seen: set[NameKey] = {question.qname_key}
        """Owners met along a CNAME chain (a dnspython name hashes in Python, letter by
        letter; a key hashes in C)."""
        self._cname_hops = 0
        """CNAMEs followed so far (a DNAME's synthesised one included), wherever each came
        from: one reply, several, or the cache (see ``_end_chain``)."""
        self.last_outcome: str | None = None
        """What the last upstream event taught, for the mesh to count and clear: the reply's
        kind (``answer``, ``referral``, ``rcode REFUSED``...) or the failure's name."""
        self._skip_cache_once = refresh
        """A refresh (prefetch, serve-stale) asks the servers again for the question itself,
        though cached delegations are still used."""
        self._referrals = 0
        self._next_ref = 0
        self._listening: dict[int, SendQuery] = {}
        """Earlier UDP tries that timed out but whose sockets still take a late reply."""
        self._silences: dict[str, Silence] = {}
        """Servers of the current zone asked the current question and silent so far."""
        self._timed_out: set[str] = set()
        """Servers that timed out and are asked again (after the others) until a full
        ``default_timeout_s`` of silence gives them up."""
        self._validator = validator
        """DNSSEC validation (None: off); the DO bit is sent whenever it is set."""
        self._segments: list[Segment] = []
        """What each reply added to the answer, to validate (:mod:`.validating`)."""
        self._proof: list[WireRRset] = []
        """The DNSSEC records of the answer, for the result (DO clients get them)."""
        self._pending: Result | None = None
        self._pending_actions: list[Action] = []
        """What the last validation step returned (see ``_take_pending_actions``)."""
        self._cached_states: list[Security] = []
        """States of the validated RRsets the cache gave this answer."""
        self._need: list[dns.name.Name] = []
        """Zones whose key verdicts are being established, the innermost last."""
        self._last_reply: Reply | None = None
        """The reply being handled (its DNSSEC records are read from it)."""
        self._fetched: dict[tuple[dns.name.Name, int], Result] = {}
        """DNSKEY and DS fetches done for this answer's validation."""
        self._secure_ds: dict[dns.name.Name, tuple[dns.rrset.RRset, int]] = {}
        """DS RRsets (with their TTL) verified for this answer's validation: a zone's DS is
        verified once, not again when its DNSKEY RRset arrives."""

    @property
    def zone(self) -> dns.name.Name:
        """The zone whose servers the machine is asking now."""
        return self._cut.zone

    @property
    def result(self) -> Result | None:
        """The result once finished, else None."""
        state = self.state
        return state.result if isinstance(state, Done) else None

    # --- provided by the machine --------------------------------------------------------

    def _advance(self) -> list[Action]:
        """Run state handlers until the machine waits or finishes (the dispatcher)."""
        raise NotImplementedError

    def _send(self, server: str) -> list[Action]:
        """Ask ``server`` the current question; wait for its reply."""
        raise NotImplementedError

    # --- shared steps -------------------------------------------------------------------

    def _count_upstream(self, outcome: str) -> None:
        """Note one upstream try's outcome (a reply kind or a failure) for the mesh, which
        counts it for the metrics (the machine holds no counter of the mesh's)."""
        self.last_outcome = outcome

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
        self.state = QUERY_TARGETS

    def _met_cycle(self, via: str) -> None:
        if self._targets.cycle_via is None:
            self._targets.cycle_via = via
        self._outcomes.append(f"dependency cycle through {via}")

    def _next_candidates(self) -> list[str]:
        """The cut's own addresses not tried yet; when the cut has last-resort addresses,
        only those not backed off after timeouts (the rest are a last resort)."""
        tried, timed_out = self._tried, self._timed_out
        primary = [a for a in self._cut.addresses() if a not in tried and a not in timed_out]
        if not self._cut.fallback:
            return primary
        infra, now = self._caches.infra, self._now
        return [a for a in primary if not infra.is_blocked(a, now)]

    def _restart_at(
        self, target: dns.name.Name, target_key: NameKey, chain: tuple[WireRRset, ...]
    ) -> bool:
        """Add ``chain`` and move on to ``target`` (keyed ``target_key``); False (and
        finished) on a loop or when the chain grows too long."""
        if target_key in self._names_seen:
            self.chain.extend(chain)
            self._finish(servfail(f"CNAME loop at {target}"))
            return False
        if self._end_chain(chain, target, target_key) is not None:
            return False
        self._names_seen.add(target_key)
        self.qname = target
        self.qname_key = target_key
        return True

    def _end_chain(
        self, chain: tuple[WireRRset, ...], end: dns.name.Name, end_key: NameKey
    ) -> list[Action] | None:
        """Add the links of ``chain`` that lead to ``end``: from a reply that ends the walk
        (an answer, NXDOMAIN, NODATA, YXDOMAIN), one that restarts it, or the cache. Every
        CNAME counts as a hop (a DNAME's synthesised one too, RFC 6672 §3.2) and its target
        is checked against the names already met, wherever it came from, so whether a
        chain is answered never depends on how its links arrived (one reply, several, the
        cache). A CNAME owned by ``end`` is the answer (QTYPE CNAME or ANY), not a hop.
        None when the chain is acceptable, else the SERVFAIL's actions (finished)."""
        self.chain.extend(chain)
        seen = self._names_seen
        for rrset in chain:
            if rrset.rdtype != dns.rdatatype.CNAME or rrset.owner_key == end_key:
                continue
            self._cname_hops += 1
            seen.add(rrset.owner_key)
            target_key = rrset.target_key()
            if target_key in seen:  # a loop inside one reply is CNAME_LOOP already
                return self._finish(servfail(f"CNAME loop at {rrset.target()}"))
            seen.add(target_key)
        if self._cname_hops > self._budget.limits.max_cname_hops:
            return self._finish_too_long(end)
        return None

    def _finish_too_long(self, at: dns.name.Name) -> list[Action]:
        """SERVFAIL (EDE 0, Other, RFC 8914 §4.1: no code names this) for a chain past the
        hop limit, with the text saying so."""
        limit = self._budget.limits.max_cname_hops
        return self._finish(servfail(f"CNAME chain longer than {limit} at {at}"))

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
            key = suffix_key(self.qname_key, len(name))
            negative = self._caches.negative.get(name, MINIMISED_QTYPE, self._now, key=key)
            if negative is None:
                self._qmin_name = name
                self._qmin_key = key
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
        self.state = QUERY_TARGETS

    # --- the end ------------------------------------------------------------------------

    def _finish(self, result: Result) -> list[Action]:
        """FINISHED: cap the TTLs, stop listening, return the one ``Finished`` action."""
        max_ttl = self._caches.rrsets.bounds.max_ttl
        max_negative_ttl = self._caches.negative.max_ttl
        validator, security = self._validator, result.security
        if validator is not None and not validator.enabled:
            security = None  # dnssec = false judges nothing: no state to log
        final = Result(
            result.rcode,
            _capped(result.answer, max_ttl),
            _capped(result.authority, max_negative_ttl),
            result.reason,
            result.error_code,
            upstream_queries=self._budget.upstream_queries,
            cycle_via=result.cycle_via,
            security=security,
            proof=result.proof,
            zone=self._cut.zone,
        )
        self.state = Done(final)
        self._listening = {}
        return [Finished(final)]

    def _new_ref(self) -> int:
        self._next_ref += 1
        return self._next_ref


def _capped(rrsets: tuple[WireRRset, ...], max_ttl: int) -> tuple[WireRRset, ...]:
    """The RRsets with no TTL above ``max_ttl``, so the first answer shows a client what the
    cache would (Unbound's cache-max-ttl and cache-max-negative-ttl apply to replies too)."""
    if all(rrset.ttl <= max_ttl for rrset in rrsets):
        return rrsets
    return tuple(rrset.with_ttl(max_ttl) if rrset.ttl > max_ttl else rrset for rrset in rrsets)
