"""What the resolver does with a client's bytes: screen, answer locally or resolve, render.

:func:`screen_query` is pure: it decides from the bytes and the access list alone whether
a query is dropped, answered with an error, or accepted (RFC 1035 §4.1.1, RFC 6891 §6.1.3,
RFC 5625 advice on what a resolver accepts). :class:`Frontend` wires it to the driver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.access import Access, AccessList
from resolver.core.compose import (
    client_udp_limit,
    compose_response,
    error_response,
    render,
)
from resolver.core.local import local_answer
from resolver.driver import Driver
from resolver.model import Question, Transport
from resolver.transport.framing import MAX_TCP_MESSAGE
from resolver.wire import error_reply, read_header

log = logging.getLogger(__name__)

_REFUSED_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
"""Zone transfers: a resolver serves none (Unbound answers REFUSED)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    query: dns.message.Message
    question: Question


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer with ``reply`` bytes, or drop when ``reply`` is None; ``why`` is for counters."""

    reply: bytes | None
    why: str


def screen_query(wire: bytes, client: str, access: AccessList) -> Accepted | Rejected:
    """Decide what to do with a client's query before any resolution."""
    header = read_header(wire)
    if header is None:
        return Rejected(None, "malformed")  # no header: nothing to answer to
    if header.is_response:
        return Rejected(None, "response")  # QR=1: never answer answers (reflection loops)
    decision = access.decide(client)
    if decision is Access.DENY:
        return Rejected(None, "denied")
    if decision is Access.REFUSE:
        return Rejected(error_reply(wire, dns.rcode.REFUSED), "refused")
    if header.opcode != dns.opcode.QUERY:
        return Rejected(error_reply(wire, dns.rcode.NOTIMP), "notimp")
    try:
        query = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, IndexError):
        return Rejected(error_reply(wire, dns.rcode.FORMERR), "malformed")
    if len(query.question) != 1:
        return Rejected(render(error_response(query, dns.rcode.FORMERR), 512), "malformed")
    if query.edns > 0:
        return Rejected(render(error_response(query, dns.rcode.BADVERS), 512), "badvers")
    rrset = query.question[0]
    if not header.wants_recursion and decision is not Access.ALLOW_SNOOP:
        return Rejected(render(error_response(query, dns.rcode.REFUSED), 512), "refused")
    if rrset.rdclass != dns.rdataclass.IN or rrset.rdtype in _REFUSED_TYPES:
        return Rejected(render(error_response(query, dns.rcode.REFUSED), 512), "refused")
    if dns.rdatatype.is_metatype(rrset.rdtype) and rrset.rdtype != dns.rdatatype.ANY:
        return Rejected(render(error_response(query, dns.rcode.FORMERR), 512), "malformed")
    return Accepted(query, Question(rrset.name, rrset.rdtype, rrset.rdclass))


class Frontend:
    """Answers client queries: the handler the listeners call."""

    def __init__(self, driver: Driver, access: AccessList) -> None:
        self.driver = driver
        self.access = access
        self.rejected: dict[str, int] = {}

    async def handle(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        screened = screen_query(wire, client, self.access)
        if isinstance(screened, Rejected):
            self.rejected[screened.why] = self.rejected.get(screened.why, 0) + 1
            return screened.reply
        query, question = screened.query, screened.question
        result = local_answer(question) or await self.driver.resolve(question)
        if result.is_failure:
            log.info("SERVFAIL for %s from %s: %s", question, client, result.reason)
        response = compose_response(query, result)
        limit = client_udp_limit(query) if transport is Transport.UDP else MAX_TCP_MESSAGE
        return render(response, limit)
