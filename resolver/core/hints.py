"""Root hints (RFC 1034 §5.3.2 SBELT; RFC 8109 priming without the priming query).

Sans-IO: the text of a hints file goes in, the root zone cut comes out. Reading the file is
the edge's work (``resolver/files.py``), which reports an unreadable file as a
:class:`HintsError` too.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from resolver.model import ZoneCut, cut_from_ns
from resolver.records import WireRRset


class HintsError(ValueError):
    """The root hints file is unreadable or names no usable root server."""


def root_cut_from_hints(text: str, source: str = "<hints>") -> ZoneCut:
    """Parse a root hints master file (names relative to the root) into the root zone cut."""
    try:
        zone = dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
    except dns.exception.DNSException as exc:
        raise HintsError(f"{source}: {exc}") from exc
    ns_rrset = zone.get_rrset(dns.name.root, dns.rdatatype.NS)
    if ns_rrset is None:
        raise HintsError(f"{source}: no NS records for the root")
    address_rrsets = [
        rrset
        for name, rdataset in zone.iterate_rdatasets()
        if rdataset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rrset in [zone.get_rrset(name, rdataset.rdtype)]
        if rrset is not None
    ]
    cut = cut_from_ns(
        WireRRset.from_rrset(ns_rrset), [WireRRset.from_rrset(r) for r in address_rrsets]
    )
    if not cut.addresses():
        raise HintsError(f"{source}: no addresses for any root server")
    return cut
