"""Prometheus metrics: one collector, its own registry, read at scrape time.

Nothing on the query path touches prometheus_client: the resolver keeps plain counters
(dicts, ints, :class:`~resolver.histogram.Histogram`) and :class:`RootwalkCollector` turns
them into metric families when Prometheus scrapes. The collector reads each part only
through its ``stats()`` method, a read-only view (the :class:`StatsSources` protocol). Names follow Prometheus conventions:
``rootwalk_`` prefix, base units (seconds, bytes), ``_total`` on counters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dns.rcode
import dns.rdatatype
from prometheus_client import start_http_server
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from resolver.cache.answer import AnswerCacheStats
    from resolver.cache.lru import CacheSize
    from resolver.stats import DriverStats, FrontendStats, MeshStats, UpstreamCounters

log = logging.getLogger(__name__)

COMMON_TYPES = frozenset(
    dns.rdatatype.from_text(name)
    for name in (
        "A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "HTTPS",
        "SVCB", "DS", "DNSKEY", "ANY", "CAA", "NAPTR",
    )
)  # fmt: skip
"""QTYPE labels by name; every other type is ``other``, so no client can mint labels."""

COMMON_RCODES = frozenset({0, 1, 2, 3, 4, 5, 6})  # ... and YXDOMAIN (RFC 6672 §2.2)


def qtype_label(qtype_wire: bytes) -> str:
    qtype = int.from_bytes(qtype_wire, "big")
    return (
        dns.rdatatype.to_text(dns.rdatatype.RdataType(qtype)) if qtype in COMMON_TYPES else "other"
    )


def rcode_label(rcode: int) -> str:
    if rcode < 0:
        return "dropped"
    return dns.rcode.to_text(dns.rcode.Rcode(rcode)) if rcode in COMMON_RCODES else "other"


_S_co = TypeVar("_S_co", covariant=True)


class HasStats(Protocol[_S_co]):
    """A part of the resolver the collector reads: ``stats()`` gives a read-only view of
    its counters at scrape time (a copy: the event loop keeps counting meanwhile)."""

    def stats(self) -> _S_co: ...


class HasSize(Protocol):
    """A cache the collector reads: how full it is."""

    def size(self) -> CacheSize: ...


class CacheSet(Protocol):
    """The resolution caches the collector reports on besides the answer cache."""

    @property
    def rrsets(self) -> HasSize: ...
    @property
    def negative(self) -> HasSize: ...


class StatsSources(Protocol):
    """What the collector reads of a running resolver (the parts are None before start)."""

    @property
    def frontend(self) -> HasStats[FrontendStats] | None: ...
    @property
    def driver(self) -> HasStats[DriverStats] | None: ...
    @property
    def mesh(self) -> HasStats[MeshStats] | None: ...
    @property
    def upstream(self) -> HasStats[UpstreamCounters] | None: ...
    @property
    def answers(self) -> HasStats[AnswerCacheStats]: ...
    @property
    def caches(self) -> CacheSet: ...


class RootwalkCollector(Collector):
    """Reads one running resolver's plain counters, through their ``stats()`` views."""

    def __init__(self, service: StatsSources) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        frontend, driver = service.frontend, service.driver
        mesh, upstream = service.mesh, service.upstream
        if frontend is None or driver is None or mesh is None or upstream is None:
            return  # not started yet
        answers, frontend_stats, driver_stats = (
            service.answers.stats(),
            frontend.stats(),
            driver.stats(),
        )
        yield from _client_metrics(frontend_stats, answers)
        yield from _cache_metrics(answers, service.caches)
        mesh_stats = mesh.stats()
        yield from _upstream_metrics(driver_stats, mesh_stats, upstream.stats())
        errors = CounterMetricFamily(
            "rootwalk_internal_errors",
            "Client queries or resolutions that Rootwalk's own code failed on (a bug: logged "
            "with a traceback, answered SERVFAIL or dropped), by the part that caught it.",
            labels=["part"],
        )
        errors.add_metric(["frontend"], frontend_stats.bugs)
        errors.add_metric(["driver"], driver_stats.bugs)
        errors.add_metric(["mesh"], mesh_stats.bugs)
        yield errors


