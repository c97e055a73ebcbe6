"""The one frozen :class:`Settings` object and where every setting is declared.

A new setting is three lines here: a field of :class:`Settings` (with a docstring saying
what it does), its converter in :data:`CONVERTERS` (from :mod:`resolver.config.converter`),
and its row in :data:`README_ORDER`, at the place of its row in the README's configuration
table (``tests/unit/test_config.py`` checks the order).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.name

from resolver.access import AccessRule
from resolver.config import converter as convert
from resolver.config.converter import Endpoint, IPNetwork
from resolver.paths import real_root_anchors, real_root_hints


def _default_listen(port: int) -> tuple[Endpoint, ...]:
    return (Endpoint("127.0.0.1", port), Endpoint("::1", port))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the resolver can be told. Timeouts are settings so tests can shrink them."""

    listen: tuple[Endpoint, ...] = _default_listen(53)
    root_hints: Path = field(default_factory=real_root_hints)
    allow_clients: tuple[AccessRule, ...] = ()
    """Added to the built-in rules (loopback allowed, everything else REFUSED)."""
    outbound_allow: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    )
    outbound_port: int = 53
    proxy_protocol_from: tuple[IPNetwork, ...] = ()
    """Sources (a load balancer such as dnsdist with ``useProxyProtocol``) whose datagrams
    and TCP connections must start with a PROXY protocol v2 header naming the real client,
    which access lists, rate limits, the query log and the metrics then see. Empty: no
    header is read from anyone (the plain listeners, nothing added to the hit path)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """``text`` or ``json`` (one JSON object per line)."""
    query_log: bool = False
    """Log every client query (client, name, type, rcode, transport, cached, seconds)."""
    upstream_timeout_s: float = 1.0
    client_deadline_s: float = 4.0
    tcp_idle_timeout_s: float = 10.0
    max_tcp_connections: int = 256
    answer_cache_bytes: int = 64 * 1024 * 1024
    serve_stale: bool = False
    serve_stale_client_timeout_s: float = 1.8
    """With ``serve_stale``: how long a client with an expired answer at hand waits for the
    refresh before the stale answer goes out (RFC 8767 §5 suggests 1.8 s; Unbound's
    serve-expired-client-timeout, 1800 ms)."""
    cache_file: Path | None = None
    """Save the caches here at shutdown and load them at start (off when unset)."""
    metrics: Endpoint | None = Endpoint("127.0.0.1", 9153)
    """Where Prometheus scrapes ``/metrics``; None (``off``) for no endpoint."""
    control: Endpoint | None = Endpoint("127.0.0.1", 9154)
    """The control endpoint (loopback only) for ``rootwalk cache``; None (``off``). Not 8953:
    that is unbound-control's, and the two may run side by side."""
    client_rate_limit: float = 0.0
    """Queries per second per client address (0: no limit), as Unbound's ip-ratelimit."""
    client_rate_burst: float = 0.0
    """Bucket size: queries a client may send at once (0: the same as the rate)."""
    rate_limit_action: str = "drop"
    """Over the limit: ``drop`` the query or answer ``refuse`` (REFUSED)."""
    use_0x20: bool = False
    """Randomise the letter case of upstream query names; replies must echo it exactly."""
    max_pending_queries: int = 100
    """Client queries being resolved at once; past this, new misses are dropped (counted), so
    a flood of never-seen names cannot queue work without bound. Unbound's
    num-queries-per-thread is 1024, but a miss costs Rootwalk about 15 times more CPU and a
    deeper queue only starves the socket: benchmarks/flood.py kept every cached name answered
    under a 2,000 qps random-subdomain flood with 64 and 100, and lost some with 128 and more.
    At about 1,000 misses per CPU-second, 100 in flight covers 100 ms of upstream latency."""
    workers: int = 1
    """Resolver processes sharing the listening ports (SO_REUSEPORT), each with its own cache."""
    rrset_cache_bytes: int = 64 * 1024 * 1024
    max_ttl: int = 86400
    """Longest time an RRset is cached, and the largest TTL a client sees (Unbound's
    cache-max-ttl)."""
    min_ttl: int = 0
    """Shortest time an RRset is cached (Unbound's cache-min-ttl); a TTL 0 record is cached
    only when this raises it."""
    max_negative_ttl: int = 3600
    """Longest time a negative answer is cached (Unbound's cache-max-negative-ttl)."""
    harden_glue: bool = True
    """Glue outside the zone of the server that sent it is never used (Unbound's
    harden-glue); off, it may still reach a name server when nothing else does."""
    qname_minimisation: bool = True
    """Ask each zone's servers only for the next label below their zone, with QTYPE A (RFC
    9156), falling back to the full name when a server mishandles that (Unbound's
    qname-minimisation: yes, qname-minimisation-strict: no)."""
    dnssec: bool = True
    """Validate DNSSEC (RFC 4033-4035): DO upstream, AD on secure answers, SERVFAIL with an
    Extended DNS Error on bogus ones."""
    trust_anchors: tuple[Path, ...] = field(default_factory=lambda: (real_root_anchors(),))
    """Files of DS or DNSKEY records in presentation format (Unbound's trust-anchor-file);
    the IANA root anchors by default."""
    negative_trust_anchors: tuple[dns.name.Name, ...] = ()
    """Zones not validated, with everything below them (RFC 7646)."""
    val_bogus_ttl_s: float = 60.0
    """How long a bogus verdict is kept before the zone is tried again (Unbound's
    val-bogus-ttl)."""
    aggressive_nsec: bool = True
    """Answer NXDOMAIN and NODATA from cached secure NSEC records (RFC 8198; Unbound's
    aggressive-nsec)."""
    shutdown_grace_s: float = 2.0
    """On SIGTERM or SIGINT: stop taking queries, then give those in flight this long to be
    answered before exiting (0: exit at once)."""
    tls_cert: Path | None = None
    """The PEM certificate (chain) served to DoT and DoH clients; re-read on SIGHUP."""
    tls_key: Path | None = None
    """The PEM private key of ``tls_cert``; re-read on SIGHUP."""
    dot_listen: Endpoint | None = None
    """DNS over TLS (RFC 7858) on this address, port 853 unless given; None (``off``)."""
    doh_listen: Endpoint | None = None
    """DNS over HTTPS (RFC 8484, HTTP/2, path ``/dns-query``) on this address, port 443
    unless given; None (``off``)."""


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "listen": convert.endpoints,
    "root_hints": convert.path,
    "allow_clients": convert.access_rules,
    "outbound_allow": convert.networks,
    "outbound_port": convert.port,
    "proxy_protocol_from": convert.networks,
    "log_level": convert.log_level,
    "log_format": convert.log_format,
    "query_log": convert.boolean,
    "upstream_timeout_s": convert.seconds,
    "client_deadline_s": convert.seconds,
    "tcp_idle_timeout_s": convert.seconds,
    "max_tcp_connections": convert.positive_int,
    "answer_cache_bytes": convert.positive_int,
    "serve_stale": convert.boolean,
    "serve_stale_client_timeout_s": convert.seconds,
    "cache_file": convert.path,
    "metrics": convert.optional_endpoint,
    "control": convert.control_endpoint,
    "workers": convert.positive_int,
    "max_pending_queries": convert.positive_int,
    "use_0x20": convert.boolean,
    "client_rate_limit": convert.rate,
    "client_rate_burst": convert.rate,
    "rate_limit_action": convert.rate_limit_action,
    "rrset_cache_bytes": convert.positive_int,
    "max_ttl": convert.ttl,
    "min_ttl": convert.ttl,
    "max_negative_ttl": convert.ttl,
    "harden_glue": convert.boolean,
    "qname_minimisation": convert.boolean,
    "dnssec": convert.boolean,
    "trust_anchors": convert.paths,
    "negative_trust_anchors": convert.domain_names,
    "val_bogus_ttl_s": convert.seconds,
    "aggressive_nsec": convert.boolean,
    "shutdown_grace_s": convert.grace_seconds,
    "tls_cert": convert.path,
    "tls_key": convert.path,
    "dot_listen": convert.dot_endpoint,
    "doh_listen": convert.doh_endpoint,
}
assert set(CONVERTERS) == {f.name for f in dataclasses.fields(Settings)}

