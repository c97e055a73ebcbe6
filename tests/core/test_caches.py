"""The caches as the core uses them: TTLs on a fake clock, ranks, negative answers (RFC 2308,
RFC 8020), failures (RFC 9520), server facts, and cached walks."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from resolver.cache.infra import InfraCache
from resolver.cache.negative import FailureCache, NegativeCache
from resolver.cache.rrset import Rank, RRsetCache, TtlBounds
from resolver.cache.view import Caches
from resolver.records import WireRRset
from tests.core.harness import lab_responder, resolve
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
T0 = 1_000_000.0
N = dns.name.from_text


def a_rrset(name: str, address: str, ttl: int = 300) -> WireRRset:
    return WireRRset.from_rrset(dns.rrset.from_text(name, ttl, "IN", "A", address))


def soa(ttl: int = 60) -> WireRRset:
    return WireRRset.from_rrset(
        dns.rrset.from_text(
            "example.lab.", ttl, "IN", "SOA", "ns.example.lab. hm.example.lab. 1 2 3 4 60"
        )
    )


def test_ttl_counts_down_and_expires_on_a_fake_clock() -> None:
    cache = RRsetCache(1 << 20)
    assert cache.put(a_rrset("www.example.lab.", "192.0.2.10", 300), Rank.AUTH_ANSWER, T0)
    at_100 = cache.get(N("www.example.lab."), dns.rdatatype.A, T0 + 100)
    assert at_100 is not None and at_100.ttl == 200
    assert at_100[0].to_text() == "192.0.2.10"
    assert cache.get(N("WWW.Example.LAB."), dns.rdatatype.A, T0 + 299.5) is not None
    assert cache.get(N("www.example.lab."), dns.rdatatype.A, T0 + 300) is None
    assert len(cache) == 0


def test_ttl_zero_is_not_stored_unless_min_ttl_raises_it() -> None:
    assert not RRsetCache(1 << 20).put(a_rrset("zero.lab.", "192.0.2.1", 0), Rank.ANSWER, T0)
    cache = RRsetCache(1 << 20, TtlBounds(min_ttl=10, max_ttl=3600))
    assert cache.put(a_rrset("zero.lab.", "192.0.2.1", 0), Rank.AUTH_ANSWER, T0)
    zero = cache.get(N("zero.lab."), dns.rdatatype.A, T0 + 9)
    assert zero is not None and zero.ttl == 0  # cached for min_ttl, shown as the authority said
    assert cache.get(N("zero.lab."), dns.rdatatype.A, T0 + 10) is None


def test_ttls_are_clamped_and_clients_never_see_more_than_the_authority_gave() -> None:
    cache = RRsetCache(1 << 20, TtlBounds(min_ttl=10, max_ttl=3600))
    cache.put(a_rrset("short.lab.", "192.0.2.1", 4), Rank.AUTH_ANSWER, T0)
    cache.put(a_rrset("long.lab.", "192.0.2.1", 10**6), Rank.AUTH_ANSWER, T0)
    short_at = [cache.get(N("short.lab."), dns.rdatatype.A, T0 + age) for age in (0, 7, 9)]
    assert [r.ttl if r else None for r in short_at] == [4, 3, 1]  # min(authority's, what is left)
    assert cache.get(N("short.lab."), dns.rdatatype.A, T0 + 10) is None
    long = cache.get(N("long.lab."), dns.rdatatype.A, T0)
    assert long is not None and long.ttl == 3600


def test_a_lower_rank_never_replaces_a_live_higher_one() -> None:
    cache = RRsetCache(1 << 20)
    cache.put(a_rrset("ns1.example.lab.", "127.53.3.1"), Rank.AUTH_ANSWER, T0)
    assert not cache.put(a_rrset("ns1.example.lab.", "203.0.113.9"), Rank.ADDITIONAL, T0 + 1)
    kept = cache.get(N("ns1.example.lab."), dns.rdatatype.A, T0 + 1)
    assert kept is not None and kept[0].to_text() == "127.53.3.1"
    # an equal or higher rank replaces; a lower one replaces once the old one expired
    assert cache.put(a_rrset("ns1.example.lab.", "127.53.3.9"), Rank.AUTH_ANSWER, T0 + 2)
    assert cache.put(a_rrset("ns1.example.lab.", "127.53.3.7"), Rank.ADDITIONAL, T0 + 400)


def test_glue_is_upgraded_by_an_authoritative_answer() -> None:
    cache = RRsetCache(1 << 20)
    cache.put(a_rrset("ns1.example.lab.", "127.53.3.1"), Rank.ADDITIONAL, T0)
    assert cache.put(a_rrset("ns1.example.lab.", "127.53.3.2"), Rank.AUTH_ANSWER, T0)


def test_negative_nxdomain_nodata_and_countdown() -> None:
    cache = NegativeCache(1 << 20)
    cache.put(N("nx.example.lab."), dns.rdatatype.A, dns.rcode.NXDOMAIN, soa(60), T0)
    cache.put(N("www.example.lab."), dns.rdatatype.MX, dns.rcode.NOERROR, soa(60), T0)
    nx = cache.get(N("nx.example.lab."), dns.rdatatype.AAAA, T0 + 20)  # NXDOMAIN: any type
    assert nx is not None and nx.rcode == dns.rcode.NXDOMAIN and nx.soa.ttl == 40
    nodata = cache.get(N("www.example.lab."), dns.rdatatype.MX, T0)
    assert nodata is not None and nodata.rcode == dns.rcode.NOERROR
    assert cache.get(N("www.example.lab."), dns.rdatatype.A, T0) is None  # NODATA is per type
    assert cache.get(N("nx.example.lab."), dns.rdatatype.A, T0 + 60) is None


def test_negative_ttl_is_capped() -> None:
    cache = NegativeCache(1 << 20, max_ttl=30)
    cache.put(N("nx.example.lab."), dns.rdatatype.A, dns.rcode.NXDOMAIN, soa(600), T0)
    assert cache.get(N("nx.example.lab."), dns.rdatatype.A, T0 + 29) is not None
    assert cache.get(N("nx.example.lab."), dns.rdatatype.A, T0 + 30) is None


def test_below_nxdomain_only_when_secure_rfc8020() -> None:
    cache = NegativeCache(1 << 20)
    cache.put(N("insecure.example.lab."), dns.rdatatype.A, dns.rcode.NXDOMAIN, soa(), T0)
    assert cache.get(N("www.insecure.example.lab."), dns.rdatatype.A, T0) is None
    cache.put(N("secure.example.lab."), dns.rdatatype.A, dns.rcode.NXDOMAIN, soa(), T0, secure=True)
    below = cache.get(N("a.b.secure.example.lab."), dns.rdatatype.A, T0)
    assert below is not None and below.rcode == dns.rcode.NXDOMAIN
    off = NegativeCache(1 << 20, harden_below_nxdomain=False)
    off.put(N("secure.example.lab."), dns.rdatatype.A, dns.rcode.NXDOMAIN, soa(), T0, secure=True)
    assert off.get(N("a.secure.example.lab."), dns.rdatatype.A, T0) is None


def test_failures_back_off_from_1_s_doubling_to_5_minutes() -> None:
    failures = FailureCache()
    name = N("www.lame.lab.")
    windows = []
    now = T0
    for _ in range(12):
        failures.record(name, dns.rdatatype.A, "lame.lab.", "all servers REFUSED", now)
        assert failures.get(name, dns.rdatatype.A, now) == "all servers REFUSED"
        window = 0.0
        while failures.get(name, dns.rdatatype.A, now + window) is not None:
            window += 0.5
        windows.append(window)
        now += window
    assert windows[0] == 1.0
    assert windows[1] == 2.0
    assert windows[-1] == 300.0


def test_infra_backs_off_a_server_that_times_out_and_learns_rtt() -> None:
    infra = InfraCache()
    infra.record_rtt("127.53.7.2", 0.002, T0)
    assert infra.selection_rtt_ms("127.53.7.2", T0) == 2.0
    infra.record_timeout("127.53.7.1", 1.0, T0)
    assert infra.selection_rtt_ms("127.53.7.1", T0 + 0.5) > 100_000
    assert infra.selection_rtt_ms("127.53.7.1", T0 + 1.5) < 1000  # probed again later
    infra.record_timeout("127.53.7.1", 1.0, T0 + 2)
    facts = infra.peek("127.53.7.1")
    assert facts is not None and facts.backoff_ms == 2000
    assert infra.timeout_s("127.53.7.2", 1.0, T0) == 0.05  # RTO floor once RTT is known
    assert infra.timeout_s("127.53.9.9", 1.0, T0) == 1.0


def test_the_wait_doubles_after_each_timeout_until_a_reply() -> None:
    """RFC 6298 §5.5: a server whose replies slowed past its RTO gets longer waits."""
    infra = InfraCache()
    for _ in range(8):
        infra.record_rtt("127.53.9.1", 0.055, T0)  # a steady 55 ms: the RTO nears it
    first = infra.timeout_s("127.53.9.1", 1.0, T0)
    assert 0.055 <= first < 0.08
    infra.record_timeout("127.53.9.1", first, T0)
    second = infra.timeout_s("127.53.9.1", 1.0, T0)
    assert second == 2 * first
    infra.record_timeout("127.53.9.1", second, T0)
    assert infra.timeout_s("127.53.9.1", 1.0, T0) == 4 * second
    infra.record_timeout("127.53.9.1", 4 * second, T0)
    assert infra.timeout_s("127.53.9.1", 1.0, T0) == 1.0  # never past the configured wait
    infra.record_rtt("127.53.9.1", 0.055, T0)
    assert infra.timeout_s("127.53.9.1", 1.0, T0) < 0.08  # a reply: back to the RTO


# --- cached walks ----------------------------------------------------------------------------


def test_second_name_in_a_zone_starts_at_the_cached_cut() -> None:
    caches = Caches()
    resolve("www.example.lab.", "A", LAB, caches=caches, now=T0)
    walk = resolve("alias.example.lab.", "A", LAB, caches=caches, now=T0 + 1)
    assert walk.sent[0].zone == N("example.lab.")
    again = resolve("www.example.lab.", "A", LAB, caches=caches, now=T0 + 2)
    assert again.sent == []
    assert 297 <= again.result.answer[0].ttl < 300  # stored about 2 s earlier


def test_negative_answers_come_from_the_cache() -> None:
    caches = Caches()
    resolve("nx.example.lab.", "A", LAB, caches=caches, now=T0)
    walk = resolve("nx.example.lab.", "A", LAB, caches=caches, now=T0 + 10)
    assert walk.sent == []
    assert walk.result.rcode == dns.rcode.NXDOMAIN
    assert 49 <= walk.result.authority[0].ttl <= 51  # 60 s negative TTL, 10 s later


def test_cached_cname_chain_is_followed_without_asking() -> None:
    caches = Caches()
    resolve("chain.example.lab.", "A", LAB, caches=caches, now=T0)
    walk = resolve("chain.example.lab.", "A", LAB, caches=caches, now=T0 + 5)
    assert walk.sent == []
    assert [r.rdtype for r in walk.result.answer] == [dns.rdatatype.CNAME] * 3 + [dns.rdatatype.A]


def test_glueless_server_address_is_remembered() -> None:
    caches = Caches()
    resolve("www.glueless.lab.", "A", LAB, caches=caches, now=T0)
    caches.rrsets.flush(N("www.glueless.lab."))
    walk = resolve("www.glueless.lab.", "A", LAB, caches=caches, now=T0 + 1)
    assert [s.server for s in walk.sent] == ["127.53.6.1"]


def test_the_dead_server_is_not_waited_on_again() -> None:
    caches = Caches()
    waited = 0
    for i in range(10):
        caches.rrsets.flush(N("www.deadns.lab."))
        walk = resolve("www.deadns.lab.", "A", LAB, caches=caches, seed=i, now=T0 + i * 0.1)
        assert walk.result.answer[0][0].to_text() == "192.0.2.40"
        waited += walk.by_server["127.53.7.1"]
    assert waited <= 1


def test_out_of_bailiwick_glue_is_never_cached() -> None:
    caches = Caches()
    resolve("www.example.lab.", "A", LAB, caches=caches, now=T0)
    assert caches.rrsets.get(N("ns1.nic.lab."), dns.rdatatype.A, T0) is not None  # root's glue
    assert caches.rrsets.get(N("www.other.example."), dns.rdatatype.A, T0) is None


def test_any_is_relayed_not_assembled_from_the_cache() -> None:
    caches = Caches()
    resolve("www.example.lab.", "A", LAB, caches=caches, now=T0)
    walk = resolve("www.example.lab.", "ANY", LAB, caches=caches, now=T0 + 1)
    assert len(walk.sent) == 1
    assert {r.rdtype for r in walk.result.answer} == {dns.rdatatype.A, dns.rdatatype.AAAA}
