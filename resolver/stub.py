"""``rootwalk query``: a stub client that applies a search list and ndots as glibc applies
resolv.conf (resolv.conf(5)), printing each name it tries."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from pathlib import Path

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from resolver.config import Endpoint
from resolver.names import InvalidNameError, parse_name, search_candidates

RESOLV_CONF = Path("/etc/resolv.conf")


class StubError(ValueError):
    """A bad argument, or no resolver to ask."""


def _system_defaults(path: Path) -> dns.resolver.Resolver:
    """What resolv.conf says (nameservers, search, ndots), read by dnspython."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.ndots = 1
    if path.exists():
        with contextlib.suppress(dns.resolver.NoResolverConfiguration):
            resolver.read_resolv_conf(str(path))
    return resolver


def _server(text: str | None, defaults: dns.resolver.Resolver) -> Endpoint:
    if text is None:
        if not defaults.nameservers:
            raise StubError(f"no --server given and no nameserver in {RESOLV_CONF}")
        text = str(defaults.nameservers[0])
    try:
        if ":" in text and not text.startswith("[") and text.count(":") > 1:
            return Endpoint.parse(f"[{text}]", default_port=53)
        return Endpoint.parse(text, default_port=53)
    except ValueError as exc:
        raise StubError(f"--server: {exc}") from None


def ask(
    name: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    server: Endpoint,
    *,
    tcp: bool,
    timeout: float,
) -> dns.message.Message:
    """One recursive query; over UDP with TCP on truncation, or over TCP."""
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    if tcp:
        return dns.query.tcp(query, server.host, timeout=timeout, port=server.port)
    reply, _ = dns.query.udp_with_fallback(query, server.host, timeout=timeout, port=server.port)
    return reply


EXIT_ANSWER = 0
EXIT_NEGATIVE = 1
EXIT_FAILED = 2
"""Exit statuses shared by ``trace`` and ``query``: an answer; NXDOMAIN or NODATA (RFC 2308
§1); SERVFAIL, another error rcode, no reply or a usage error."""


def exit_status(rcode: int, qtype: int, answer_types: Sequence[int]) -> int:
    """The exit status for a final rcode and the types in the answer section: a CNAME chain
    that ends without the type asked is NODATA (RFC 2308 §2.2)."""
    if rcode == dns.rcode.NOERROR:
        wanted = qtype in (dns.rdatatype.ANY, dns.rdatatype.CNAME) and answer_types
        answered = wanted or qtype in answer_types
        return EXIT_ANSWER if answered else EXIT_NEGATIVE
    return EXIT_NEGATIVE if rcode == dns.rcode.NXDOMAIN else EXIT_FAILED


def ede_text(reply: dns.message.Message) -> str:
    """The reply's Extended DNS Errors (RFC 8914 §2) as `` (EDE 22 No Reachable Authority:
    ...)``, or nothing."""
    parts = []
    for error in reply.extended_errors():
        name = dns.edns.EDECode.to_text(error.code).replace("_", " ").title()
        parts.append(f"EDE {int(error.code)} {name}" + (f": {error.text}" if error.text else ""))
    return f" ({'; '.join(parts)})" if parts else ""


def run_query(args: argparse.Namespace) -> int:
    """Try each candidate name in turn. The status, as ``trace``'s: 0 when one has an answer,
    1 when every one was NXDOMAIN or NODATA, 2 when one failed (SERVFAIL, no reply)."""
    defaults = _system_defaults(RESOLV_CONF)
    server = _server(args.server, defaults)
    try:
        rdtype = dns.rdatatype.from_text(args.type)
        search = (
            [parse_name(domain) for domain in args.search]
            if args.search is not None
            else list(defaults.search)
        )
        candidates = search_candidates(args.name, search, args.ndots or defaults.ndots or 1)
    except (InvalidNameError, dns.exception.DNSException, ValueError) as exc:
        raise StubError(str(exc)) from None
    failed = False
    for name in candidates:
        label = f"{name} {dns.rdatatype.to_text(rdtype)}"
        try:
            reply = ask(name, rdtype, server, tcp=args.tcp, timeout=args.timeout)
        except (dns.exception.DNSException, OSError) as exc:
            print(f";; trying {label}: no reply from {server} ({exc})")
            failed = True
            continue
        rcode = dns.rcode.to_text(reply.rcode())
        count = sum(len(r) for r in reply.answer)
        ede = ede_text(reply) if reply.rcode() != dns.rcode.NOERROR else ""
        print(f";; trying {label}: {rcode}, {count} answer record{'' if count == 1 else 's'}{ede}")
        status = exit_status(reply.rcode(), rdtype, [r.rdtype for r in reply.answer])
        if status == EXIT_ANSWER:
            for rrset in reply.answer:
                print(rrset.to_text())
            return EXIT_ANSWER
        failed = failed or status == EXIT_FAILED
    print(";; no answer" + (" (some servers failed)" if failed else ""))
    return EXIT_FAILED if failed else EXIT_NEGATIVE
