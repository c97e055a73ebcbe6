"""Trust anchors (RFC 4033 §3.4, RFC 9718): DS or DNSKEY records in presentation format.

The edge reads the files (``zones/root-anchors.ds`` ships the IANA root anchors) and hands
the text here; this module only parses it. Each line is a zone file record, ``owner [TTL]
[IN] DS|DNSKEY rdata`` (the format of Unbound's ``trust-anchor-file``); owners are absolute
or relative to the root; ``;`` comments and blank lines are skipped. Other types are
errors, so a typo cannot silently leave a zone without its anchor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zonefile
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.core.dnssec.security import Verdict
from resolver.core.dnssec.verify import verify_dnskeys
from resolver.limits import ValidationWork


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """The anchors of one zone: DS records, DNSKEY records, or both."""

    zone: dns.name.Name
    ds: tuple[DS, ...] = ()
    dnskeys: tuple[DNSKEY, ...] = field(default=())

    def verify(
        self,
        dnskeys: dns.rrset.RRset,
        sigs: Sequence[RRSIG],
        *,
        now: float,
        work: ValidationWork,
    ) -> Verdict:
        """Whether the zone's DNSKEY RRset is secure from this anchor (RFC 4035 §5)."""
        return verify_dnskeys(
            dnskeys, sigs, self.zone, now=now, work=work, ds=self.ds, trusted_keys=self.dnskeys
        )


class AnchorError(ValueError):
    """Text that holds something other than DS or DNSKEY records; says which line."""


def parse_anchors(text: str, source: str = "trust anchors") -> dict[dns.name.Name, TrustAnchor]:
    """The trust anchors in ``text``, by zone. AnchorError names ``source`` and the line of
    the first record that is not a DS or DNSKEY of class IN, or that does not parse."""
    try:
        rrsets = _read_anchors(text)
    except AnchorError as exc:
        raise AnchorError(f"{source}: line {_first_bad_line(text)}: {exc}") from exc
    ds: dict[dns.name.Name, list[DS]] = {}
    keys: dict[dns.name.Name, list[DNSKEY]] = {}
    for rrset in rrsets:
        if rrset.rdtype == dns.rdatatype.DS:
            ds.setdefault(rrset.name, []).extend(cast(DS, rd) for rd in rrset)
        else:
            keys.setdefault(rrset.name, []).extend(cast(DNSKEY, rd) for rd in rrset)
    return {
        zone: TrustAnchor(zone, tuple(ds.get(zone, ())), tuple(keys.get(zone, ())))
        for zone in sorted({*ds, *keys})
    }


def _read_anchors(text: str) -> list[dns.rrset.RRset]:
    """The records of ``text``; AnchorError (without a line) when one does not parse or is
    not a DS or DNSKEY of class IN."""
    try:
        rrsets = dns.zonefile.read_rrsets(
            text, origin=dns.name.root, relativize=False, default_ttl=0, rdclass=None
        )
    except dns.exception.DNSException as exc:
        raise AnchorError(_DNSPYTHON_PLACE.sub("", str(exc))) from exc
    for rrset in rrsets:
        if rrset.rdclass != dns.rdataclass.IN or rrset.rdtype not in (
            dns.rdatatype.DS,
            dns.rdatatype.DNSKEY,
        ):
            raise AnchorError(
                f"{rrset.name} {rrset.rdtype.name}: only DS and DNSKEY records are trust anchors"
            )
    return rrsets


_DNSPYTHON_PLACE = re.compile(r"^<input>:\d+: ")
"""dnspython's own place in its message: its line is off by one when it read the line's
end before it failed, so the line is found again by :func:`_first_bad_line`."""


def _first_bad_line(text: str) -> int:
    """The first line of ``text`` at which its first lines no longer read as trust anchors
    (lines whose record is still open, inside parentheses, read on). Only on the error
    path: a trust anchor file is a few lines."""
    lines = text.splitlines()
    for count in range(1, len(lines) + 1):
        try:
            _read_anchors("\n".join(lines[:count]) + "\n")
        except AnchorError as exc:
            if "parenthes" not in str(exc) and "unexpected end" not in str(exc):
                return count
    return len(lines)


def closest_anchor(
    anchors: dict[dns.name.Name, TrustAnchor], name: dns.name.Name
) -> TrustAnchor | None:
    """The anchor of the closest enclosing zone of ``name`` (RFC 4035 §4.3: without one
    the name's state is indeterminate)."""
    while True:
        found = anchors.get(name)
        if found is not None or name == dns.name.root:
            return found
        name = name.parent()
