"""Classifying a scrubbed reply: answer, CNAME, NXDOMAIN, NODATA, referral or lame.

The categories follow RFC 1034 §5.3.3 step 4 and RFC 2308 §2 (negative answers), with
Unbound's names where they help (``iter_utils``/``response_type``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import NamedTuple

import dns.flags
import dns.name
import dns.rcode
import dns.rdatatype

from resolver.core.dname import agrees, applies_to, synthesised_cname
from resolver.core.scrub import ScrubbedReply, scrub_reply
from resolver.model import ZoneCut, addresses_of, cut_from_ns
from resolver.names import NameKey, is_at_or_below, key_of_wire, name_key, name_wire
from resolver.records import Reply, WireRRset, name_from_wire

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
    YXDOMAIN = "yxdomain"  # a DNAME rewrite longer than 255 octets (RFC 6672 §2.2)


class ClassifiedReply(NamedTuple):
    kind: ReplyKind
    chain: tuple[WireRRset, ...] = ()
    """CNAMEs followed inside this reply, then the final RRsets for ANSWER."""
    next_qname: dns.name.Name | None = None
    """The name the chain ends at (the name still to resolve for CNAME)."""
    next_key: NameKey | None = None
    """``next_qname``'s key (set whenever ``next_qname`` is)."""
    soa: WireRRset | None = None
    referral: ZoneCut | None = None
    referral_rrsets: tuple[WireRRset, ...] = ()
    """The NS RRset of a referral and its glue, to be cached at their ranks."""
    authoritative: bool = False
    detail: str = ""


def negative_soa(rrset: WireRRset) -> WireRRset:
    """The SOA of a negative answer with TTL min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, §5)."""
    return rrset.with_ttl(min(rrset.ttl, rrset.soa_minimum()))


class _Chain(NamedTuple):
    rrsets: list[WireRRset]
    final_name: dns.name.Name
    final_key: NameKey
    answered: bool = False
    looped: bool = False
    overflow: bool = False
    """A DNAME would rewrite the name past 255 octets (RFC 6672 §2.2)."""
    replaced: bool = False
    """A server's CNAME disagreed with its DNAME and was replaced (RFC 6672 §3.4)."""


def _dname_above(answer: Sequence[WireRRset], key: NameKey) -> WireRRset | None:
    """The first DNAME of the answer section that redirects ``key`` (RFC 6672 §2.3)."""
    for rrset in answer:
        if rrset.rdtype == dns.rdatatype.DNAME and rrset.rdatas and applies_to(rrset, key):
            return rrset
    return None


def _follow_chain(
    scrubbed: ScrubbedReply,
    qname: dns.name.Name,
    qname_key: NameKey,
    qtype: dns.rdatatype.RdataType,
) -> _Chain:
    """Follow DNAMEs and CNAMEs through the answer section (RFC 1034 §4.3.2 step 3a, 3c as
    RFC 6672 §3.2 amends it, §5.3.3 step 4c): a DNAME above the current name comes first
    and stands for the CNAME synthesised from it, whatever CNAME the server sent (§3.4)."""
    chain: list[WireRRset] = []
    current = qname
    current_key = qname_key
    seen = {current_key}
    has_dname = any(rrset.rdtype == dns.rdatatype.DNAME for rrset in scrubbed.answer)
    current_wire = name_wire(qname) if has_dname else b""  # letter case kept, for DNAME only
    replaced = False
    while True:
        cname = None
        dname = _dname_above(scrubbed.answer, current_key) if has_dname else None
        if dname is not None:
            chain.append(dname)
            cname = synthesised_cname(current_wire, dname)
            if cname is None:
                return _Chain(chain, current, current_key, overflow=True, replaced=replaced)
            sent = _rrset_at(scrubbed.answer, current_key, dns.rdatatype.CNAME)
            replaced |= sent is not None and not agrees(sent, cname)
            if qtype == dns.rdatatype.CNAME:
                chain.append(cname)
                return _Chain(chain, current, current_key, answered=True, replaced=replaced)
        else:
            matching = [
                rrset
                for rrset in scrubbed.answer
                if rrset.owner_key == current_key
                and (rrset.rdtype == qtype or (qtype == dns.rdatatype.ANY and len(rrset) > 0))
            ]
            if matching:
                chain.extend(matching)
                return _Chain(chain, current, current_key, answered=True, replaced=replaced)
            cname = _rrset_at(scrubbed.answer, current_key, dns.rdatatype.CNAME)
            if cname is None:
                return _Chain(chain, current, current_key, replaced=replaced)
        chain.append(cname)
        current_wire = cname.rdatas[0]
        current = name_from_wire(current_wire)
        current_key = key_of_wire(current_wire)
        if current_key in seen:
            return _Chain(chain, current, current_key, looped=True, replaced=replaced)
        seen.add(current_key)


