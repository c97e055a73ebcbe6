"""Which name server address lookup a zone cut needs next (RFC 1034 §5.3.3 step 2)."""

from __future__ import annotations

import dns.name
import dns.rdatatype

from resolver.core.targets import TargetLookups, inside_without_glue, is_ipv4_only, next_lookups
from resolver.model import ZoneCut
from resolver.names import name_key

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA


def key(text: str) -> bytes:
    return name_key(dns.name.from_text(text))


def cut(**nameservers: list[str]) -> ZoneCut:
    """zone.test. with name servers given as keyword names (``_`` for ``.``)."""
    return ZoneCut(
        dns.name.from_text("zone.test."),
        {key(name.replace("_", ".") + "."): list(a) for name, a in nameservers.items()},
    )


def test_a_is_asked_first_then_aaaa_for_servers_without_any_address() -> None:
    zone_cut = cut(ns_other_test=[], ns2_other_test=["192.0.2.1"])
    lookups = TargetLookups()
    assert next_lookups(zone_cut, lookups) == ([key("ns.other.test.")], A)
    lookups.asked.add((key("ns.other.test."), A))
    assert next_lookups(zone_cut, lookups) == ([key("ns.other.test.")], AAAA)
    lookups.asked.add((key("ns.other.test."), AAAA))
    # only then AAAA for the server known by an IPv4 address
    assert next_lookups(zone_cut, lookups) == ([key("ns2.other.test.")], AAAA)
    lookups.asked.add((key("ns2.other.test."), AAAA))
    assert next_lookups(zone_cut, lookups) is None


def test_spent_names_and_names_inside_the_zone_are_not_looked_up() -> None:
    zone_cut = cut(ns_other_test=[], ns1_zone_test=[])
    lookups = TargetLookups(spent={key("ns.other.test.")})
    assert next_lookups(zone_cut, lookups) is None
    assert inside_without_glue(zone_cut) == [key("ns1.zone.test.")]


def test_a_server_with_an_ipv6_address_needs_no_aaaa_lookup() -> None:
    assert next_lookups(cut(ns_other_test=["2001:db8::1"]), TargetLookups()) is None
    assert is_ipv4_only(["192.0.2.1"]) and not is_ipv4_only([])
    assert not is_ipv4_only(["192.0.2.1", "2001:db8::1"])
