"""Authoritative answers for the lab, as a pure function (RFC 1034 §4.3.2).

:func:`authoritative_answer` takes the zones a server serves and a query and returns the
response: referrals with glue, in-zone CNAME chasing (bounded), wildcards (RFC 4592),
empty non-terminals, NXDOMAIN and NODATA with the zone's SOA (RFC 2308 §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from resolver.lab.description import Faults
from resolver.lab.dnssec import SignedIndex, add_dnssec, take_nsec3, wants_dnssec, without_meta
from resolver.limits import MAX_CNAME_IN_ZONE

_WILDCARD = dns.name.Name([b"*"])


@dataclass(slots=True)
class ServedZone:
    """One zone with the names it holds, including empty non-terminals (RFC 4592 §2.2.2)."""

    zone: dns.zone.Zone
    names: set[dns.name.Name] = field(default_factory=set)
    signed: SignedIndex | None = None
    """Set for a signed zone: its denial records (:mod:`resolver.lab.dnssec`)."""

    @classmethod
    def from_zone(cls, zone: dns.zone.Zone) -> ServedZone:
        origin = zone.origin
        assert origin is not None
        signed = take_nsec3(zone)  # NSEC3 owners are not names of the zone (RFC 5155 §7.2.8)
        names: set[dns.name.Name] = set()
        for name in zone.nodes:
            absolute = name.derelativize(origin)
            while absolute.is_subdomain(origin) and absolute not in names:
                names.add(absolute)
                if absolute == origin:
                    break
                absolute = absolute.parent()
        return cls(zone, names, signed)

    @property
    def origin(self) -> dns.name.Name:
        assert self.zone.origin is not None
        return self.zone.origin

    def rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        node = self.zone.get_node(name)
        if node is None:
            return None
        rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if rdataset is None:
            return None
        return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))

    def rrsets_at(self, name: dns.name.Name) -> list[dns.rrset.RRset]:
        node = self.zone.get_node(name)
        if node is None:
            return []
        return [
            dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            for rdataset in node.rdatasets
        ]


def load_zone(path: str, origin: dns.name.Name) -> ServedZone:
    """Parse a master file (RFC 1035 §5) with names relative to ``origin``."""
    zone = dns.zone.from_file(path, origin=origin, relativize=False)
    return ServedZone.from_zone(zone)


def closest_zone(
    zones: Mapping[dns.name.Name, ServedZone], qname: dns.name.Name
) -> ServedZone | None:
    """The served zone nearest above ``qname`` (RFC 1034 §4.3.2 step 2)."""
    name = qname
    while True:
        if name in zones:
            return zones[name]
        if name == dns.name.root:
            return None
        name = name.parent()


def _delegation(
    served: ServedZone, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    """The highest NS RRset between the apex (exclusive) and ``qname``: a zone cut."""
    below_apex: list[dns.name.Name] = []
    name = qname
    while name != served.origin:
        below_apex.append(name)
        name = name.parent()
    for name in reversed(below_apex):
        if name == qname and qtype == dns.rdatatype.DS:
            continue  # DS lives on the parent side of the cut (RFC 4035 §3.1.4.1)
        ns = served.rrset(name, dns.rdatatype.NS)
        if ns is not None:
            return ns
    return None


def _dname_above(served: ServedZone, qname: dns.name.Name) -> dns.rrset.RRset | None:
    """The highest DNAME owned by a strict ancestor of ``qname`` in the zone, apex included
    (RFC 6672 §3.2: the DNAME of the last label matched redirects the rest)."""
    name = qname
    found = None
    while name != served.origin:
        name = name.parent()
        dname = served.rrset(name, dns.rdatatype.DNAME)
        if dname is not None:
            found = dname
    return found


def _redirect(
    response: dns.message.Message,
    served: ServedZone,
    qname: dns.name.Name,
    dname: dns.rrset.RRset,
    faults: Faults,
) -> dns.name.Name | None:
    """Answer ``qname`` below a DNAME (RFC 6672 §3.2, RFC 1034 §4.3.2 step 3c amended): the
    DNAME, then the CNAME synthesised from it with the DNAME's TTL (§3.1); YXDOMAIN when the
    new name would pass 255 octets (§2.2). Returns the CNAME's target, to chase when in
    the zone. The faults make liars: ``dname_cname_target`` sends a CNAME that disagrees
    with the DNAME (and chases it), ``dname_cname_ttl0`` sends the CNAME with TTL 0, as
    RFC 2672 §4.1 asked of servers before RFC 6672."""
    response.flags |= dns.flags.AA
    response.answer.append(dname)
    try:
        target = qname.relativize(dname.name).concatenate(dname[0].target)
        if faults.dname_cname_target:
            target = qname.relativize(dname.name).concatenate(
                dns.name.Name([b"wrong"]).concatenate(served.origin)
            )
    except dns.name.NameTooLong:
        response.set_rcode(dns.rcode.YXDOMAIN)
        return None
    ttl = 0 if faults.dname_cname_ttl0 else dname.ttl
    response.answer.append(dns.rrset.from_text(qname, ttl, "IN", "CNAME", target.to_text()))
    return target


def _glue(served: ServedZone, ns: dns.rrset.RRset) -> list[dns.rrset.RRset]:
    glue = []
    for rdata in ns:
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rrset = served.rrset(rdata.target, rdtype)
            if rrset is not None:
                glue.append(rrset)
    return glue


def _negative_soa(served: ServedZone) -> dns.rrset.RRset:
    soa = served.rrset(served.origin, dns.rdatatype.SOA)
    assert soa is not None, f"zone {served.origin} has no SOA"
    soa.ttl = min(soa.ttl, soa[0].minimum)  # RFC 2308 §3
    return soa


def _synthesised(served: ServedZone, qname: dns.name.Name) -> dns.name.Name | None:
    """The wildcard owner that synthesises ``qname`` (RFC 4592 §3.3.1), if any."""
    encloser = qname.parent()
    while encloser.is_subdomain(served.origin):
        if encloser in served.names:
            source = _WILDCARD.concatenate(encloser)
            return source if served.zone.get_node(source) is not None else None
        encloser = encloser.parent()
    return None


def _answer_at(
    served: ServedZone, owner: dns.name.Name, source: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> list[dns.rrset.RRset]:
    """RRsets at ``source`` for ``qtype`` (or all for ANY), re-owned as ``owner``."""
    rrsets = served.rrsets_at(source)
    if qtype != dns.rdatatype.ANY:
        rrsets = [r for r in rrsets if r.rdtype == qtype]
    return [dns.rrset.from_rdata_list(owner, rrset.ttl, list(rrset)) for rrset in rrsets]


def authoritative_answer(
    zones: Mapping[dns.name.Name, ServedZone],
    query: dns.message.Message,
    faults: Faults | None = None,
) -> dns.message.Message:
    """The response an authoritative server for ``zones`` gives to ``query`` (with the
    DNAME faults of ``faults``, if any). In a signed zone, a query with DO=1 gets the
    DNSSEC records too (RFC 4035 §3.1); without DO, an ANY answer leaves them out."""
    response = _answer(zones, query, faults)
    served = closest_zone(zones, query.question[0].name) if len(query.question) == 1 else None
    if served is None or served.signed is None:
        return response
    if wants_dnssec(query):
        add_dnssec(served, response)
    elif query.question[0].rdtype == dns.rdatatype.ANY:
        response.answer = without_meta(response.answer)
    return response


def _answer(
    zones: Mapping[dns.name.Name, ServedZone],
    query: dns.message.Message,
    faults: Faults | None = None,
) -> dns.message.Message:
    """The answer without DNSSEC's additions (RFC 1034 §4.3.2)."""
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RA
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    qname = question.name
    qtype = question.rdtype
    served = closest_zone(zones, qname)
    if served is None or question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response

    for _hop in range(MAX_CNAME_IN_ZONE + 1):
        delegation = _delegation(served, qname, qtype)
        dname = _dname_above(served, qname)
        if dname is not None and (delegation is None or len(dname.name) < len(delegation.name)):
            target = _redirect(response, served, qname, dname, faults or Faults())
            if (
                target is None
                or not target.is_subdomain(served.origin)
                or any(r.name == target for r in response.answer)
            ):
                return response
            qname = target
            continue
        if delegation is not None:
            if not response.answer:
                response.flags &= ~dns.flags.AA
            response.authority.append(delegation)
            response.additional.extend(_glue(served, delegation))
            return response
        response.flags |= dns.flags.AA
        source: dns.name.Name | None = qname
        if qname not in served.names:
            source = _synthesised(served, qname)
            if source is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.append(_negative_soa(served))
                return response
        assert source is not None
        found = _answer_at(served, qname, source, qtype)
        if found:
            response.answer.extend(found)
            return response
        cname = _answer_at(served, qname, source, dns.rdatatype.CNAME)
        if not cname:
            response.authority.append(_negative_soa(served))  # NODATA (RFC 2308 §2.2)
            return response
        response.answer.extend(cname)
        target = cname[0][0].target
        if not target.is_subdomain(served.origin) or any(r.name == target for r in response.answer):
            return response
        qname = target
    return response


