"""DNAME redirection (RFC 6672) as pure functions on wire names.

A DNAME at ``owner`` maps every name strictly below ``owner`` to the same labels below its
target (§2.2); the owner itself is not redirected. A resolver that meets a DNAME uses the
CNAME it synthesises from it, with the DNAME's TTL (§3.1 as updated by §3.4: a CNAME that
a server sends beside the DNAME and that does not match is ignored), and a rewritten name
longer than 255 octets is the server's YXDOMAIN (§2.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dns.rdatatype

from resolver.names import NameKey, is_at_or_below
from resolver.records import WireRRset

MAX_NAME_OCTETS = 255
"""The longest name in wire form, root label included (RFC 1035 §3.1)."""


def applies_to(dname: WireRRset, key: NameKey) -> bool:
    """True when the DNAME redirects ``key``: a name strictly below the DNAME's owner (RFC 6672 §2.3: the owner itself is not redirected)."""
    return key != dname.owner_key and is_at_or_below(key, dname.owner_key)


def rewritten_wire(name_wire: bytes, dname: WireRRset) -> bytes | None:
    """``name_wire`` (uncompressed, letter case kept) with the DNAME's owner suffix replaced
    by its target (RFC 6672 §2.2), or None when the result would be longer than 255 octets
    (the YXDOMAIN case). The caller checks :func:`applies_to` first."""
    if is_overflow(name_wire, dname):
        return None
    return name_wire[: len(name_wire) - len(dname.owner_key)] + dname.rdatas[0]


def is_overflow(name_wire: bytes, dname: WireRRset) -> bool:
    """True when redirecting ``name_wire`` through ``dname`` makes a name over 255 octets
    (RFC 6672 §2.2: the server answers YXDOMAIN)."""
    return len(name_wire) - len(dname.owner_key) + len(dname.rdatas[0]) > MAX_NAME_OCTETS


def synthesised_cname(name_wire: bytes, dname: WireRRset) -> WireRRset | None:
    """The CNAME a DNAME stands for at ``name_wire``: owned by that name, pointing at the
    rewritten name, with the DNAME's TTL (RFC 6672 §3.1, §3.4); None on overflow."""
    target = rewritten_wire(name_wire, dname)
    if target is None:
        return None
    return WireRRset(None, dns.rdatatype.CNAME, dname.ttl, (target,), owner=name_wire)


def agrees(cname: WireRRset, synthesised: WireRRset) -> bool:
    """True when a server's CNAME says what the DNAME says: same owner, one record, the same
    target (names compared without regard to case, RFC 4343)."""
    return (
        cname.owner_key == synthesised.owner_key
        and len(cname.rdatas) == 1
        and cname.rdatas[0].lower() == synthesised.rdatas[0].lower()
    )


def cacheable(chain: Iterable[WireRRset]) -> Iterator[WireRRset]:
    """The RRsets of a chain worth keeping in the RRset cache: all but the CNAMEs
    synthesised from a DNAME (each follows its DNAME), which the cached DNAME makes again
    for any name below it (as Unbound synthesises them from a cached DNAME)."""
    after_dname = False
    for rrset in chain:
        if not (after_dname and rrset.rdtype == dns.rdatatype.CNAME):
            yield rrset
        after_dname = rrset.rdtype == dns.rdatatype.DNAME
