"""The query log: one line per client query (logger ``rootwalk.query``, off by default)."""

from __future__ import annotations

import logging

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.model import Transport
from resolver.wire import question_end

query_log = logging.getLogger("rootwalk.query")


def log_query(
    client: str,
    wire: bytes,
    transport: Transport,
    reply: bytes | None,
    *,
    cached: bool,
    seconds: float,
    dnssec: str | None = None,
) -> None:
    """One line in the query log: name, type, RCODE (DROPPED for no reply), transport,
    client, whether the answer cache answered and, for a validated answer, its DNSSEC
    state (secure, insecure, bogus); ``extra`` fields for JSON lines."""
    end = question_end(wire)
    qname = qtype = "?"
    if end is not None:
        try:
            qname = dns.name.from_wire(wire, 12)[0].to_text()
            qtype = dns.rdatatype.to_text(
                dns.rdatatype.RdataType(int.from_bytes(wire[end - 4 : end - 2], "big"))
            )
        except dns.exception.DNSException:
            pass
    rcode = (
        dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0xF))
        if reply and len(reply) > 3
        else "DROPPED"
    )
    query_log.info(
        "%s %s %s %s from %s%s%s",
        qname, qtype, rcode, transport.value, client, " (cached)" if cached else "",
        f" dnssec={dnssec}" if dnssec else "",
        extra={"client": client, "qname": qname, "qtype": qtype, "rcode": rcode,
               "transport": transport.value, "cached": cached, "seconds": round(seconds, 6),
               "dnssec": dnssec},
    )  # fmt: skip
