"""Classifying a scrubbed reply: answer, CNAME, NXDOMAIN, NODATA, referral or lame.

The categories follow RFC 1034 §5.3.3 step 4 and RFC 2308 §2 (negative answers), with
Unbound's names where they help (``iter_utils``/``response_type``).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import dns.flags
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.core.scrub import ScrubbedReply, scrub_reply
from resolver.core.zonecut import ZoneCut, addresses_of, cut_from_ns
from resolver.names import is_at_or_below, lowered_wire
from resolver.records import Reply, WireRRset

_FLAG_AA = int(dns.flags.AA)  # a plain int: int & Flag runs Flag.__rand__ in Python
_FLAG_RA = int(dns.flags.RA)


class ReplyKind(enum.Enum):
    ANSWER = "answer"
    CNAME = "cname"  # the chain leaves the zone asked: restart at the new name
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFERRAL = "referral"
    LAME = "lame"  # the server does not serve the zone it was asked about
    SERVER_ERROR = "server error"  # SERVFAIL, REFUSED, NOTIMP, FORMERR without EDNS...
    EDNS_UNSUPPORTED = "edns unsupported"  # FORMERR to a query with EDNS (RFC 6891 §7)
    CNAME_LOOP = "cname loop"


class ClassifiedReply(NamedTuple):
    kind: ReplyKind
    chain: tuple[WireRRset, ...] = ()
    """CNAMEs followed inside this reply, then the final RRsets for ANSWER."""
    next_qname: dns.name.Name | None = None
    """The name the chain ends at (the name still to resolve for CNAME)."""
    soa: WireRRset | None = None
    referral: ZoneCut | None = None
    referral_rrsets: tuple[WireRRset, ...] = ()
    """The NS RRset of a referral and its glue, to be cached at their ranks."""
    authoritative: bool = False
    detail: str = ""


def negative_soa(rrset: WireRRset) -> WireRRset:
    """The SOA of a negative answer with TTL min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, §5)."""
    return rrset.with_ttl(min(rrset.ttl, rrset.soa_minimum()))


def _follow_chain(
    scrubbed: ScrubbedReply, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
) -> tuple[list[WireRRset], dns.name.Name, bool, bool]:
    """Follow CNAMEs through the answer section (RFC 1034 §4.3.2 step 3a, §5.3.3 step 4c).

    Returns the RRsets used, the final name, whether the final name was answered, and
    whether the chain looped.
    """
    chain: list[WireRRset] = []
    current = qname
    current_key = lowered_wire(qname)
    seen = {current_key}
    while True:
        matching = [
            rrset
            for rrset in scrubbed.answer
            if rrset.owner_key == current_key
            and (rrset.rdtype == qtype or (qtype == dns.rdatatype.ANY and len(rrset) > 0))
        ]
        if matching:
            chain.extend(matching)
            return chain, current, True, False
        cname = next(
            (
                rrset
                for rrset in scrubbed.answer
                if rrset.owner_key == current_key and rrset.rdtype == dns.rdatatype.CNAME
            ),
            None,
        )
        if cname is None:
            return chain, current, False, False
        chain.append(cname)
        current = cname.target()
        current_key = lowered_wire(current)
        if current_key in seen:
            return chain, current, False, True
        seen.add(current_key)


def classify_reply(
    message: Reply,
    zone: dns.name.Name,
    qname: dns.name.Name,
    qtype: dns.rdatatype.RdataType,
    *,
    used_edns: bool,
    harden_glue: bool = True,
) -> ClassifiedReply:
    """What a reply from a server of ``zone`` to ``qname``/``qtype`` means for the walk."""
    rcode = message.rcode
    if rcode == dns.rcode.FORMERR and used_edns:
        return ClassifiedReply(ReplyKind.EDNS_UNSUPPORTED, detail="FORMERR to EDNS")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return ClassifiedReply(
            ReplyKind.SERVER_ERROR, detail=dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
        )

    zone_key = lowered_wire(zone)
    scrubbed = scrub_reply(message, zone, zone_key, harden_glue=harden_glue)
    aa = bool(message.flags & _FLAG_AA)
    chain, final_name, answered, looped = _follow_chain(scrubbed, qname, qtype)
    final_key = lowered_wire(final_name)
    if looped:
        return ClassifiedReply(ReplyKind.CNAME_LOOP, tuple(chain), final_name, authoritative=aa)
    if answered:
        return ClassifiedReply(ReplyKind.ANSWER, tuple(chain), final_name, authoritative=aa)
    if chain and not is_at_or_below(final_key, zone_key):
        return ClassifiedReply(ReplyKind.CNAME, tuple(chain), final_name, authoritative=aa)

    soa = next(
        (
            rrset
            for rrset in scrubbed.authority
            if rrset.rdtype == dns.rdatatype.SOA and is_at_or_below(final_key, rrset.owner_key)
        ),
        None,
    )
    negative = negative_soa(soa) if soa is not None and len(soa) else None
    if rcode == dns.rcode.NXDOMAIN:
        return ClassifiedReply(
            ReplyKind.NXDOMAIN, tuple(chain), final_name, negative, authoritative=aa
        )

    delegation = next(
        (
            rrset
            for rrset in scrubbed.authority
            if rrset.rdtype == dns.rdatatype.NS
            and rrset.owner_key != zone_key
            and is_at_or_below(final_key, rrset.owner_key)
        ),
        None,
    )
    if delegation is not None and negative is None:
        if chain:  # an in-zone CNAME target that is delegated further down
            return ClassifiedReply(ReplyKind.CNAME, tuple(chain), final_name, authoritative=aa)
        targets = delegation.target_keys()
        glue = tuple(rrset for rrset in scrubbed.additional if rrset.owner_key in targets)
        cut = cut_from_ns(delegation, list(glue))
        for ns in cut.glueless():
            if outside := addresses_of(list(scrubbed.outside_glue), ns):
                cut.fallback[ns] = outside
        return ClassifiedReply(
            ReplyKind.REFERRAL,
            next_qname=final_name,
            referral=cut,
            referral_rrsets=(delegation, *glue),
        )
    if chain and negative is None:
        # RFC 1034 §5.3.3 step 4c: a CNAME whose target the reply neither answers nor denies
        # (no SOA): ask again for the target from the top.
        return ClassifiedReply(ReplyKind.CNAME, tuple(chain), final_name, authoritative=aa)
    if negative is None:
        if refers_upward(message, zone_key):
            return ClassifiedReply(ReplyKind.LAME, detail="referral upward")
        if not aa and message.flags & _FLAG_RA:
            return ClassifiedReply(ReplyKind.LAME, detail="recursive, not authoritative")
    # RFC 2308 §2.2: NOERROR with nothing relevant in the answer is NODATA, with or without
    # an SOA (records for other names or types were left out above, never used).
    return ClassifiedReply(ReplyKind.NODATA, tuple(chain), final_name, negative, authoritative=aa)


def refers_upward(message: Reply, zone_key: bytes) -> bool:
    """An NS RRset in the authority section for the zone asked or one of its ancestors
    (the root included): the server does not serve the zone and points back up, so it is
    lame, whatever its AA bit says (Unbound's ``RESPONSE_TYPE_LAME``). Scrubbing drops such
    records, so this reads the reply as received. An authoritative server may list its own
    zone's NS records beside an answer or an SOA, so only replies without either are judged."""
    return any(
        rrset.rdtype == dns.rdatatype.NS
        and is_at_or_below(zone_key, rrset.owner_key)
        and (rrset.owner_key != zone_key or not message.flags & _FLAG_AA)
        for rrset in message.authority
    )