def _client_metrics(frontend: FrontendStats, answers: AnswerCacheStats) -> Iterator[Metric]:
    queries = CounterMetricFamily(
        "rootwalk_client_queries",
        "Client queries answered (or dropped), by transport, query type and response code.",
        labels=["transport", "qtype", "rcode"],
    )
    merged: dict[tuple[str, str, str], int] = {}
    counted = [*frontend.answered.items(), *answers.hits.items()]
    for (transport_name, qtype, rcode), count in counted:
        labels = (transport_name, qtype_label(qtype), rcode_label(rcode))
        merged[labels] = merged.get(labels, 0) + count
    for labels, count in merged.items():
        queries.add_metric(list(labels), count)
    yield queries

    latency = HistogramMetricFamily(
        "rootwalk_client_answer_seconds",
        "Time from a client's query to the reply. Cache hits are answered without being "
        "timed and are counted in the first bucket.",
    )
    latency.add_metric(
        [],
        frontend.latency.cumulative(extra_in_first=answers.counters.hits),
        frontend.latency.sum,
    )
    yield latency

    rejected = CounterMetricFamily(
        "rootwalk_client_rejected",
        "Client packets not resolved: refused or denied by the access list, malformed, "
        "responses, unsupported opcode or EDNS version.",
        labels=["reason"],
    )
    for reason, count in frontend.rejected.items():
        rejected.add_metric([reason], count)
    yield rejected


def _cache_metrics(answers: AnswerCacheStats, caches: CacheSet) -> Iterator[Metric]:
    cache_counters = answers.counters
    for name, help_text, value in (
            ("rootwalk_cache_hits", "Queries answered from the answer cache.", cache_counters.hits),
            ("rootwalk_cache_misses", "Queries the answer cache could not answer.", cache_counters.misses),
            ("rootwalk_cache_stale_answers", "Stale answers served (RFC 8767).", cache_counters.stale_answers),
            ("rootwalk_cache_prefetches", "Entries refreshed before they expired.", cache_counters.prefetches),
        ):  # fmt: skip
        yield CounterMetricFamily(name, help_text, value=value)

    sizes = {
        "answer": answers.size,
        "rrset": caches.rrsets.size(),
        "negative": caches.negative.size(),
    }
    entries = GaugeMetricFamily("rootwalk_cache_entries", "Entries per cache.", labels=["cache"])
    size = GaugeMetricFamily(
        "rootwalk_cache_bytes", "Approximate bytes per cache.", labels=["cache"]
    )
    evictions = CounterMetricFamily(
        "rootwalk_cache_evictions",
        "Entries evicted to stay within the size limit.",
        labels=["cache"],
    )
    for cache, counted in sizes.items():
        entries.add_metric([cache], counted.entries)
        size.add_metric([cache], counted.bytes_used)
        evictions.add_metric([cache], counted.evictions)
    yield entries
    yield size
    yield evictions


