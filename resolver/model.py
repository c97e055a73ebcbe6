"""Small value types shared by every layer: questions, results, zone cuts.

They live here, below the caches and the core, so that dependencies point one way
(``core -> cache -> model``): the RRset cache returns zone cuts without importing the core.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.names import NameKey, key_of_wire, name_key
from resolver.records import WireRRset


@dataclass(frozen=True, slots=True, eq=False)
class Question:
    """One question: owner name, type and class (RFC 1035 §4.1.2), and the name's key.

    ``qname_key`` is made once where the question is made: from the query's bytes on a
    client's miss (``screen.read_plain_query``), from a name server's key for an address
    lookup, else from ``qname`` here. Questions hash and compare on it (in C; dnspython's
    ``Name.__hash__`` and ``__eq__`` loop in Python), and every cache and comparison the
    resolution makes reads it instead of converting the name again."""

    qname: dns.name.Name
    qtype: dns.rdatatype.RdataType
    qclass: dns.rdataclass.RdataClass = dns.rdataclass.IN
    qname_key: NameKey = field(default=NameKey(b""), kw_only=True, repr=False)
    """``qname`` lower-cased in wire form; left out, it is made from ``qname`` (so a
    ``dataclasses.replace`` that changes ``qname`` must pass the new key too)."""
    checking_disabled: bool = field(default=False, kw_only=True)
    """Resolve without validating (RFC 4035 §3.2.2, the CD bit): name server address
    lookups, and the DNSKEY and DS fetches a validating resolution verifies itself. A
    question with it set is another question, so the mesh never hands an unvalidated
    result to a client that wants a validated one."""

    def __post_init__(self) -> None:
        if not self.qname_key:
            object.__setattr__(self, "qname_key", name_key(self.qname))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Question):
            return NotImplemented
        return (
            self.qname_key == other.qname_key
            and self.qtype == other.qtype
            and self.qclass == other.qclass
            and self.checking_disabled == other.checking_disabled
        )

    def __hash__(self) -> int:
        return hash((self.qname_key, self.qtype, self.qclass, self.checking_disabled))

    def __str__(self) -> str:
        return f"{self.qname} {dns.rdatatype.to_text(self.qtype)}"


class ClientQuery(NamedTuple):
    """A client's accepted query, as the renderer needs it: its bytes (ID, flags and the
    question as asked, letter case kept) and what its OPT record said (RFC 6891 §6.1.2)."""

    wire: bytes
    question: Question
    question_end: int
    """Offset just past the question in ``wire``."""
    edns_do: bool | None
    """None without EDNS; else the DO bit (RFC 3225 §3: copied into the response)."""
    udp_limit: int
    """The largest UDP reply the client takes (RFC 6891 §6.2.5), at most our maximum."""
    cache_key: bytes | None = None
    """The answer cache's key for a plain query (``wire.read_fast_query``); None when the
    answer is not to be kept."""


class Security(enum.Enum):
    """RFC 4035 §4.3's four states of validated data (the validator's verdicts carry one;
    :mod:`resolver.core.dnssec.security`). Kept here, below every layer, because a
    :class:`Result` carries its answer's state."""

    SECURE = "secure"
    INSECURE = "insecure"
    BOGUS = "bogus"
    INDETERMINATE = "indeterminate"


class Transport(enum.Enum):
    """How a client reached us, or how we reach an upstream server."""

    UDP = "udp"
    TCP = "tcp"
    DOT = "dot"
    """DNS over TLS (RFC 7858): TCP framing inside TLS."""
    DOH = "doh"
    """DNS over HTTPS (RFC 8484), over HTTP/2."""


