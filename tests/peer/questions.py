"""The differential test's questions, derived from the lab description, not listed by hand.

Every lab zone (``zones/lab/lab.toml`` and its zone files) gives: every owner name with every
type it holds (glue-only names and delegation NS sets included, so parent/child questions are
asked, RFC 2181 §5.4.1), DS at each zone cut (asked of the parent, RFC 4035 §3.1.4.1), the
types that chase (A behind every CNAME, names below every DNAME, RFC 6672), names a wildcard
synthesises and a type it lacks (RFC 4592), each empty non-terminal (RFC 8020), a name that
does not exist (NXDOMAIN) and types that do not exist (NODATA, RFC 2308), and ANY at the apex
(RFC 8482). A new lab zone is covered by adding it to the description.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import dns.rdataclass
import dns.rdatatype

from resolver.lab.authority import ServedZone, load_zone
from resolver.lab.description import LabDescription

_A = dns.rdatatype.A
_NS = dns.rdatatype.NS
_WILDCARD = b"*"
NX_LABEL = "peer-nx"
"""The first label of the name asked in each zone that must not exist there."""
WILD_LABEL = "peer-w"
"""The label asked below each wildcard (and below each DNAME)."""
_MISSING_TYPES = (dns.rdatatype.TXT, dns.rdatatype.MX, dns.rdatatype.SRV)


@dataclass(frozen=True, slots=True, order=True)
class PeerQuestion:
    """One question, in presentation form (the JSON between harness and test keeps it so)."""

    name: str
    type: str
    zone: str
    """The lab zone the question was derived from (the one it is answered in, or the parent
    for questions about a zone cut)."""


def _q(name: dns.name.Name, rdtype: int, zone: dns.name.Name) -> PeerQuestion:
    return PeerQuestion(
        name.to_text().lower(),
        dns.rdatatype.to_text(dns.rdatatype.RdataType(rdtype)),
        zone.to_text(),
    )


def _cuts(served: ServedZone) -> list[dns.name.Name]:
    """Names below the apex with NS records: the zone's delegations (RFC 1034 §4.2.1)."""
    return sorted(
        name
        for name, node in served.zone.nodes.items()
        if name != served.origin and node.get_rdataset(dns.rdataclass.IN, _NS) is not None
    )


def _is_below_cut(name: dns.name.Name, cuts: Iterable[dns.name.Name]) -> bool:
    return any(name.is_subdomain(cut) for cut in cuts)


def _missing_type(types: set[int]) -> int:
    return next(t for t in _MISSING_TYPES if t not in types)


def zone_questions(served: ServedZone) -> list[PeerQuestion]:
    """The questions one zone gives (see the module's docstring)."""
    origin = served.origin
    cuts = _cuts(served)
    questions: list[PeerQuestion] = []
    for name in sorted(served.zone.nodes):
        node = served.zone.nodes[name]
        types = {rdataset.rdtype for rdataset in node.rdatasets}
        for rdtype in sorted(types):
            questions.append(_q(name, rdtype, origin))
        if name in cuts:
            questions.append(_q(name, dns.rdatatype.DS, origin))
            questions.append(_q(dns.name.Name([b"www"]).concatenate(name), _A, origin))
            continue
        if _is_below_cut(name, cuts):
            continue  # glue: asked for what it holds, nothing more
        if dns.rdatatype.CNAME in types:
            questions.append(_q(name, _A, origin))
        if dns.rdatatype.DNAME in types:
            questions.append(_q(name, _A, origin))
            below = dns.name.Name([WILD_LABEL.encode()]).concatenate(name)
            questions.append(_q(below, _A, origin))
            questions.append(_q(dns.name.Name([b"a"]).concatenate(below), _A, origin))
        if name.labels and name.labels[0] == _WILDCARD:
            parent = name.parent()
            synthesised = dns.name.Name([WILD_LABEL.encode()]).concatenate(parent)
            for rdtype in sorted(types):
                questions.append(_q(synthesised, rdtype, origin))
            questions.append(_q(synthesised, _missing_type(types), origin))
            deeper = dns.name.Name([b"a"]).concatenate(synthesised)
            questions.append(_q(deeper, _A, origin))
        elif name != origin and types - {dns.rdatatype.CNAME, dns.rdatatype.DNAME}:
            questions.append(_q(name, _missing_type(types), origin))
    for name in sorted(served.names - set(served.zone.nodes)):
        if not _is_below_cut(name, cuts):
            questions.append(_q(name, _A, origin))  # an empty non-terminal: NODATA
    apex_types = {r.rdtype for r in served.zone.nodes[origin].rdatasets}
    questions.append(_q(origin, _missing_type(apex_types), origin))
    questions.append(_q(origin, dns.rdatatype.ANY, origin))
    questions.append(_q(dns.name.Name([NX_LABEL.encode()]).concatenate(origin), _A, origin))
    return questions


def derive_questions(description: LabDescription) -> list[PeerQuestion]:
    """Every zone's questions, each (name, type) once, in a stable order (the lab's root
    first, then zone by zone as the description lists them)."""
    seen: set[tuple[str, str]] = set()
    questions: list[PeerQuestion] = []
    for zone, path in description.zone_files.items():
        for question in zone_questions(load_zone(str(path), zone)):
            if (question.name, question.type) not in seen:
                seen.add((question.name, question.type))
                questions.append(question)
    return questions


def random_zones(description: LabDescription) -> dict[str, str]:
    """Zones whose answers are a matter of chance, with why: every server of the zone has a
    random fault (drops with a probability below 1, or sprays forged answers), so whether a
    resolver gets an answer in time is random. A zone with one dependable server is kept."""
    result: dict[str, str] = {}
    for zone in description.zone_files:
        servers = [s for s in description.servers if zone in s.zones]
        random_faults = []
        for server in servers:
            faults = server.faults
            if 0.0 < faults.drop < 1.0:
                random_faults.append(f"{server.name} drops with probability {faults.drop}")
            elif faults.spray:
                random_faults.append(f"{server.name} sprays forged answers")
        if servers and len(random_faults) == len(servers):
            result[zone.to_text()] = "; ".join(random_faults)
    return result


def zone_of(question: PeerQuestion, zones: Iterable[str]) -> str | None:
    """The nearest enclosing lab zone of the question's name."""
    name = dns.name.from_text(question.name)
    best: dns.name.Name | None = None
    for text in zones:
        zone = dns.name.from_text(text)
        if name.is_subdomain(zone) and (best is None or zone.is_subdomain(best)):
            best = zone
    return None if best is None else best.to_text()