def _upstream_metrics(
    driver: DriverStats, mesh: MeshStats, upstream: UpstreamCounters
) -> Iterator[Metric]:
    outcomes = CounterMetricFamily(
        "rootwalk_upstream_queries",
        "Upstream queries by outcome: reply kinds (answer, referral, nxdomain, nodata, "
        "yxdomain, cname, lame, edns_unsupported), error rcodes (rcode_SERVFAIL, rcode_REFUSED...) "
        "and failures (timeout, network_error, malformed, prohibited, local_address).",
        labels=["outcome"],
    )
    for outcome, count in mesh.upstream.items():
        outcomes.add_metric([outcome.replace(" ", "_")], count)
    yield outcomes
    yield CounterMetricFamily(
        "rootwalk_upstream_tcp_fallbacks",
        "Upstream replies that came truncated over UDP and were asked again over TCP.",
        value=upstream.tcp_fallbacks,
    )
    yield CounterMetricFamily(
        "rootwalk_upstream_mismatched_replies",
        "Datagrams on an upstream query's socket with the wrong ID or question (RFC 5452).",
        value=upstream.mismatched,
    )
    yield CounterMetricFamily(
        "rootwalk_upstream_case_tcp_switches",
        "Upstream questions asked again over TCP because a UDP reply changed the letter case "
        "of the question name (0x20 on).",
        value=upstream.case_tcp_switches,
    )
    yield CounterMetricFamily(
        "rootwalk_upstream_late_replies",
        "Upstream replies that came after their try had timed out, on its socket kept open.",
        value=upstream.late_replies,
    )
    yield CounterMetricFamily(
        "rootwalk_outbound_refused",
        "Upstream queries not sent: the destination is outside the outbound allow-list.",
        value=upstream.prohibited,
    )
    yield CounterMetricFamily(
        "rootwalk_outbound_local_skipped",
        "Upstream queries not sent: a name server's local address (127.0.0.0/8, ::1, "
        "0.0.0.0/8, ::) that the outbound allow-list does not name.",
        value=upstream.local_skipped,
    )
    rtt = HistogramMetricFamily("rootwalk_upstream_rtt_seconds", "Upstream round-trip time.")
    rtt.add_metric([], driver.upstream_rtt.cumulative(), driver.upstream_rtt.sum)
    yield rtt
    yield GaugeMetricFamily(
        "rootwalk_inflight_resolutions",
        "Resolutions in flight (sub-resolutions included).",
        value=mesh.in_flight,
    )
    yield CounterMetricFamily(
        "rootwalk_merged_queries",
        "Questions that joined a resolution already in flight instead of starting one.",
        value=mesh.merged,
    )
    yield CounterMetricFamily(
        "rootwalk_resolutions_started",
        "Resolutions started for client questions (merged ones and sub-questions are "
        "counted apart).",
        value=mesh.started,
    )
    yield CounterMetricFamily(
        "rootwalk_subqueries",
        "Sub-questions asked: addresses of name servers without glue.",
        value=mesh.subqueries,
    )
    yield CounterMetricFamily(
        "rootwalk_dependency_cycles",
        "Sub-questions that would have waited on themselves (a name server needed to resolve "
        "its own address), failed at once.",
        value=mesh.cycles,
    )
    yield from _dnssec_metrics(mesh)


def _dnssec_metrics(mesh: MeshStats) -> Iterator[Metric]:
    states = CounterMetricFamily(
        "rootwalk_dnssec_answers",
        "Validated answers (before the answer cache) by DNSSEC state: secure, insecure, bogus.",
        labels=["state"],
    )
    for state in ("secure", "insecure", "bogus"):
        states.add_metric([state], mesh.dnssec_states.get(state, 0))
    yield states
    reasons = CounterMetricFamily(
        "rootwalk_dnssec_bogus",
        "Bogus answers by reason: the Extended DNS Error they carried (RFC 8914).",
        labels=["reason"],
    )
    for reason, count in sorted(mesh.dnssec_bogus.items()):
        reasons.add_metric([reason.lower()], count)
    yield reasons
    synthesised = CounterMetricFamily(
        "rootwalk_dnssec_synthesised",
        "Negative answers synthesised from cached secure NSEC records without asking the "
        "authority (aggressive use, RFC 8198), by kind: nxdomain, nodata.",
        labels=["kind"],
    )
    for kind in ("nxdomain", "nodata"):
        synthesised.add_metric([kind], mesh.dnssec_synthesised.get(kind, 0))
    yield synthesised


class MetricsExporter:
    """Serves ``/metrics`` from the collector's own registry on a background thread."""

    def __init__(self, service: StatsSources, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RootwalkCollector(service))
        self.host = host
        self.port = port
        self._server: Any = None

    def start(self) -> None:
        self._server, _thread = start_http_server(self.port, self.host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
