"""One query to one upstream server (RFC 1035 §4.2, RFC 5452, RFC 6891, RFC 7766).

Each UDP query leaves from a new socket (a fresh random source port chosen by the kernel)
with an ID from :mod:`secrets`; dnspython accepts a reply only from the address and port it
was sent to, with the same ID and question, and ignores anything else until the timeout
(RFC 5452 §9.1). A truncated reply (TC=1) is asked again over TCP and never used itself.
Destinations outside the outbound allow-list are refused here, before any socket exists.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.query

from resolver.core.events import Failure, QueryFailed, ReplyReceived, SendQuery

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EDNS_PAYLOAD = 1232
"""Our advertised UDP size upstream (DNS Flag Day 2020; RFC 9715)."""


def is_allowed(address: str, allow: Sequence[IPNetwork]) -> bool:
    """True when ``address`` lies in one of the ``allow`` networks."""
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in allow)


def build_query(send: SendQuery, message_id: int) -> dns.message.Message:
    """The iterative query for ``send``: RD=0 (RFC 1034 §5.3.1), EDNS0 unless the server
    is known to reject it (RFC 6891 §7)."""
    query = dns.message.make_query(
        send.qname,
        send.qtype,
        use_edns=0 if send.use_edns else False,
        payload=EDNS_PAYLOAD,
    )
    query.flags &= ~dns.flags.RD
    query.id = message_id
    return query


@dataclass(slots=True)
class UpstreamCounters:
    """Plain counters, read by the metrics collector at scrape time."""

    sent_udp: int = 0
    sent_tcp: int = 0
    tcp_fallbacks: int = 0
    timeouts: int = 0
    network_errors: int = 0
    prohibited: int = 0


class Upstream:
    """Sends the core's ``SendQuery`` actions and returns the matching events."""

    def __init__(
        self,
        *,
        port: int,
        allow: Sequence[IPNetwork],
    ) -> None:
        self.port = port
        self.allow = tuple(allow)
        self.counters = UpstreamCounters()

    async def query(self, send: SendQuery) -> ReplyReceived | QueryFailed:
        """Ask ``send.server`` one question; UDP first, TCP when the reply is truncated."""
        if not is_allowed(send.server, self.allow):
            self.counters.prohibited += 1
            log.warning("refused to send to %s: not in the outbound allow-list", send.server)
            return QueryFailed(send.ref, Failure.PROHIBITED)
        query = build_query(send, secrets.randbits(16))
        started = time.monotonic()
        try:
            self.counters.sent_udp += 1
            reply = await dns.asyncquery.udp(
                query,
                send.server,
                timeout=send.timeout_s,
                port=self.port,
                ignore_unexpected=True,
                ignore_errors=True,
            )
            if reply.flags & dns.flags.TC:
                self.counters.tcp_fallbacks += 1
                self.counters.sent_tcp += 1
                query.id = secrets.randbits(16)
                reply = await dns.asyncquery.tcp(
                    query, send.server, timeout=send.timeout_s, port=self.port
                )
        except dns.exception.Timeout:
            self.counters.timeouts += 1
            return QueryFailed(send.ref, Failure.TIMEOUT)
        except (OSError, EOFError) as exc:
            self.counters.network_errors += 1
            log.debug("network error from %s: %s", send.server, exc)
            return QueryFailed(send.ref, Failure.NETWORK_ERROR)
        except (dns.exception.DNSException, ValueError) as exc:
            log.debug("malformed reply from %s: %s", send.server, exc)
            return QueryFailed(send.ref, Failure.MALFORMED)
        return ReplyReceived(send.ref, reply, time.monotonic() - started)
