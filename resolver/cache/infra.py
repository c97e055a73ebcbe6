"""Facts about upstream servers: smoothed RTT, timeouts and backoff, EDNS support, lameness
per zone (Unbound's infra cache, ``services/cache/infra.c``).

RTT smoothing follows RFC 6298 §2 (alpha 1/8, beta 1/4). A server that times out is backed
off (its effective RTT doubles per timeout, up to two minutes, as Unbound's RTO) so that the
next query for its zone goes to a live server instead of waiting on it again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from resolver.names import NameKey

UNKNOWN_RTT_MS = 376.0
"""Effective RTT of a server never asked (Unbound's UNKNOWN_SERVER_NICENESS)."""

MAX_RTO_MS = 120_000.0
"""Largest backoff for a server that keeps timing out (Unbound's RTT_MAX_TIMEOUT)."""

MIN_RTO_MS = 50.0
FACT_TTL_S = 900.0
"""How long facts about a server are kept (Unbound's infra-host-ttl, infra-lame-ttl)."""


@dataclass(slots=True)
class ServerFacts:
    srtt_ms: float | None = None
    rttvar_ms: float = 0.0
    timeouts: int = 0
    backoff_ms: float = 0.0
    blocked_until: float = 0.0
    no_edns_until: float = 0.0
    updated_at: float = 0.0


class InfraCache:
    """Per-server facts, keyed by address; per (server, zone) lameness."""

    def __init__(self, max_servers: int = 10_000) -> None:
        self._servers: OrderedDict[str, ServerFacts] = OrderedDict()
        self._lame: OrderedDict[tuple[str, NameKey], float] = OrderedDict()
        self.max_servers = max_servers

    def __len__(self) -> int:
        return len(self._servers)

    def _facts(self, server: str, now: float) -> ServerFacts:
        facts = self._servers.get(server)
        if facts is None or now - facts.updated_at > FACT_TTL_S:
            facts = ServerFacts(updated_at=now)
            self._servers[server] = facts
            if len(self._servers) > self.max_servers:
                self._servers.popitem(last=False)
        self._servers.move_to_end(server)
        return facts

    def peek(self, server: str) -> ServerFacts | None:
        return self._servers.get(server)

    def record_rtt(self, server: str, rtt_s: float, now: float) -> None:
        """A reply arrived after ``rtt_s`` seconds (RFC 6298 §2.2, §2.3)."""
        facts = self._facts(server, now)
        rtt_ms = rtt_s * 1000.0
        if facts.srtt_ms is None:
            facts.srtt_ms = rtt_ms
            facts.rttvar_ms = rtt_ms / 2
        else:
            facts.rttvar_ms = 0.75 * facts.rttvar_ms + 0.25 * abs(facts.srtt_ms - rtt_ms)
            facts.srtt_ms = 0.875 * facts.srtt_ms + 0.125 * rtt_ms
        facts.timeouts = 0
        facts.backoff_ms = 0.0
        facts.blocked_until = 0.0
        facts.updated_at = now

    def record_timeout(self, server: str, timeout_s: float, now: float) -> None:
        """No reply within ``timeout_s``: back off, doubling each time (RFC 6298 §5.5)."""
        facts = self._facts(server, now)
        facts.timeouts += 1
        base = max(facts.backoff_ms, timeout_s * 1000.0, MIN_RTO_MS)
        facts.backoff_ms = min(base * 2 if facts.timeouts > 1 else base, MAX_RTO_MS)
        facts.blocked_until = now + facts.backoff_ms / 1000.0
        facts.updated_at = now

    def selection_rtt_ms(self, server: str, now: float) -> float:
        """The RTT used to rank a server: its smoothed RTT, the unknown-server niceness, or its
        backoff while it is blocked after timeouts."""
        facts = self._servers.get(server)
        if facts is None or now - facts.updated_at > FACT_TTL_S:
            return UNKNOWN_RTT_MS
        if facts.blocked_until > now:
            return MAX_RTO_MS + facts.backoff_ms
        return facts.srtt_ms if facts.srtt_ms is not None else UNKNOWN_RTT_MS

    def is_blocked(self, server: str, now: float) -> bool:
        """True while ``server`` is backed off after timeouts."""
        facts = self._servers.get(server)
        return facts is not None and facts.blocked_until > now

    def timeout_s(self, server: str, default_s: float, now: float) -> float:
        """How long to wait for ``server``: RTO = SRTT + 4 * RTTVAR (RFC 6298 §2.3), at least
        50 ms, at most ``default_s``; ``default_s`` while the RTT is unknown. After a timeout
        the wait doubles until a reply comes (RFC 6298 §5.5, "back off the timer"; Unbound
        doubles its RTO alike), so a server whose replies have slowed past its RTO is not
        given up on after two short waits."""
        facts = self._servers.get(server)
        if facts is None or facts.srtt_ms is None or now - facts.updated_at > FACT_TTL_S:
            return default_s
        rto_ms = max(facts.srtt_ms + 4 * facts.rttvar_ms, MIN_RTO_MS)
        if facts.timeouts:
            rto_ms = max(rto_ms, 2 * facts.backoff_ms)
        return min(rto_ms / 1000.0, default_s)

    def mark_no_edns(self, server: str, now: float) -> None:
        """The server answered FORMERR to EDNS (RFC 6891 §7): ask it without for a while."""
        self._facts(server, now).no_edns_until = now + FACT_TTL_S

    def supports_edns(self, server: str, now: float) -> bool:
        facts = self._servers.get(server)
        return facts is None or facts.no_edns_until <= now

    def mark_lame(self, server: str, zone: NameKey, now: float) -> None:
        self._lame[(server, zone)] = now + FACT_TTL_S
        self._lame.move_to_end((server, zone))
        if len(self._lame) > self.max_servers:
            self._lame.popitem(last=False)

    def is_lame(self, server: str, zone: NameKey, now: float) -> bool:
        until = self._lame.get((server, zone))
        return until is not None and until > now

    def clear(self) -> None:
        self._servers.clear()
        self._lame.clear()
