"""RFC 8198 §5.2 with NSEC3 (resolver/core/dnssec/aggressive.py, resolver/cache/nsec.py) on
chains built in the test: what is kept (no opt-out, iterations within the limit), what is
synthesised (covering and matching), what is refused, and the hash budget."""

from __future__ import annotations

import base64

import dns.dnssec
import dns.name
import dns.rcode
import dns.rrset

from resolver.cache.nsec import NsecCache
from resolver.core.dnssec.aggressive import keep_nsecs, nsec3_params, synthesise
from resolver.limits import ValidationLimits, ValidationWork
from resolver.names import name_wire
from resolver.records import WireRRset
from tests.unit.dnssec_lab import NOW, ZONE, name, nsec3_chain

_NSEC3, _RRSIG, _SOA = 50, 46, 6
NAMES = {"@": "NS SOA DNSKEY NSEC3PARAM", "a": "A", "b.c": "A", "c": "", "d": "NS DS"}
"""example.: a name with A, an empty non-terminal c, a signed delegation d."""


def _rrsig(owner: dns.name.Name, covered: int, ttl: int = 300) -> WireRRset:
    rdata = (
        covered.to_bytes(2, "big")
        + bytes([13, len(owner.labels) - 1])
        + ttl.to_bytes(4, "big")
        + (NOW + 86_400).to_bytes(4, "big")
        + (NOW - 86_400).to_bytes(4, "big")
        + (12345).to_bytes(2, "big")
        + name_wire(ZONE)
        + bytes(64)
    )
    return WireRRset(owner, _RRSIG, ttl, (rdata,))


SOA = WireRRset.from_rrset(
    dns.rrset.from_text(ZONE, 300, "IN", "SOA", "ns. host. 1 1800 900 604800 300")
)


def _proof(chain: list[dns.rrset.RRset]) -> tuple[WireRRset, ...]:
    records = [WireRRset.from_rrset(rrset) for rrset in chain]
    sigs = [_rrsig(rrset.name, _NSEC3) for rrset in chain]
    return (*records, *sigs, _rrsig(ZONE, _SOA))


def _cache(chain: list[dns.rrset.RRset], now: float = NOW) -> NsecCache:
    cache = NsecCache()
    keep_nsecs(cache, ZONE, SOA, _proof(chain), now)
    return cache


def test_nsec3_params_refuse_opt_out_unknown_flags_algorithms_and_too_many_iterations() -> None:
    """RFC 5155 §6/§8.2, RFC 8198 §5.2, RFC 9276 §3.2: only plain SHA-1 NSEC3 of at most
    the limit's iterations can deny names; the salt and iterations are the chain's key."""

    def params(**options: object) -> tuple[bytes, int] | None:
        rrset = nsec3_chain(ZONE, NAMES, **options)[0]  # type: ignore[arg-type]
        return nsec3_params(WireRRset.from_rrset(rrset), 150)

    assert params() == (b"", 0)
    assert params(salt="abcd", iterations=150) == (b"\xab\xcd", 150)
    assert params(iterations=151) is None
    assert params(opt_out=True) is None
    assert params(algorithm=2) is None
    flagged = dns.rrset.from_text(
        f"{'0' * 32}.example.", 300, "IN", "NSEC3", f"1 2 0 - {'1' * 32} A"
    )
    assert nsec3_params(WireRRset.from_rrset(flagged), 150) is None  # RFC 5155 §8.2


def test_only_plain_nsec3_within_the_iteration_limit_is_kept() -> None:
    assert len(_cache(nsec3_chain(ZONE, NAMES))) == 5  # one per name, c included
    assert len(_cache(nsec3_chain(ZONE, NAMES, opt_out=True))) == 0
    assert len(_cache(nsec3_chain(ZONE, NAMES, iterations=151))) == 0
    assert len(_cache(nsec3_chain(ZONE, NAMES, iterations=150))) == 5


def test_nxdomain_from_the_closest_encloser_proof() -> None:
    """RFC 5155 §8.4: the closest encloser's NSEC3 matches, the next closer's is covered,
    the wildcard at the closest encloser is covered; the proof carries them and RRSIGs."""
    cache = _cache(nsec3_chain(ZONE, NAMES))
    for qname, encloser in [
        ("q.example.", ZONE),
        ("x.y.z.example.", ZONE),
        ("x.c.example.", name("c.example.")),
    ]:
        made = synthesise(cache, name(qname), 1, NOW + 10)
        assert made is not None, qname
        assert made.rcode == dns.rcode.NXDOMAIN
        nsec3s = [r for r in made.proof if r.rdtype == _NSEC3]
        assert 2 <= len(nsec3s) <= 3
        assert len([r for r in made.proof if r.rdtype == _RRSIG]) == len(nsec3s) + 1
        assert made.soa.rdtype == _SOA and made.soa.ttl == 290  # RFC 9077: min(300, 300)
        hashed = dns.dnssec.nsec3_hash(encloser, b"", 0, 1)
        assert any(r.name.labels[0].decode().upper() == hashed for r in nsec3s)  # its match


