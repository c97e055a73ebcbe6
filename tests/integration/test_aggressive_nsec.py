"""A random-subdomain burst against a signed zone over real sockets (RFC 8198, issue 12
item 5): with ``aggressive_nsec`` on, 200 never-seen names under secure.lab. cost its
server a handful of queries (one per NSEC span first met), each answered NXDOMAIN with AD;
with it off, every name is asked."""

from __future__ import annotations

import random
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.clock import FakeClock
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.integration.test_validating_resolver import NOW
from tests.ports import free_port

SIGNED_SERVER = "127.53.25.1"  # ns1.signed.lab., serving secure.lab.
BURST = 200


def _burst_names(seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [f"{''.join(rng.choices(letters, k=12))}.secure.lab." for _ in range(BURST)]


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