LAB_EDNS_PAYLOAD = 1232

FORGED_ADDRESS = "203.0.113.66"
"""What forged answers say (a documentation address: data only, never a destination)."""


def add_poison(response: dns.message.Message) -> None:
    """Out-of-bailiwick records in every section (the ``poison`` fault)."""
    response.answer.append(
        dns.rrset.from_text("www.other.example.", 86400, "IN", "A", FORGED_ADDRESS)
    )
    response.authority.append(dns.rrset.from_text("lab.", 86400, "IN", "NS", "ns.evil.example."))
    response.additional.append(
        dns.rrset.from_text("ns.evil.example.", 86400, "IN", "A", FORGED_ADDRESS)
    )
    response.additional.append(
        dns.rrset.from_text("ns1.nic.lab.", 86400, "IN", "A", FORGED_ADDRESS)
    )


def forge(response: dns.message.Message, faults: Faults) -> None:
    """The ``forge`` fault: the answer to a forged name and type is the forged record alone,
    unsigned (a lying server in a signed zone: a validator must call it bogus)."""
    question = response.question[0]
    for name, record in faults.forge:
        rdtype, rdata = record.split(None, 1)
        if name == question.name and question.rdtype in (
            dns.rdatatype.from_text(rdtype),
            dns.rdatatype.ANY,
        ):
            response.set_rcode(dns.rcode.NOERROR)
            response.answer = [dns.rrset.from_text(name, 300, "IN", rdtype, rdata)]
            response.authority = []


