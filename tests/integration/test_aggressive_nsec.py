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


def _asked(stack: Stack, port: int, zone: str, names: list[str], *, secure: bool) -> int:
    """Queries ``zone``'s server received for ``names`` (each NXDOMAIN, AD when ``secure``,
    with the NSEC or NSEC3 proof and RRSIGs for this DO client), after a warm-up that
    fetched the keys and learnt the zone cut."""
    authority = stack.lab_server.authority(SIGNED_SERVER)
    warm = dns.message.make_query(f"www.{zone}", "A", want_dnssec=True)
    dns.query.udp(warm, "127.0.0.1", port=port, timeout=8)
    before = authority.queries_received
    for name in names:
        query = dns.message.make_query(name, "A", want_dnssec=True)
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=8)
        assert reply.rcode() == dns.rcode.NXDOMAIN, name
        assert bool(reply.flags & dns.flags.AD) is secure, name
        types = {rrset.rdtype for rrset in reply.authority}
        if secure:
            assert types & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}, name
            assert dns.rdatatype.RRSIG in types, name
    return authority.queries_received - before


@pytest.mark.parametrize(
    ("zone", "most"),
    [("secure.lab.", 6), ("nsec3.lab.", 8)],
    ids=["nsec", "nsec3"],
)
def test_a_random_subdomain_burst_costs_the_signed_zone_a_handful_of_queries(
    stack: Stack, resolver: tuple[Stack, int], request: pytest.FixtureRequest, zone: str, most: int
) -> None:
    """secure.lab. has five NSEC spans, nsec3.lab. seven NSEC3 spans: with aggressive use,
    at most one query per span first met, then none; without it, one per name."""
    running, port = resolver
    aggressive = running.settings.aggressive_nsec
    names = _burst_names(7 if aggressive else 8, zone)
    asked = _asked(stack, port, zone, names, secure=True)
    print(f"{request.node.name}: {asked} upstream queries for {BURST} names")
    if aggressive:
        assert asked <= most, asked
    else:
        assert asked >= BURST, asked


def test_an_opt_out_zone_is_asked_for_every_name(stack: Stack, resolver: tuple[Stack, int]) -> None:
    """optout.lab.: each NXDOMAIN is insecure (no AD) and each never-seen name is asked, with
    aggressive use as without it (an opt-out span denies nothing)."""
    _, port = resolver
    names = _burst_names(11, "optout.lab.", count=20)
    assert _asked(stack, port, "optout.lab.", names, secure=False) >= len(names)