class ExtendedError(enum.IntEnum):
    """Extended DNS Error codes we use (RFC 8914 §4)."""

    OTHER = 0
    UNSUPPORTED_DNSKEY_ALGORITHM = 1
    UNSUPPORTED_DS_DIGEST_TYPE = 2
    STALE_ANSWER = 3
    DNSSEC_INDETERMINATE = 5
    DNSSEC_BOGUS = 6
    SIGNATURE_EXPIRED = 7
    SIGNATURE_NOT_YET_VALID = 8
    DNSKEY_MISSING = 9
    RRSIGS_MISSING = 10
    NO_ZONE_KEY_BIT_SET = 11
    NSEC_MISSING = 12
    PROHIBITED = 18
    NO_REACHABLE_AUTHORITY = 22


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of resolving one question, ready to be composed into a response.

    ``answer`` holds the CNAME chain followed by the final RRsets (RFC 1034 §4.3.2 step 3a);
    ``authority`` holds the SOA of a negative answer (RFC 2308 §3). ``reason`` is a sentence
    saying what failed, sent as Extended DNS Error text on SERVFAIL (RFC 8914).
    """

    rcode: dns.rcode.Rcode
    answer: tuple[WireRRset, ...] = ()
    authority: tuple[WireRRset, ...] = ()
    reason: str = ""
    error_code: ExtendedError | None = None
    upstream_queries: int = field(default=0, compare=False)
    cycle_via: str | None = field(default=None, compare=False)
    """On a failure that a dependency cycle caused: the name server whose address was needed
    to resolve itself (Unbound's ``causes_cycle``). Such a failure is not cached as the
    name's answer: the name may resolve through another path."""
    security: Security | None = field(default=None, compare=False)
    """The answer's DNSSEC state (RFC 4035 §4.3); None when it was not validated
    (validation off, or a question with ``checking_disabled``)."""
    proof: tuple[WireRRset, ...] = field(default=(), compare=False)
    """The DNSSEC records behind the answer: the RRSIGs of the answer's RRsets, and the
    NSEC/NSEC3 records of a negative answer with their RRSIGs (RFC 4035 §3.1.1-3.1.3).
    A validator verifies them; a client that set DO gets them (RFC 4035 §3.2.1)."""
    zone: dns.name.Name | None = field(default=None, compare=False)
    """The zone whose servers gave the final reply (where a validator looks for keys when
    the records carry no RRSIG naming their signer)."""

    @property
    def is_failure(self) -> bool:
        return self.rcode == dns.rcode.SERVFAIL


EDE_TEXT_LIMIT = 200
"""Characters of Extended DNS Error text we send (RFC 8914 §2 sets no limit; this keeps a
SERVFAIL well inside a 1232-byte EDNS buffer and readable in dig's output)."""


def join_reasons(reasons: Sequence[str], limit: int) -> str:
    """``reasons`` joined with ", ", cut at a reason's boundary so the text stays within
    ``limit`` characters, the rest said as ``… and N more`` (never a reason cut mid-word).
    When not even the first reason fits with that tail, the first alone is cut at ``limit``."""
    text = ", ".join(reasons)
    if len(text) <= limit:
        return text
    for kept in range(len(reasons) - 1, 0, -1):
        shortened = f"{', '.join(reasons[:kept])} … and {len(reasons) - kept} more"
        if len(shortened) <= limit:
            return shortened
    return reasons[0][:limit] if reasons else ""


def servfail(reason: str, code: ExtendedError = ExtendedError.OTHER) -> Result:
    """A SERVFAIL result that says why."""
    return Result(rcode=dns.rcode.SERVFAIL, reason=reason, error_code=code)


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
    zone_key: NameKey = field(default=NameKey(b""), kw_only=True)
    """``zone`` lower-cased in wire form, what cuts are compared by; left out, it is made
    from ``zone`` (the RRset cache and a referral pass the key they read the zone from)."""

    def __post_init__(self) -> None:
        if not self.zone_key:
            self.zone_key = name_key(self.zone)

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
            zone_key=self.zone_key,
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
    return ZoneCut(ns_rrset.name, nameservers, zone_key=ns_rrset.owner_key)
