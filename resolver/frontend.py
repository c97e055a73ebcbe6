"""What the resolver does with a client's bytes: screen, answer locally or resolve, render.

:func:`screen_query` is pure: it decides from the bytes and the access list alone whether
a query is dropped, answered with an error, or accepted (RFC 1035 §4.1.1, RFC 6891 §6.1.3,
RFC 5625 advice on what a resolver accepts). :class:`Frontend` wires it to the driver.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.access import Access, AccessList
from resolver.cache.answer import AnswerCache
from resolver.core.compose import (
    MAX_UDP_REPLY,
    client_udp_limit,
    compose_response,
    error_response,
    render,
)
from resolver.core.local import local_answer
from resolver.driver import Driver
from resolver.model import Question, Transport
from resolver.transport.framing import MAX_TCP_MESSAGE
from resolver.wire import error_reply, read_fast_query, read_header

log = logging.getLogger(__name__)

_RECURSION_ALLOWED = (Access.ALLOW, Access.ALLOW_SNOOP)
_CACHEABLE_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)

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
    """Answers client queries: the handlers the listeners call.

    :meth:`answer_from_cache` is the hot path: a plain query from an allowed client whose
    answer is cached is answered from stored bytes, without dnspython and without a task.
    Everything else goes to :meth:`handle`, which resolves and fills the answer cache.
    """

    def __init__(
        self,
        driver: Driver,
        access: AccessList,
        answers: AnswerCache,
        clock: Callable[[], float],
    ) -> None:
        self.driver = driver
        self.access = access
        self.answers = answers
        self.clock = clock
        self.rejected: dict[str, int] = {}
        self._decide = functools.lru_cache(maxsize=65536)(access.decide)

    def answer_from_cache(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        """The cached reply for a plain query, or None to take the slow path."""
        query = read_fast_query(wire)
        if query is None or self._decide(client) not in _RECURSION_ALLOWED:
            return None
        if transport is Transport.UDP:
            limit = query.udp_limit if query.udp_limit < MAX_UDP_REPLY else MAX_UDP_REPLY
        else:
            limit = MAX_TCP_MESSAGE
        return self.answers.lookup(query, wire, self.clock(), limit)

    async def handle(self, wire: bytes, client: str, transport: Transport) -> bytes | None:
        screened = screen_query(wire, client, self.access)
        if isinstance(screened, Rejected):
            self.rejected[screened.why] = self.rejected.get(screened.why, 0) + 1
            return screened.reply
        query, question = screened.query, screened.question
        local = local_answer(question)
        result = local or await self.driver.resolve(question)
        if result.is_failure:
            log.info("SERVFAIL for %s from %s: %s", question, client, result.reason)
        response = compose_response(query, result)
        full = render(response, MAX_TCP_MESSAGE)
        if local is None and result.rcode in _CACHEABLE_RCODES:
            fast = read_fast_query(wire)
            if fast is not None:
                self.answers.store(fast.key, full, fast.question_end, self.clock())
        limit = client_udp_limit(query) if transport is Transport.UDP else MAX_TCP_MESSAGE
        return full if len(full) <= limit else render(response, limit)
