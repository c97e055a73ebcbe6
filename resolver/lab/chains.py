"""NSEC and NSEC3 chains for the lab's signer (:mod:`resolver.lab.sign`): RFC 4034 §4 and
RFC 5155 §7.1, with opt-out (RFC 5155 §6). Salt empty, as RFC 9276 §3.1 asks."""

from __future__ import annotations

from collections.abc import Iterator

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

NSEC3_SALT = b""


def authoritative_names(zone: dns.zone.Zone) -> Iterator[tuple[dns.name.Name, bool]]:
    """(name, is a delegation point) for each name the zone is authoritative for: glue
    below a cut is not (RFC 4035 §2.2)."""
    origin = zone.origin
    assert origin is not None
    cuts = {
        name
        for name, node in zone.nodes.items()
        if name != origin and node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)
    }
    for name in zone.nodes:
        if any(name.is_subdomain(cut) and name != cut for cut in cuts):
            continue
        yield name, name in cuts


def _types(zone: dns.zone.Zone, name: dns.name.Name, cut: bool) -> list[str]:
    node = zone.nodes[name]
    types = {r.rdtype for r in node.rdatasets}
    if cut:
        types &= {dns.rdatatype.NS, dns.rdatatype.DS}
    return [dns.rdatatype.to_text(t) for t in sorted(types)]


def _denial_ttl(zone: dns.zone.Zone) -> int:
    """min(SOA TTL, SOA minimum) (RFC 9077 §3.1.1)."""
    soa = zone.find_rdataset(zone.origin, dns.rdatatype.SOA)  # type: ignore[arg-type]
    return int(min(soa.ttl, soa[0].minimum))


def add_nsec_chain(zone: dns.zone.Zone) -> None:
    """NSEC at every authoritative name, in canonical order (RFC 4034 §4, §6.1)."""
    names = sorted(authoritative_names(zone))
    ttl = _denial_ttl(zone)
    for index, (name, cut) in enumerate(names):
        following = names[(index + 1) % len(names)][0]
        types = " ".join([*_types(zone, name, cut), "NSEC", "RRSIG"])
        rdata = dns.rdata.from_text("IN", "NSEC", f"{following.to_text()} {types}")
        zone.find_rdataset(name, dns.rdatatype.NSEC, create=True).add(rdata, ttl)


def _hash(name: dns.name.Name, iterations: int) -> str:
    return dns.dnssec.nsec3_hash(name, NSEC3_SALT, iterations, 1)


def add_nsec3_chain(zone: dns.zone.Zone, iterations: int, opt_out: bool) -> None:
    """NSEC3 for every authoritative name and empty non-terminal (RFC 5155 §7.1); with
    opt-out, delegations without DS get none (§6)."""
    origin = zone.origin
    assert origin is not None
    ttl = _denial_ttl(zone)
    entries: dict[str, list[str]] = {}
    for name, cut in authoritative_names(zone):
        if (
            cut
            and opt_out
            and zone.nodes[name].get_rdataset(dns.rdataclass.IN, dns.rdatatype.DS) is None
        ):
            continue
        types = _types(zone, name, cut)
        signed = not cut or "DS" in types
        entries[_hash(name, iterations)] = [*types, *(["RRSIG"] if signed else [])]
        parent = name
        while parent != origin:
            parent = parent.parent()
            entries.setdefault(_hash(parent, iterations), [])
    entries[_hash(origin, iterations)].append("NSEC3PARAM")
    hashes = sorted(entries)
    flags = 1 if opt_out else 0
    for index, digest in enumerate(hashes):
        following = hashes[(index + 1) % len(hashes)]
        text = f"1 {flags} {iterations} - {following} {' '.join(sorted(set(entries[digest])))}"
        owner = dns.name.Name([digest.lower().encode()]).concatenate(origin)
        zone.find_rdataset(owner, dns.rdatatype.NSEC3, create=True).add(
            dns.rdata.from_text("IN", "NSEC3", text), ttl
        )
    zone.find_rdataset(origin, dns.rdatatype.NSEC3PARAM, create=True).add(
        dns.rdata.from_text("IN", "NSEC3PARAM", f"1 0 {iterations} -"), ttl
    )