def test_nodata_from_the_matching_nsec3() -> None:
    """RFC 5155 §8.5: the name's NSEC3 lacks the type and CNAME (an empty non-terminal's
    lacks all); a type it lists, a delegation, or a name below one is never denied."""
    cache = _cache(nsec3_chain(ZONE, NAMES))
    for qname, qtype in [("a.example.", 15), ("c.example.", 1), ("example.", 15)]:
        made = synthesise(cache, name(qname), qtype, NOW)
        assert made is not None and made.rcode == dns.rcode.NOERROR, qname
        assert len([r for r in made.proof if r.rdtype == _NSEC3]) == 1
    for qname, qtype in [("a.example.", 1), ("b.c.example.", 1), ("d.example.", 1)]:
        assert synthesise(cache, name(qname), qtype, NOW) is None, qname
    assert synthesise(cache, name("x.d.example."), 1, NOW) is None  # below the cut: asked
    assert synthesise(cache, name("a.example."), 43, NOW) is None  # DS: never


def test_a_name_a_wildcard_may_answer_is_asked() -> None:
    cache = _cache(nsec3_chain(ZONE, {**NAMES, "*": "TXT"}))
    assert synthesise(cache, name("q.example."), 1, NOW) is None
    assert synthesise(cache, name("*.example."), 1, NOW) is not None  # its own NODATA


def test_an_opt_out_span_in_the_cache_never_denies_a_name() -> None:
    """RFC 8198 §5.2, RFC 5155 §9.2: were opt-out records cached (keep_nsecs refuses them),
    the proof's verdict is insecure and nothing is synthesised."""
    cache = NsecCache()
    for rrset in nsec3_chain(ZONE, NAMES, opt_out=True):
        cache.put_nsec3(
            ZONE,
            WireRRset.from_rrset(rrset),
            _rrsig(rrset.name, _NSEC3),
            NOW + 300,
            salt=b"",
            iterations=0,
            soa=SOA,
            soa_sigs=_rrsig(ZONE, _SOA),
            soa_expires_at=NOW + 300,
        )
    assert synthesise(cache, name("q.example."), 1, NOW) is None


def test_each_hash_is_charged_once_to_the_query_budget() -> None:
    """CVE-2023-50868: q.example. needs 3 hashes (the name, the apex, the wildcard), which
    the proof check reuses; with 2 left it is not synthesised (asked instead)."""
    cache = _cache(nsec3_chain(ZONE, NAMES))
    work = ValidationWork(ValidationLimits(max_nsec3_hashes=3))
    assert synthesise(cache, name("q.example."), 1, NOW, work) is not None
    assert work.nsec3_hashes == 3
    short = ValidationWork(ValidationLimits(max_nsec3_hashes=2))
    assert synthesise(cache, name("q.example."), 1, NOW, short) is None
    deep = ValidationWork()
    many = ".".join(["x"] * 100) + ".example."
    assert synthesise(cache, name(many), 1, NOW, deep) is None
    assert deep.nsec3_hashes == deep.limits.max_nsec3_hashes


def test_the_chain_follows_the_zones_parameters_wraps_and_expires() -> None:
    cache = _cache(nsec3_chain(ZONE, NAMES))
    resalted = nsec3_chain(ZONE, {"@": "NS SOA"}, salt="ab")
    keep_nsecs(cache, ZONE, SOA, _proof(resalted), NOW)
    assert len(cache) == 1  # new parameters: the old chain is dropped
    found = cache.zone_of(name("q.example."), NOW)
    assert found is not None and found[1].nsec3 is not None
    chain = found[1].nsec3
    only = chain.hashes[0]
    for hashed in ["0" * 32, "V" * 32, only]:
        record = cache.nsec3_at_or_before(chain, hashed, NOW)
        assert record is not None and record.nsec.name.labels[0].decode().upper() == only
    assert cache.nsec3_at_or_before(chain, only, NOW + 300) is None
    assert cache.flush(ZONE) == 1 and len(cache) == 0


def test_a_name_no_cached_record_covers_costs_one_hash() -> None:
    """With only the apex's NSEC3 cached, a name whose hash lies outside its span is given
    up after its own hash: none is spent on its ancestors (nor on the proof check)."""
    apex_hash = dns.dnssec.nsec3_hash(ZONE, b"", 0, 1)
    apex = next(r for r in nsec3_chain(ZONE, NAMES) if r.name.labels[0].decode() == apex_hash)
    next_hash = base64.b32hexencode(apex[0].next).decode()
    outside = next(
        qname
        for qname in (name(f"x.q{index}.example.") for index in range(100))
        if not apex_hash < dns.dnssec.nsec3_hash(qname, b"", 0, 1) < next_hash
    )
    cache = _cache([apex])
    work = ValidationWork()
    assert synthesise(cache, outside, 1, NOW, work) is None
    assert work.nsec3_hashes == 1
