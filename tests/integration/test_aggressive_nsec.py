"""A random-subdomain burst against a signed zone over real sockets (RFC 8198, issue 12
item 5): with ``aggressive_nsec`` on, 200 never-seen names under secure.lab. (NSEC) or
nsec3.lab. (NSEC3) cost their server a handful of queries (one per span first met), each
answered NXDOMAIN with AD; with it off, every name is asked. optout.lab.'s opt-out spans
deny nothing (RFC 8198 §5.2): every name is asked."""

from __future__ import annotations

import random
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.clock import FakeClock
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.integration.test_validating_resolver import NOW
from tests.ports import free_port

SIGNED_SERVER = "127.53.25.1"  # ns1.signed.lab., serving secure.lab.
BURST = 200


def _burst_names(seed: int, zone: str = "secure.lab.", count: int = BURST) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [f"{''.join(rng.choices(letters, k=12))}.{zone}" for _ in range(count)]


@pytest.fixture(params=[True, False], ids=["aggressive", "not-aggressive"])
def resolver(request: pytest.FixtureRequest, stack: Stack) -> Iterator[tuple[Stack, int]]:
    port = free_port()
    settings = lab_settings(port, dnssec=True, aggressive_nsec=request.param)
    running = Stack(settings, clock=FakeClock(NOW)).start()
    yield running, port
    running.stop()


def test_a_random_subdomain_burst_costs_the_signed_zone_a_handful_of_queries(
    stack: Stack, resolver: tuple[Stack, int], request: pytest.FixtureRequest
) -> None:
    running, port = resolver
    aggressive = running.settings.aggressive_nsec
    authority = stack.lab_server.authority(SIGNED_SERVER)
    warm = dns.message.make_query("www.secure.lab.", "A", want_dnssec=True)
    dns.query.udp(warm, "127.0.0.1", port=port, timeout=8)  # keys fetched, zone cut known
    before = authority.queries_received
    for name in _burst_names(seed=7 if aggressive else 8):
        query = dns.message.make_query(name, "A", want_dnssec=True)
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=8)
        assert reply.rcode() == dns.rcode.NXDOMAIN, name
        assert reply.flags & dns.flags.AD, name
    asked = authority.queries_received - before
    print(f"{request.node.name}: {asked} upstream queries for {BURST} names")
    if aggressive:
        assert asked <= 6, asked  # five NSEC spans in secure.lab.
    else:
        assert asked >= BURST, asked


def _burst(port: int, names: list[str], *, secure: bool) -> None:
    for name in names:
        query = dns.message.make_query(name, "A", want_dnssec=True)
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=8)
        assert reply.rcode() == dns.rcode.NXDOMAIN, name
        assert bool(reply.flags & dns.flags.AD) is secure, name
        if secure:  # the DO client gets the proof: NSEC3 records and their RRSIGs
            types = {rrset.rdtype for rrset in reply.authority}
            assert {dns.rdatatype.NSEC3, dns.rdatatype.RRSIG} <= types, name


def test_a_burst_against_an_nsec3_zone_costs_it_a_handful_of_queries(
    stack: Stack, resolver: tuple[Stack, int], request: pytest.FixtureRequest
) -> None:
    """nsec3.lab. has 7 NSEC3 records: after at most one query per span, none."""
    running, port = resolver
    aggressive = running.settings.aggressive_nsec
    authority = stack.lab_server.authority(SIGNED_SERVER)
    warm = dns.message.make_query("www.nsec3.lab.", "A", want_dnssec=True)
    dns.query.udp(warm, "127.0.0.1", port=port, timeout=8)
    before = authority.queries_received
    _burst(port, _burst_names(9 if aggressive else 10, "nsec3.lab."), secure=True)
    asked = authority.queries_received - before
    print(f"{request.node.name}: {asked} upstream queries for {BURST} names")
    if aggressive:
        assert asked <= 8, asked
    else:
        assert asked >= BURST, asked


def test_an_opt_out_zone_is_asked_for_every_name(stack: Stack, resolver: tuple[Stack, int]) -> None:
    """optout.lab.: each NXDOMAIN is insecure (no AD) and each never-seen name is asked."""
    running, port = resolver
    if not running.settings.aggressive_nsec:
        pytest.skip("the opt-out case is about aggressive use")
    authority = stack.lab_server.authority(SIGNED_SERVER)
    warm = dns.message.make_query("www.optout.lab.", "A", want_dnssec=True)
    dns.query.udp(warm, "127.0.0.1", port=port, timeout=8)
    before = authority.queries_received
    names = _burst_names(11, "optout.lab.", count=20)
    _burst(port, names, secure=False)
    assert authority.queries_received - before >= len(names)
