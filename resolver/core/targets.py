"""Name server addresses: which address lookup a zone cut needs next (RFC 1034 §5.3.3 step 2).

A name server without glue is reached by resolving its name, as a separate resolution. We
ask for A first and for AAAA when A gives no address, and ask AAAA of a server known only by
IPv4 addresses once those have all failed. Unbound (``query_for_targets`` with IPv6 on) asks
A and AAAA of every glueless server at once; our resolution asks one thing at a time, so it
asks what is most likely to reach a server first and the rest only when needed: a server
with an IPv4 address costs one lookup instead of two, and a server with only IPv6
addresses (or only working ones) is still reached.

A lookup that ends in NXDOMAIN spends the name for both types (RFC 8020: no records of any
type exist there); so does one that met a dependency cycle (the other type would meet the
same cycle). A name server inside the zone it serves has no address but its glue (RFC 1034
§4.2.1): without glue, its address can only come from the zone it would serve, a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.rdatatype

from resolver.model import ZoneCut
from resolver.names import NameKey, is_at_or_below

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA


@dataclass(slots=True)
class TargetLookups:
    """The address lookups one zone cut has made so far."""

    asked: set[tuple[NameKey, int]] = field(default_factory=set)
    """(name server, A or AAAA) already looked up."""
    spent: set[NameKey] = field(default_factory=set)
    """Name servers not to look up again: NXDOMAIN, or a dependency cycle."""
    cycle_via: str | None = None
    """The name server through which a dependency cycle was met, if one was."""


def is_ipv4_only(addresses: list[str]) -> bool:
    """True when ``addresses`` holds addresses and none is IPv6."""
    return bool(addresses) and not any(":" in address for address in addresses)


def next_lookups(cut: ZoneCut, lookups: TargetLookups) -> tuple[list[NameKey], int] | None:
    """The name servers whose address of one type to look up next, and that type: A for
    servers with no address, then AAAA for them, then AAAA for servers known only by IPv4
    addresses (asked only once every known address is spent). None when nothing is left."""
    zone_key = cut.zone_key
    outside = [
        ns for ns in cut.nameservers if ns not in lookups.spent and not is_at_or_below(ns, zone_key)
    ]
    glueless = [ns for ns in outside if not cut.nameservers[ns]]
    ipv4_only = [ns for ns in outside if is_ipv4_only(cut.nameservers[ns])]
    for qtype, names in ((A, glueless), (AAAA, glueless), (AAAA, ipv4_only)):
        pending = [ns for ns in names if (ns, qtype) not in lookups.asked]
        if pending:
            return pending, qtype
    return None


def inside_without_glue(cut: ZoneCut) -> list[NameKey]:
    """Name servers inside the zone they serve that have no address: only glue could have
    reached them (RFC 1034 §4.2.1)."""
    zone_key = cut.zone_key
    return [ns for ns in cut.glueless() if is_at_or_below(ns, zone_key)]
