"""Scrubbing: keep only what a server may speak for (RFC 2181 §5.4.1, RFC 1034 §4.3.2).

A server asked about zone Z is trusted only for names at or below Z. Anything else in its
reply (an A record for a name in another TLD, NS records for a parent, far-away glue) is
dropped here, before classification, so it can never be used or cached.
"""

from __future__ import annotations

from typing import NamedTuple

import dns.name
import dns.rdatatype

from resolver.names import NameKey, is_at_or_below, name_key
from resolver.records import Reply, WireRRset

_ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


class ScrubbedReply(NamedTuple):
    """The parts of a reply that are in bailiwick for the zone asked."""

    answer: tuple[WireRRset, ...]
    authority: tuple[WireRRset, ...]
    additional: tuple[WireRRset, ...]
    outside_glue: tuple[WireRRset, ...] = ()
    """Addresses of the named servers outside the zone, kept only when ``harden_glue`` is
    off, and then only as a last resort for reaching them (never cached, never answered)."""


def scrub_reply(
    message: Reply,
    zone: dns.name.Name,
    zone_key: NameKey | None = None,
    *,
    harden_glue: bool = True,
) -> ScrubbedReply:
    """Drop every RRset the servers of ``zone`` may not speak for.

    * answer: RRsets owned at or below the zone;
    * authority: NS and SOA RRsets owned at or below the zone (an NS for a parent is a
      poisoning attempt or an upward referral, never data);
    * additional: address records owned at or below the zone, for name servers named in
      the kept authority section (glue, RFC 9499). Unbound's ``harden-glue: yes``, our
      default; with ``harden_glue`` off, glue outside the zone is handed on apart
      (``outside_glue``), to break an address cycle when nothing else reaches the servers.
    """
    if zone_key is None:
        zone_key = name_key(zone)
    answer = tuple(r for r in message.answer if is_at_or_below(r.owner_key, zone_key))
    authority = tuple(
        rrset
        for rrset in message.authority
        if rrset.rdtype in (dns.rdatatype.NS, dns.rdatatype.SOA)
        and is_at_or_below(rrset.owner_key, zone_key)
    )
    ns_targets: set[NameKey] = set()
    for rrset in authority:
        if rrset.rdtype == dns.rdatatype.NS:
            ns_targets |= rrset.target_keys()
    glue = [
        rrset
        for rrset in message.additional
        if rrset.rdtype in _ADDRESS_TYPES and rrset.owner_key in ns_targets
    ]
    additional = tuple(r for r in glue if is_at_or_below(r.owner_key, zone_key))
    if harden_glue or len(additional) == len(glue):
        return ScrubbedReply(answer, authority, additional)
    outside = tuple(r for r in glue if not is_at_or_below(r.owner_key, zone_key))
    return ScrubbedReply(answer, authority, additional, outside)
