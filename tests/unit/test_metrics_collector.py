"""The metrics collector reads only each part's ``stats()`` view (``StatsSources``): given
those views alone, it produces every metric family, summing hits and slow-path replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from resolver.cache.answer import AnswerCacheCounters, AnswerCacheStats
from resolver.cache.lru import CacheSize
from resolver.driver import DriverStats
from resolver.frontend import FrontendStats
from resolver.histogram import Histogram
from resolver.mesh import MeshStats
from resolver.metrics import RootwalkCollector
from resolver.transport.upstream import UpstreamCounters

A = b"\x00\x01"


@dataclass
class View:
    """A part seen only through its stats view."""

    value: object

    def stats(self) -> object:
        return self.value

    def size(self) -> object:
        return self.value


@dataclass
class Caches:
    rrsets: View = field(default_factory=lambda: View(CacheSize(5, 500, 1)))
    negative: View = field(default_factory=lambda: View(CacheSize(2, 200, 0)))


@dataclass
class Sources:
    frontend: View | None
    driver: View | None
    mesh: View | None
    upstream: View | None
    answers: View
    caches: Caches = field(default_factory=Caches)


def sources(started: bool = True) -> Sources:
    latency = Histogram()
    latency.observe(0.02)
    frontend = FrontendStats({("udp", A, 0): 2, ("tcp", A, -1): 1}, {"refused": 4}, latency.view())
    answers = AnswerCacheStats(
        AnswerCacheCounters(hits=3, misses=2, prefetches=1),
        {("udp", A, 0): 3, ("tcp", A, 3): 0},
        CacheSize(7, 700, 2),
    )
    return Sources(
        View(frontend) if started else None,
        View(DriverStats(Histogram().view(), 3)),
        View(
            MeshStats(
                in_flight=1,
                merged=6,
                upstream={"answer": 9, "rcode SERVFAIL": 1},
                started=11,
                subqueries=4,
                cycles=2,
                bugs=7,
                dnssec_states={"secure": 4, "bogus": 2},
                dnssec_bogus={"SIGNATURE_EXPIRED": 2},
                dnssec_synthesised={"nxdomain": 5},
            )
        ),
        View(UpstreamCounters(tcp_fallbacks=2, late_replies=1, case_tcp_switches=1)),
        View(answers),
    )


def samples(source: Sources) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in RootwalkCollector(source).collect():  # type: ignore[arg-type]
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_collector_reads_the_stats_views_alone() -> None:
    got = samples(sources())
    udp_a_noerror = (("qtype", "A"), ("rcode", "NOERROR"), ("transport", "udp"))
    assert got["rootwalk_client_queries_total", udp_a_noerror] == 5  # 2 slow + 3 hits
    tcp_dropped = (("qtype", "A"), ("rcode", "dropped"), ("transport", "tcp"))
    assert got["rootwalk_client_queries_total", tcp_dropped] == 1
    assert got["rootwalk_client_rejected_total", (("reason", "refused"),)] == 4
    assert got["rootwalk_client_answer_seconds_bucket", (("le", "0.0001"),)] == 3  # the hits
    assert got["rootwalk_client_answer_seconds_count", ()] == 4
    assert got["rootwalk_cache_hits_total", ()] == 3
    assert got["rootwalk_cache_prefetches_total", ()] == 1
    assert got["rootwalk_cache_entries", (("cache", "answer"),)] == 7
    assert got["rootwalk_cache_bytes", (("cache", "rrset"),)] == 500
    assert got["rootwalk_cache_evictions_total", (("cache", "answer"),)] == 2
    assert got["rootwalk_upstream_queries_total", (("outcome", "rcode_SERVFAIL"),)] == 1
    assert got["rootwalk_upstream_tcp_fallbacks_total", ()] == 2
    assert got["rootwalk_upstream_late_replies_total", ()] == 1
    assert got["rootwalk_upstream_case_tcp_switches_total", ()] == 1
    assert got["rootwalk_inflight_resolutions", ()] == 1
    assert got["rootwalk_merged_queries_total", ()] == 6
    assert got["rootwalk_resolutions_started_total", ()] == 11
    assert got["rootwalk_subqueries_total", ()] == 4
    assert got["rootwalk_dependency_cycles_total", ()] == 2
    assert got["rootwalk_internal_errors_total", (("part", "driver"),)] == 3
    assert got["rootwalk_internal_errors_total", (("part", "frontend"),)] == 0
    assert got["rootwalk_internal_errors_total", (("part", "mesh"),)] == 7
    assert got["rootwalk_dnssec_answers_total", (("state", "secure"),)] == 4
    assert got["rootwalk_dnssec_answers_total", (("state", "insecure"),)] == 0
    assert got["rootwalk_dnssec_bogus_total", (("reason", "signature_expired"),)] == 2
    assert got["rootwalk_dnssec_synthesised_total", (("kind", "nxdomain"),)] == 5
    assert got["rootwalk_dnssec_synthesised_total", (("kind", "nodata"),)] == 0


def test_nothing_is_collected_before_the_resolver_starts() -> None:
    assert samples(sources(started=False)) == {}