README_ORDER: tuple[str, ...] = (
    "listen",
    "root_hints",
    "allow_clients",
    "outbound_allow",
    "outbound_port",
    "proxy_protocol_from",
    "log_level",
    "upstream_timeout_s",
    "client_deadline_s",
    "tcp_idle_timeout_s",
    "max_tcp_connections",
    "answer_cache_bytes",
    "rrset_cache_bytes",
    "serve_stale",
    "serve_stale_client_timeout_s",
    "cache_file",
    "metrics",
    "control",
    "workers",
    "use_0x20",
    "max_pending_queries",
    "client_rate_limit",
    "client_rate_burst",
    "rate_limit_action",
    "log_format",
    "query_log",
    "max_ttl",
    "min_ttl",
    "max_negative_ttl",
    "harden_glue",
    "qname_minimisation",
    "dnssec",
    "trust_anchors",
    "negative_trust_anchors",
    "val_bogus_ttl_s",
    "aggressive_nsec",
    "shutdown_grace_s",
    "tls_cert",
    "tls_key",
    "dot_listen",
    "doh_listen",
)
"""The rows of the README's configuration table, in order (a test keeps the two in step);
``check-config`` prints the settings in this order."""
assert sorted(README_ORDER) == sorted(CONVERTERS)

ENV_PREFIX = "ROOTWALK_"

NON_SETTING_VARIABLES = frozenset(
    {
        "ROOTWALK_ZONES",  # resolver/paths.py: where the bundled zone files are
        "ROOTWALK_PEER",  # tests/conftest.py: 0 leaves out the differential test against Unbound
        "ROOTWALK_BENCH_ONLY",  # benchmarks/cache_benchmark.py: Rootwalk only, no Unbound
        "ROOTWALK_BENCH_PROFILE",  # benchmarks/cache_benchmark.py: py-spy stacks to a file
        "ROOTWALK_BENCH_PROFILE_PHASE",
        "ROOTWALK_BENCH_PROFILE_NATIVE",
    }
)
"""``ROOTWALK_*`` variables that are not settings but are read elsewhere; any other name with
the prefix that is not a setting's is an error."""
