"""Zone cuts: the zone we are asking about and the servers that serve it (RFC 1034 §4.2.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from resolver.names import NameKey, key_of_wire
from resolver.records import WireRRset


@dataclass(slots=True)
class ZoneCut:
    """A delegation point: the zone's name, its name servers and what we know of their
    addresses. A name server without addresses is glueless until a sub-resolution finds them.
    """

    zone: dns.name.Name
    nameservers: dict[NameKey, list[str]] = field(default_factory=dict)
    """Each name server's name (its key) and its known addresses."""
    fallback: dict[NameKey, list[str]] = field(default_factory=dict)
    """Addresses to try when those above fail: the parent's glue where the child's own data
    disagrees, and out-of-bailiwick glue when ``harden_glue`` is off."""

    def addresses(self) -> list[str]:
        """Every known server address, in name-server order, without repeats."""
        seen: list[str] = []
        for addresses in self.nameservers.values():
            for address in addresses:
                if address not in seen:
                    seen.append(address)
        return seen

    def fallback_addresses(self) -> list[str]:
        """The last-resort addresses that are not among :meth:`addresses`."""
        primary = set(self.addresses())
        seen: list[str] = []
        for addresses in self.fallback.values():
            for address in addresses:
                if address not in primary and address not in seen:
                    seen.append(address)
        return seen

    def glueless(self) -> list[NameKey]:
        """Name servers whose addresses we do not know."""
        return [ns for ns, addresses in self.nameservers.items() if not addresses]

    def copy(self) -> ZoneCut:
        return ZoneCut(
            self.zone,
            {ns: list(a) for ns, a in self.nameservers.items()},
            {ns: list(a) for ns, a in self.fallback.items()},
        )


def addresses_of(rrsets: list[WireRRset], owner_key: NameKey) -> list[str]:
    """The A and AAAA addresses that ``rrsets`` hold for the owner ``owner_key`` (RFC 1035
    §3.4.1)."""
    found: list[str] = []
    for rrset in rrsets:
        if rrset.owner_key == owner_key and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            for address in rrset.addresses():
                if address not in found:
                    found.append(address)
    return found


def cut_from_ns(ns_rrset: WireRRset, address_rrsets: list[WireRRset]) -> ZoneCut:
    """A zone cut from an NS RRset and the address records (glue) that came with it."""
    nameservers: dict[NameKey, list[str]] = {}
    for rdata in ns_rrset.rdatas:
        target = key_of_wire(rdata)
        nameservers[target] = addresses_of(address_rrsets, target)
    return ZoneCut(ns_rrset.name, nameservers)
