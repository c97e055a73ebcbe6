"""Names answered locally, never sent upstream (RFC 6761 §6.3, RFC 6303 §4.2).

``localhost.`` and every name below it resolve to the loopback addresses; the reverse names
of 127.0.0.0/8 and ::1 point back to ``localhost.``.
"""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from resolver.model import Question, Result
from resolver.records import WireRRset

_wire = WireRRset.from_rrset

LOCALHOST = dns.name.from_text("localhost.")
LOOPBACK_V4_REVERSE = dns.name.from_text("127.in-addr.arpa.")
LOOPBACK_V6_REVERSE = dns.reversename.from_address("::1")
_LOCAL_SUFFIXES = (b"\x09localhost\x00", b"\x04arpa\x00")
LOCAL_TTL = 3600  # what Unbound's default local-zone for localhost uses


def _soa(zone: dns.name.Name) -> WireRRset:
    return _wire(
        dns.rrset.from_text(
            zone, LOCAL_TTL, "IN", "SOA", "localhost. nobody.invalid. 1 3600 1200 604800 10800"
        )
    )


def _positive(
    question: Question, zone: dns.name.Name, rdtype: dns.rdatatype.RdataType, rdata_text: str
) -> Result:
    if question.qtype in (rdtype, dns.rdatatype.ANY):
        rrset = dns.rrset.from_text(question.qname, LOCAL_TTL, "IN", rdtype, rdata_text)
        return Result(dns.rcode.NOERROR, (_wire(rrset),))
    return Result(dns.rcode.NOERROR, (), (_soa(zone),))


def local_answer(question: Question) -> Result | None:
    """The local answer for ``question``, or None when it is not a local name."""
    if question.qclass != dns.rdataclass.IN:
        return None
    if not question.qname_key.endswith(_LOCAL_SUFFIXES):
        return None  # a quick answer for every other name, on bytes
    qname = question.qname
    if qname.is_subdomain(LOCALHOST):
        if question.qtype == dns.rdatatype.AAAA:
            return _positive(question, LOCALHOST, dns.rdatatype.AAAA, "::1")
        return _positive(question, LOCALHOST, dns.rdatatype.A, "127.0.0.1")
    if qname == LOOPBACK_V6_REVERSE:
        return _positive(question, qname, dns.rdatatype.PTR, "localhost.")
    if qname.is_subdomain(LOOPBACK_V4_REVERSE):
        if len(qname) == len(LOOPBACK_V4_REVERSE) + 3:  # a full d.c.b.127 address
            return _positive(question, LOOPBACK_V4_REVERSE, dns.rdatatype.PTR, "localhost.")
        if qname == LOOPBACK_V4_REVERSE or len(qname) < len(LOOPBACK_V4_REVERSE) + 3:
            return Result(dns.rcode.NOERROR, (), (_soa(LOOPBACK_V4_REVERSE),))
        return Result(dns.rcode.NXDOMAIN, (), (_soa(LOOPBACK_V4_REVERSE),))
    return None