def _rrset_at(answer: Sequence[WireRRset], key: NameKey, rdtype: int) -> WireRRset | None:
    return next((r for r in answer if r.owner_key == key and r.rdtype == rdtype), None)


def classify_reply(
    message: Reply,
    zone: dns.name.Name,
    qname: dns.name.Name,
    qtype: dns.rdatatype.RdataType,
    *,
    used_edns: bool,
    harden_glue: bool = True,
    zone_key: NameKey | None = None,
    qname_key: NameKey | None = None,
) -> ClassifiedReply:
    """What a reply from a server of ``zone`` to ``qname``/``qtype`` means for the walk.
    The machine passes the keys its ``SendQuery`` carries; left out, they are made here."""
    rcode = message.rcode
    if rcode == dns.rcode.FORMERR and used_edns:
        return ClassifiedReply(ReplyKind.EDNS_UNSUPPORTED, detail="FORMERR to EDNS")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN):
        return _server_error(rcode)

    if zone_key is None:
        zone_key = name_key(zone)
    if qname_key is None:
        qname_key = name_key(qname)
    scrubbed = scrub_reply(message, zone, zone_key, harden_glue=harden_glue)
    aa = bool(message.flags & _FLAG_AA)
    followed = _follow_chain(scrubbed, qname, qname_key, qtype)
    if followed.overflow:  # RFC 6672 §2.2, whatever RCODE the server chose
        return ClassifiedReply(
            ReplyKind.YXDOMAIN,
            tuple(followed.rrsets),
            followed.final_name,
            followed.final_key,
            authoritative=aa,
        )
    if rcode == dns.rcode.YXDOMAIN:  # only a DNAME that overflows explains it
        return _server_error(rcode)
    classified = _classify_followed(message, scrubbed, zone_key, followed, aa)
    if followed.replaced:
        return classified._replace(detail="CNAME disagreed with its DNAME and was replaced")
    return classified


def _classify_followed(
    message: Reply, scrubbed: ScrubbedReply, zone_key: NameKey, followed: _Chain, aa: bool
) -> ClassifiedReply:
    """The kind of a NOERROR or NXDOMAIN reply whose answer section has been followed."""
    rcode = message.rcode
    chain, final_name, final_key = followed.rrsets, followed.final_name, followed.final_key
    answered, looped = followed.answered, followed.looped
    if looped:
        return ClassifiedReply(
            ReplyKind.CNAME_LOOP, tuple(chain), final_name, final_key, authoritative=aa
        )
    if answered:
        return ClassifiedReply(
            ReplyKind.ANSWER, tuple(chain), final_name, final_key, authoritative=aa
        )
    if chain and not is_at_or_below(final_key, zone_key):
        return ClassifiedReply(
            ReplyKind.CNAME, tuple(chain), final_name, final_key, authoritative=aa
        )

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
            ReplyKind.NXDOMAIN, tuple(chain), final_name, final_key, negative, authoritative=aa
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
            return ClassifiedReply(
                ReplyKind.CNAME, tuple(chain), final_name, final_key, authoritative=aa
            )
        targets = delegation.target_keys()
        glue = tuple(rrset for rrset in scrubbed.additional if rrset.owner_key in targets)
        cut = cut_from_ns(delegation, list(glue))
        for ns in cut.glueless():
            if outside := addresses_of(list(scrubbed.outside_glue), ns):
                cut.fallback[ns] = outside
        return ClassifiedReply(
            ReplyKind.REFERRAL,
            next_qname=final_name,
            next_key=final_key,
            referral=cut,
            referral_rrsets=(delegation, *glue),
        )
    if chain and negative is None:
        # RFC 1034 §5.3.3 step 4c: a CNAME whose target the reply neither answers nor denies
        # (no SOA): ask again for the target from the top.
        return ClassifiedReply(
            ReplyKind.CNAME, tuple(chain), final_name, final_key, authoritative=aa
        )
    if negative is None:
        if refers_upward(message, zone_key):
            return ClassifiedReply(ReplyKind.LAME, detail="referral upward")
        if not aa and message.flags & _FLAG_RA:
            return ClassifiedReply(ReplyKind.LAME, detail="recursive, not authoritative")
    # RFC 2308 §2.2: NOERROR with nothing relevant in the answer is NODATA, with or without
    # an SOA (records for other names or types were left out above, never used).
    return ClassifiedReply(
        ReplyKind.NODATA, tuple(chain), final_name, final_key, negative, authoritative=aa
    )


def _server_error(rcode: int) -> ClassifiedReply:
    return ClassifiedReply(
        ReplyKind.SERVER_ERROR, detail=dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    )


def refers_upward(message: Reply, zone_key: NameKey) -> bool:
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
