"""What a SIGHUP reload can change: the parts built from Settings both at start and on a
reload (the validator, the rate limiter), and which settings change at once
(:data:`LIVE_SETTINGS`) or only on restart (:func:`needs_restart`)."""

from __future__ import annotations

import dataclasses

from resolver.config import Settings
from resolver.core.dnssec.keys import Validator
from resolver.files import load_trust_anchors
from resolver.ratelimit import RateLimiter

LIVE_SETTINGS = frozenset(
    {
        "allow_clients", "outbound_allow", "upstream_timeout_s", "client_deadline_s",
        "tcp_idle_timeout_s", "max_tcp_connections", "serve_stale", "log_level", "query_log",
        "client_rate_limit", "client_rate_burst", "rate_limit_action", "max_pending_queries",
        "qname_minimisation", "serve_stale_client_timeout_s", "shutdown_grace_s",
        "dnssec", "trust_anchors", "negative_trust_anchors", "val_bogus_ttl_s",
        "aggressive_nsec", "tls_cert", "tls_key",
    }
)  # fmt: skip
"""The settings :meth:`resolver.server.ResolverService.apply` changes on a reload; the
others (listen addresses, endpoints, cache sizes, workers) need a restart."""


def needs_restart(old: Settings, new: Settings) -> list[str]:
    """The settings that differ between ``old`` and ``new`` but change only on restart."""
    return [
        field.name
        for field in dataclasses.fields(new)
        if field.name not in LIVE_SETTINGS and getattr(new, field.name) != getattr(old, field.name)
    ]


def validator_for(settings: Settings) -> Validator:
    """The validator ``settings`` ask for (with ``dnssec = false``, one that validates
    nothing but keeps the DNSSEC records for DO clients); reads the trust anchor files, so a bad one raises :class:`resolver.core.dnssec.anchor.AnchorError` (a
    ValueError naming the file and line)."""
    if not settings.dnssec:
        return Validator({}, enabled=False, aggressive_nsec=False)
    return Validator(
        load_trust_anchors(settings.trust_anchors),
        bogus_ttl_s=settings.val_bogus_ttl_s,
        negative_anchors=frozenset(settings.negative_trust_anchors),
        aggressive_nsec=settings.aggressive_nsec,
    )


def judges_alike(old: Validator | None, new: Validator) -> bool:
    """Whether ``new`` would judge every answer as ``old`` does: both off, or both on with
    the same trust anchors (the files' records, not their names) and negative trust
    anchors."""
    if old is None:
        return False
    return (old.enabled, old.anchors, old.negative_anchors) == (
        new.enabled,
        new.anchors,
        new.negative_anchors,
    )


def rate_limiter_for(settings: Settings) -> RateLimiter | None:
    if not settings.client_rate_limit:
        return None
    burst = settings.client_rate_burst or settings.client_rate_limit
    return RateLimiter(settings.client_rate_limit, burst)