def name_delay_s(faults: Faults, query: dns.message.Message) -> float:
    """How late a server with the ``delay_names`` fault answers ``query``: the delay given
    for its question's name (compared case-insensitively, as DNS names are), else 0."""
    if not faults.delay_names or not query.question:
        return 0.0
    qname = query.question[0].name
    return next((delay for name, delay in faults.delay_names if name == qname), 0.0)


def _error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """An empty reply with ``rcode`` and without EDNS, as old or broken servers send."""
    response = dns.message.make_response(query)
    response.use_edns(False)
    response.set_rcode(rcode)
    return response


def is_empty_non_terminal(zones: Mapping[dns.name.Name, ServedZone], qname: dns.name.Name) -> bool:
    """``qname`` exists in its zone only because names below it do (RFC 8020 §2)."""
    served = closest_zone(zones, qname)
    return served is not None and qname in served.names and served.zone.get_node(qname) is None


def is_nodata(response: dns.message.Message) -> bool:
    """An authoritative NOERROR with nothing in the answer section (RFC 2308 §2.2)."""
    return (
        response.rcode() == dns.rcode.NOERROR
        and bool(response.flags & dns.flags.AA)
        and not response.answer
    )


def lab_response(
    zones: Mapping[dns.name.Name, ServedZone], faults: Faults, query: dns.message.Message
) -> dns.message.Message | None:
    """What a lab server with ``faults`` replies to ``query``: an error rcode (the ``rcode``
    and ``formerr_edns`` faults, without EDNS, as old servers do), or the authoritative answer
    (with EDNS when asked, and lies when ``poison``); None when it stays silent. The
    ``nxdomain_for_ent`` and ``on_nodata`` faults replace a NODATA answer (the answer to most
    minimised questions, RFC 9156) with NXDOMAIN, another rcode, or silence. Faults about
    transport (drop, delay, garbage, wrong ID, truncation, TCP) are the server's business,
    not this function's."""
    if faults.rcode is not None or (faults.formerr_edns and query.edns >= 0):
        return _error_response(
            query, faults.rcode if faults.rcode is not None else dns.rcode.FORMERR
        )
    response = authoritative_answer(zones, query, faults)
    if (faults.nxdomain_for_ent or faults.on_nodata) and is_nodata(response):
        if faults.on_nodata == "drop":
            return None
        if faults.on_nodata:
            return _error_response(query, dns.rcode.from_text(faults.on_nodata))
        if is_empty_non_terminal(zones, query.question[0].name):
            response.set_rcode(dns.rcode.NXDOMAIN)
    if faults.forge:
        forge(response, faults)
    if query.edns >= 0:
        response.use_edns(0, query.ednsflags & dns.flags.DO, payload=LAB_EDNS_PAYLOAD)
    if faults.poison:
        add_poison(response)
    return response
