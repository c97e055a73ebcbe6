"""The NSEC cache (RFC 8198's store): canonical order, wrap-around, bounds and flush."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from resolver.cache.nsec import NsecCache
from resolver.records import WireRRset

ZONE = dns.name.from_text("z.test.")


def _nsec(owner: str, nxt: str) -> WireRRset:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC, f"{nxt} A RRSIG NSEC")
    wire = rdata.to_wire()
    assert wire is not None
    return WireRRset(dns.name.from_text(owner), 47, 300, (wire,))


SOA = WireRRset(ZONE, 6, 300, (b"\x00\x00" + bytes(20),))
SIGS = WireRRset(ZONE, 46, 300, (bytes(20),))


def _filled(max_records: int = 100) -> NsecCache:
    cache = NsecCache(max_records)
    for owner, nxt in [
        ("z.test.", "b.z.test."),
        ("b.z.test.", "m.z.test."),
        ("m.z.test.", "z.test."),
    ]:
        cache.put(
            ZONE, _nsec(owner, nxt), SIGS, 1000.0, soa=SOA, soa_sigs=SIGS, soa_expires_at=1000.0
        )
    return cache


def test_the_nsec_at_or_before_a_name_in_canonical_order_wrapping_to_the_last() -> None:
    cache = _filled()
    found = cache.zone_of(dns.name.from_text("x.y.c.z.test."), now=0.0)
    assert found is not None and found[0] == ZONE
    entry = found[1]
    for name, owner in [("c.z.test.", "b.z.test."), ("zz.z.test.", "m.z.test.")]:
        found_nsec = cache.at_or_before(entry, dns.name.from_text(name), 0.0)
        assert found_nsec is not None and str(found_nsec.nsec.name) == owner
    assert cache.at_or_before(entry, dns.name.from_text("c.z.test."), 1000.0) is None  # expired
    assert cache.zone_of(dns.name.from_text("other.test."), 0.0) is None


def test_bounded_and_flushed() -> None:
    cache = _filled(max_records=2)
    assert len(cache) == 2
    assert cache.flush(dns.name.from_text("b.z.test.")) == 2  # a name inside drops the zone
    assert len(cache) == 0
    cache = _filled()
    assert cache.flush() == 3 and cache.zone_of(ZONE, 0.0) is None
