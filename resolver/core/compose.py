"""Composing the resolver's responses to clients (RFC 1035 §4.1, RFC 6891, RFC 8914)."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode

from resolver.model import Result

SERVER_EDNS_PAYLOAD = 1232
"""The UDP size we advertise to clients (DNS Flag Day 2020)."""

MAX_UDP_REPLY = 4096
"""The largest UDP reply we send, whatever a client advertises (Unbound's
``max-udp-size`` default), so an answer never amplifies beyond that."""


def client_udp_limit(query: dns.message.Message) -> int:
    """How large a UDP reply the client accepts (RFC 6891 §6.2.5; RFC 1035 §2.3.4: 512)."""
    if query.edns < 0:
        return 512
    return min(max(512, query.payload), MAX_UDP_REPLY)


def compose_response(query: dns.message.Message, result: Result) -> dns.message.Message:
    """The client's response: the question as asked (letter case kept), RA set, the result's
    sections, EDNS when the client used it, and an Extended DNS Error on SERVFAIL."""
    response = dns.message.make_response(
        query, recursion_available=True, our_payload=SERVER_EDNS_PAYLOAD
    )
    response.set_rcode(result.rcode)
    response.answer.extend(rrset.to_rrset() for rrset in result.answer)
    response.authority.extend(rrset.to_rrset() for rrset in result.authority)
    if query.edns >= 0 and result.error_code is not None:
        response.use_edns(
            0,
            payload=SERVER_EDNS_PAYLOAD,
            options=[
                dns.edns.EDEOption(dns.edns.EDECode(result.error_code), result.reason[:200] or None)
            ],
        )
    return response


def error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """A response with ``rcode`` and no records (FORMERR, REFUSED, NOTIMP, BADVERS)."""
    response = dns.message.make_response(
        query, recursion_available=True, our_payload=SERVER_EDNS_PAYLOAD
    )
    if rcode == dns.rcode.BADVERS:
        response.use_edns(0, payload=SERVER_EDNS_PAYLOAD)  # RFC 6891 §6.1.3: answer version 0
    response.set_rcode(rcode)
    return response


def render(response: dns.message.Message, limit: int) -> bytes:
    """Wire form within ``limit`` bytes; when it does not fit, whole RRsets are left out and
    TC is set (RFC 2181 §9, RFC 1035 §4.2.1). Records keep their order (no shuffling), so
    the same result renders to the same bytes on the slow path and from the answer cache."""
    return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)
