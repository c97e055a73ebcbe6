"""Prefetch (Unbound's ``prefetch``) and serve-stale (RFC 8767) over real sockets, with an
injected clock and a lab that can be stopped."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.lab.description import Faults
from tests.clock import FakeClock
from tests.helpers import lab_with
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port

SERVER = "127.0.0.1"


def ask(port: int, qname: str = "www.example.lab.", **kwargs: object) -> dns.message.Message:
    query = dns.message.make_query(qname, "A", **kwargs)  # type: ignore[arg-type]
    return dns.query.udp(query, SERVER, timeout=5, port=port)


def example_queries(stack: Stack) -> int:
    return sum(stack.lab_server.authority(a).queries_received for a in ("127.53.3.1", "127.53.3.2"))


def test_an_entry_asked_for_late_in_its_life_is_refreshed_in_the_background(stack: Stack) -> None:
    clock = FakeClock()
    port = free_port()
    running = Stack(lab_settings(port), clock=clock).start()
    try:
        assert ask(port).answer[0].ttl == 300
        asked = example_queries(stack)
        clock.now += 250  # 50 s left: not yet in the last tenth
        assert ask(port).answer[0].ttl == 50
        running.run(running.service.driver.settle())  # type: ignore[union-attr]
        assert example_queries(stack) == asked
        clock.now += 25  # 25 s left: a hit now triggers a prefetch
        assert ask(port).answer[0].ttl == 25
        running.run(running.service.driver.settle())  # type: ignore[union-attr]
        assert example_queries(stack) == asked + 1
        assert running.service.answers.counters.prefetches == 1
        clock.now += 30  # the old entry would have expired; the prefetched one answers
        hits = running.service.answers.counters.hits
        assert ask(port).answer[0].ttl == 270
        assert running.service.answers.counters.hits == hits + 1
        assert example_queries(stack) == asked + 1
    finally:
        running.stop()


@pytest.fixture
def stale_stack() -> Iterator[tuple[Stack, FakeClock]]:
    """Its own lab (so it can go dead) and serve-stale on."""
    clock = FakeClock()
    port, stale_lab_port = free_port(), lab_port()
    settings = lab_settings(
        port,
        outbound_port=stale_lab_port,
        serve_stale=True,
        serve_stale_client_timeout_s=0.1,
        upstream_timeout_s=0.2,
        client_deadline_s=1.0,
    )
    running = Stack(settings, lab_with(), stale_lab_port, clock=clock).start()
    yield running, clock
    running.stop()


def test_stale_answers_when_the_servers_are_gone(stale_stack: tuple[Stack, FakeClock]) -> None:
    running, clock = stale_stack
    port = running.port
    fresh = ask(port, use_edns=0)
    assert fresh.answer[0][0].to_text() == "192.0.2.10"
    running.run(running.lab_server.close())  # every lab server goes dead
    clock.now += 400  # expired in every cache
    stale = ask(port, use_edns=0)
    assert stale.rcode() == dns.rcode.NOERROR
    assert stale.answer[0][0].to_text() == "192.0.2.10"
    assert stale.answer[0].ttl == 30
    (ede,) = [o for o in stale.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.code == dns.edns.EDECode.STALE_ANSWER
    running.run(running.service.driver.settle())  # type: ignore[union-attr]  # refresh failed
    upstream = running.service.upstream
    assert upstream is not None
    sent = upstream.counters.sent_udp
    clock.now += 10  # within 30 s of the failed refresh: stale at once, no new attempt
    again = ask(port, use_edns=0)
    assert again.answer[0].ttl == 30
    assert upstream.counters.sent_udp == sent
    assert running.service.answers.counters.stale_answers == 2


def test_a_slow_refresh_gives_the_stale_answer_when_the_wait_passes() -> None:
    """RFC 8767 §5: the servers are silent, so the refresh would take the client deadline
    (1.5 s); the stale answer goes out when ``serve_stale_client_timeout_s`` (0.1 s) passes,
    and the refresh goes on to its end (then the next refresh waits 30 s, §4)."""
    clock = FakeClock()
    port, silent_lab_port = free_port(), lab_port()
    settings = lab_settings(
        port,
        outbound_port=silent_lab_port,
        serve_stale=True,
        serve_stale_client_timeout_s=0.1,
        upstream_timeout_s=1.0,
        client_deadline_s=1.5,
    )
    running = Stack(settings, lab_with(), silent_lab_port, clock=clock).start()
    try:
        assert ask(port, use_edns=0).answer[0][0].to_text() == "192.0.2.10"
        for address in ("127.53.3.1", "127.53.3.2"):  # example.lab.'s servers go silent
            authority = running.lab_server.authority(address)
            authority.spec = dataclasses.replace(authority.spec, faults=Faults(drop=1.0))
        clock.now += 400
        started = time.monotonic()
        stale = ask(port, use_edns=0)
        elapsed = time.monotonic() - started
        assert stale.answer[0].ttl == 30
        (ede,) = [o for o in stale.options if isinstance(o, dns.edns.EDEOption)]
        assert ede.code == dns.edns.EDECode.STALE_ANSWER
        assert elapsed < 0.9, elapsed  # the serve-stale wait, not the deadline nor a failure
        answers = running.service.answers
        running.run(running.service.driver.settle())  # type: ignore[union-attr]
        assert answers.counters.stale_answers == 1
        upstream = running.service.upstream
        assert upstream is not None
        sent = upstream.counters.sent_udp
        assert ask(port, use_edns=0).answer[0].ttl == 30  # the failed refresh holds retries
        assert upstream.counters.sent_udp == sent
    finally:
        running.stop()


def test_stale_data_is_not_served_past_one_day(stale_stack: tuple[Stack, FakeClock]) -> None:
    running, clock = stale_stack
    port = running.port
    ask(port)
    running.run(running.lab_server.close())
    clock.now += 300 + 86400 + 1
    assert ask(port).rcode() == dns.rcode.SERVFAIL


def test_caches_survive_a_restart_with_ttls_honoured(stack: Stack, tmp_path: object) -> None:
    from pathlib import Path  # noqa: PLC0415

    cache_file = Path(str(tmp_path)) / "cache.json"
    port = free_port()
    clock = FakeClock()
    first = Stack(lab_settings(port, cache_file=cache_file), clock=clock).start()
    try:
        assert ask(port).answer[0].ttl == 300
        assert ask(port, "nx.example.lab.").rcode() == dns.rcode.NXDOMAIN
    finally:
        first.stop()
    assert cache_file.exists()
    asked = example_queries(stack)
    clock.now += 100  # down for 100 s
    second = Stack(lab_settings(port, cache_file=cache_file), clock=clock).start()
    try:
        assert ask(port).answer[0].ttl == 200  # from the loaded answer cache
        alias = ask(port, "alias.example.lab.")  # the delegation came back too: no root walk
        assert alias.answer[-1][0].to_text() == "192.0.2.20"
        assert example_queries(stack) == asked + 1
    finally:
        second.stop()
    clock.now += 1000  # the zone's data (TTL 300) expired meanwhile; the TLD delegation did not
    third = Stack(lab_settings(port, cache_file=cache_file), clock=clock).start()
    try:
        rrsets = third.service.caches.rrsets
        assert len(third.service.answers) == 0
        assert (
            rrsets.get(dns.name.from_text("www.example.lab."), dns.rdatatype.A, clock.now) is None
        )
        lab_ns = rrsets.get(dns.name.from_text("lab."), dns.rdatatype.NS, clock.now)
        assert lab_ns is not None
        assert lab_ns.ttl == 86400 - 1100  # 172800 clamped to the cache maximum, then aged
    finally:
        third.stop()


def test_a_damaged_cache_file_is_a_clear_error(tmp_path: object) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    cache_file = Path(str(tmp_path)) / "cache.json"
    cache_file.write_text("{not json")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "resolver",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--root-hints",
            "zones/lab/root.hints",
            "--trust-anchors",
            "zones/lab/trust-anchor.ds",
        ],
        env={"ROOTWALK_CACHE_FILE": str(cache_file), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 2
    assert f"{cache_file}: cannot load the cache" in result.stderr
