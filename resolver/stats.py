"""What each part of a running resolver reports to the metrics collector at scrape time.

A narrow protocol between the parts and :mod:`resolver.metrics`: each part (frontend, driver,
mesh, upstream) hands out one of these plain values through its ``stats()`` (the caches report
:class:`~resolver.cache.answer.AnswerCacheStats` and :class:`~resolver.cache.lru.CacheSize`),
so the collector imports none of the parts themselves (``tests/unit/test_architecture.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from resolver.histogram import HistogramView


@dataclass(frozen=True, slots=True)
class DriverStats:
    """What the driver has measured, read at scrape time (:meth:`Driver.stats`)."""

    upstream_rtt: HistogramView
    bugs: int


@dataclass(frozen=True, slots=True)
class FrontendStats:
    """What the frontend has answered, read at scrape time (:meth:`Frontend.stats`)."""

    answered: dict[tuple[str, bytes, int], int]
    """Slow-path replies by (transport, QTYPE in wire form, RCODE; -1: dropped)."""
    rejected: dict[str, int]
    """Queries not resolved, by reason (refused, denied, malformed, ratelimited...)."""
    latency: HistogramView
    """Seconds from arrival to reply of slow-path queries (hits are not timed)."""
    bugs: int = 0
    """Client queries our own code failed on (logged with a traceback)."""


@dataclass(frozen=True, slots=True)
class MeshStats:
    """What the mesh has done, read at scrape time (:meth:`Mesh.stats`)."""

    in_flight: int
    """Resolutions in flight, sub-resolutions included."""
    merged: int
    """Questions that joined a resolution in flight instead of starting one."""
    upstream: dict[str, int]
    """Upstream outcomes: reply kinds (answer, referral, nxdomain...) and failures."""
    started: int = 0
    """Resolutions started for client questions (not merged into one in flight)."""
    subqueries: int = 0
    """Sub-questions asked (addresses of glueless name servers), merged ones included."""
    cycles: int = 0
    """Sub-questions that would have waited on themselves: dependency cycles."""
    dnssec_states: dict[str, int] = field(default_factory=dict)
    """Validated answers by DNSSEC state (secure, insecure, bogus)."""
    dnssec_bogus: dict[str, int] = field(default_factory=dict)
    """Bogus answers by Extended DNS Error name."""
    bugs: int = 0
    """Resolution steps that raised: bugs of ours, each SERVFAIL to its clients."""
    dnssec_synthesised: dict[str, int] = field(default_factory=dict)
    """Negative answers synthesised from cached secure NSECs (RFC 8198), by kind."""


@dataclass(slots=True)
class MeshCounters:
    """The mesh's plain counters, kept as it runs (:meth:`Mesh.stats` copies them)."""

    started: int = 0
    merged: int = 0
    subqueries: int = 0
    cycles: int = 0
    bugs: int = 0
    """Steps of a resolution that raised (bugs of ours), each failing its job."""
    upstream: Counter[str] = field(default_factory=Counter)
    """Upstream outcomes: reply kinds (answer, referral, nxdomain...) and failures, counted
    from the events fed to the machines and the kinds they report back."""


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
    case_tcp_switches: int = 0
    """Questions moved to TCP because, with 0x20 on, a UDP reply matched in all but the
    letter case of its question name (a server that does not keep the case)."""
    late_replies: int = 0
    """Replies that came after their try had timed out, on its socket kept open."""
