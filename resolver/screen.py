"""Screening a client's query: drop it, answer it with an error, or accept it (sans-IO).

Pure: decides from the query's bytes and the client's access decision alone, before any
resolution (RFC 1035 §4.1.1, RFC 6891 §6.1.3, RFC 5625's advice on what a resolver
accepts). The frontend reads the access decision and the plain query once on the hit path
and hands both here on a miss, so nothing is read twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.access import Access
from resolver.core.compose import client_udp_limit, error_response, render
from resolver.model import ClientQuery, Question
from resolver.names import NameKey
from resolver.records import name_from_wire
from resolver.wire import (
    HEADER_LENGTH,
    KEY_CD,
    KEY_DO,
    KEY_EDNS,
    FastQuery,
    error_reply,
    is_cacheable_question,
    question_end,
    read_header,
)

REFUSED_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
"""Zone transfers: a resolver serves none (Unbound answers REFUSED)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer with ``reply`` bytes, or drop when ``reply`` is None; ``why`` is for counters."""

    reply: bytes | None
    why: str


def reject_question(qtype: int, qclass: int) -> tuple[int, str] | None:
    """(RCODE, counter) for a question a resolver does not answer, or None to resolve it:
    a class other than IN or a zone transfer is REFUSED; a meta-type (RFC 6895 §3.1: 128 to
    255, OPT) other than ANY is FORMERR."""
    if qclass != dns.rdataclass.IN or qtype in REFUSED_TYPES:
        return dns.rcode.REFUSED, "refused"
    if (128 <= qtype <= 255 or qtype == dns.rdatatype.OPT) and qtype != dns.rdatatype.ANY:
        return dns.rcode.FORMERR, "malformed"
    return None


def read_plain_query(wire: bytes, fast: FastQuery) -> ClientQuery:
    """The :class:`ClientQuery` of a plain query that :func:`~resolver.wire.read_fast_query`
    read, without dnspython (the name is built from its bytes; letters as sent)."""
    end = fast.question_end
    qname = name_from_wire(wire[HEADER_LENGTH : end - 4], keep=False)
    qtype = dns.rdatatype.RdataType.make(int.from_bytes(wire[end - 4 : end - 2], "big"))
    qname_key = NameKey(fast.key[:-5])  # the cache key starts with the name, lower-cased
    key_flags = fast.key[-1]
    edns_do = None if not key_flags & KEY_EDNS else bool(key_flags & KEY_DO)
    question = Question(
        qname, qtype, qname_key=qname_key, checking_disabled=bool(key_flags & KEY_CD)
    )
    return ClientQuery(wire, question, end, edns_do, fast.udp_limit, fast.key)


def screen_query(wire: bytes, access: Access, fast: FastQuery | None) -> ClientQuery | Rejected:
    """Decide what to do with a client's query before any resolution.

    ``access`` is the access list's decision for the client; ``fast`` is what
    :func:`~resolver.wire.read_fast_query` read of ``wire`` (None when it is not a plain
    query). The access decision is applied before ``fast`` is looked at, so a caller may
    pass None without reading for a client that is neither ``allow`` nor ``allow_snoop``.
    A plain query is accepted without dnspython; anything else is read with it.
    """
    if fast is None:
        header = read_header(wire)
        if header is None:
            return Rejected(None, "malformed")  # no header: nothing to answer to
        if header.is_response:
            return Rejected(None, "response")  # QR=1: never answer answers (reflection loops)
        refused = _refused(wire, access)
        if refused is not None:
            return refused
        if header.opcode != dns.opcode.QUERY:
            return Rejected(error_reply(wire, dns.rcode.NOTIMP), "notimp")
        return _screen_unusual(wire, access)
    refused = _refused(wire, access)  # a plain query has a header, QR=0 and opcode QUERY
    if refused is not None:
        return refused
    if is_cacheable_question(wire, fast):
        end = fast.question_end
        qclass = int.from_bytes(wire[end - 2 : end], "big")
        if reject_question(int.from_bytes(wire[end - 4 : end - 2], "big"), qclass) is None:
            return read_plain_query(wire, fast)
    return _screen_unusual(wire, access)


def _refused(wire: bytes, access: Access) -> Rejected | None:
    """The access list's verdict: drop (deny), REFUSED (refuse), or None to go on."""
    if access is Access.DENY:
        return Rejected(None, "denied")
    if access is Access.REFUSE:
        return Rejected(error_reply(wire, dns.rcode.REFUSED), "refused")
    return None


def _screen_unusual(wire: bytes, access: Access) -> ClientQuery | Rejected:
    """Screen a query that is not plain (or whose question is odd) with dnspython."""
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, IndexError):
        return Rejected(error_reply(wire, dns.rcode.FORMERR), "malformed")
    end_of_question = question_end(wire)
    if len(query.question) != 1 or end_of_question is None:
        return Rejected(render(error_response(query, dns.rcode.FORMERR), 512), "malformed")
    if query.edns > 0:
        return Rejected(render(error_response(query, dns.rcode.BADVERS), 512), "badvers")
    rrset = query.question[0]
    if not query.flags & dns.flags.RD and access is not Access.ALLOW_SNOOP:
        return Rejected(render(error_response(query, dns.rcode.REFUSED), 512), "refused")
    rejection = reject_question(rrset.rdtype, rrset.rdclass)
    if rejection is not None:
        rcode, why = rejection
        return Rejected(render(error_response(query, dns.rcode.Rcode(rcode)), 512), why)
    edns_do = None if query.edns < 0 else bool(query.ednsflags & dns.flags.DO)
    return ClientQuery(
        wire,
        Question(rrset.name, rrset.rdtype, checking_disabled=bool(query.flags & dns.flags.CD)),
        end_of_question,
        edns_do,
        client_udp_limit(query),
    )
