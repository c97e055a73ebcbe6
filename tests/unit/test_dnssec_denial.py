"""NSEC and NSEC3 proofs (resolver/core/dnssec/denial.py) on chains built in the test:
NXDOMAIN, NODATA, empty non-terminals, wildcard answers and NODATA, insecure delegations,
NSEC3 opt-out, iterations above RFC 9276's limit, and the NSEC3 hash budget."""

from __future__ import annotations

import random

import dns.dnssec
import dns.name
import dns.rdatatype
import pytest

from resolver.core.dnssec.denial import (
    nsec3_nodata,
    nsec3_nxdomain,
    nsec3_wildcard_answer,
    nsec_no_ds,
    nsec_nodata,
    nsec_nxdomain,
    nsec_wildcard_answer,
)
from resolver.core.dnssec.security import Security
from resolver.core.dnssec.verify import verify_rrset
from resolver.limits import ValidationLimits, ValidationWork
from resolver.model import ExtendedError
from tests.unit.dnssec_lab import NOW, ZONE, make_key, name, nsec3_chain, nsec_chain, without

A, AAAA, TXT, DS = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT, dns.rdatatype.DS

# example. holds a, w and *.w (a wildcard), x.y (so y is an empty non-terminal), sub (an
# unsigned delegation: NS, no DS) and secure (a signed delegation: NS and DS).
NAMES = {
    "@": "SOA NS DNSKEY",
    "a": "A",
    "w": "A",
    "*.w": "TXT",
    "x.y": "A",
    "sub": "NS",
    "secure": "NS DS",
}
NSEC = nsec_chain(ZONE, NAMES)


def test_dnspython_names_sort_in_canonical_order() -> None:
    """RFC 4034 §6.1's own example, shuffled, sorts back into its order."""
    expected = [
        "example.",
        "a.example.",
        "yljkjljk.a.example.",
        "Z.a.example.",
        "zABC.a.EXAMPLE.",
        "z.example.",
        "\\001.z.example.",
        "*.z.example.",
        "\\200.z.example.",
    ]
    names = [dns.name.from_text(text) for text in expected]
    shuffled = names[:]
    random.Random(4034).shuffle(shuffled)
    assert sorted(shuffled) == names


# --- NSEC --------------------------------------------------------------------------------


def test_nsec_nxdomain_needs_the_name_and_the_wildcard_covered() -> None:
    assert nsec_nxdomain(name("b.example."), NSEC, ZONE).is_secure
    # *.example. is covered by the apex NSEC (example. -> a.example.): without it, bogus.
    verdict = nsec_nxdomain(name("b.example."), without(NSEC, ZONE), ZONE)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.NSEC_MISSING)
    assert "*.example." in verdict.text
    verdict = nsec_nxdomain(name("b.example."), without(NSEC, name("a.example.")), ZONE)
    assert verdict.code is ExtendedError.NSEC_MISSING and "b.example." in verdict.text


def test_nsec_nxdomain_for_a_name_that_exists_is_bogus() -> None:
    assert nsec_nxdomain(name("a.example."), NSEC, ZONE).is_bogus
    # y.example. is an empty non-terminal (x.y.example. exists): it is not absent.
    assert nsec_nxdomain(name("y.example."), NSEC, ZONE).is_bogus


def test_nsec_below_a_delegation_proves_nothing() -> None:
    """RFC 6840 §4.1: the parent's NSEC at a delegation cannot deny names below it."""
    assert nsec_nxdomain(name("host.sub.example."), NSEC, ZONE).is_bogus


def test_nsec_nodata_needs_the_type_and_cname_absent() -> None:
    assert nsec_nodata(name("a.example."), AAAA, NSEC, ZONE).is_secure
    assert nsec_nodata(name("a.example."), A, NSEC, ZONE).code is ExtendedError.NSEC_MISSING
    assert nsec_nodata(name("a.example."), AAAA, without(NSEC, name("a.example.")), ZONE).is_bogus


def test_nsec_nodata_for_an_empty_non_terminal() -> None:
    assert nsec_nodata(name("y.example."), A, NSEC, ZONE).is_secure


def test_nsec_wildcard_nodata() -> None:
    """RFC 4035 §3.1.3.4: the name is covered and the wildcard lacks the type."""
    assert nsec_nodata(name("q.w.example."), AAAA, NSEC, ZONE).is_secure
    assert nsec_nodata(name("q.w.example."), TXT, NSEC, ZONE).is_bogus


def test_nsec_wildcard_answer_needs_the_exact_name_denied() -> None:
    wildcard = name("*.w.example.")
    assert nsec_wildcard_answer(name("q.w.example."), wildcard, NSEC, ZONE).is_secure
    assert nsec_wildcard_answer(
        name("q.w.example."), wildcard, without(NSEC, wildcard), ZONE
    ).is_bogus
    # a.example. exists: it can never be a wildcard's answer.
    assert nsec_wildcard_answer(name("a.example."), wildcard, NSEC, ZONE).is_bogus
    # q.w.example. is absent, but w.example. exists, so *.example. cannot answer it.
    assert nsec_wildcard_answer(name("q.w.example."), name("*.example."), NSEC, ZONE).is_bogus


def test_nsec_insecure_delegation() -> None:
    """RFC 4035 §5.2: the parent's NSEC at the cut has NS and neither DS nor SOA."""
    verdict = nsec_no_ds(name("sub.example."), NSEC, ZONE)
    assert verdict.state is Security.INSECURE
    assert nsec_no_ds(name("secure.example."), NSEC, ZONE).is_bogus  # the DS exists
    missing = nsec_no_ds(name("sub.example."), without(NSEC, name("sub.example.")), ZONE)
    assert missing.code is ExtendedError.NSEC_MISSING
    # A DS NODATA from the child's apex NSEC (SOA set) proves nothing about the parent.
    assert nsec_nodata(ZONE, DS, NSEC, ZONE).is_bogus
    # DS NODATA for a name that is no zone cut: secure (no DS, no delegation); the same
    # meaning through nsec_nodata, which hands DS to nsec_no_ds.
    assert nsec_no_ds(name("a.example."), NSEC, ZONE).is_secure
    assert nsec_no_ds(name("y.example."), NSEC, ZONE).is_secure  # an empty non-terminal
    assert nsec_nodata(name("sub.example."), DS, NSEC, ZONE).state is Security.INSECURE


def test_signed_nsec_records_verify_then_prove() -> None:
    """The caller's order: verify each NSEC RRset's RRSIG, then use it as proof."""
    key = make_key(13, flags=256)
    work = ValidationWork()
    for record in NSEC:
        verdict = verify_rrset(record, [key.sign(record)], [key.dnskey], ZONE, now=NOW, work=work)
        assert verdict.is_secure
    assert nsec_nxdomain(name("b.example."), NSEC, ZONE).is_secure


# --- NSEC3 -------------------------------------------------------------------------------

NSEC3_NAMES = {**NAMES, "y": ""}  # the empty non-terminal has its own NSEC3 (RFC 5155 §7.1)
NSEC3 = nsec3_chain(ZONE, NSEC3_NAMES)


def hashed(text: str) -> dns.name.Name:
    digest = dns.dnssec.nsec3_hash(name(text), b"", 0, 1)
    return dns.name.from_text(digest, ZONE)


def covering(chain: list, text: str) -> dns.name.Name:  # type: ignore[type-arg]
    """The owner of the NSEC3 record covering the hash of ``text``."""
    digest = dns.dnssec.nsec3_hash(name(text), b"", 0, 1)
    owners = sorted(r.name.labels[0].decode().upper() for r in chain)
    before = [owner for owner in owners if owner < digest]
    return dns.name.from_text(before[-1] if before else owners[-1], ZONE)


def test_nsec3_nxdomain_closest_encloser_next_closer_and_wildcard() -> None:
    """RFC 5155 §8.4: the apex matches, b.example. (next closer) and *.example. are
    covered; dropping any of the three records makes it bogus with EDE 12."""
    qname = name("b.example.")
    assert nsec3_nxdomain(qname, NSEC3, ZONE, ValidationWork()).is_secure
    for owner in (hashed("example."), covering(NSEC3, "b.example."), covering(NSEC3, "*.example.")):
        verdict = nsec3_nxdomain(qname, without(NSEC3, owner), ZONE, ValidationWork())
        assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.NSEC_MISSING)


def test_nsec3_nxdomain_below_an_existing_name() -> None:
    assert nsec3_nxdomain(name("q.r.a.example."), NSEC3, ZONE, ValidationWork()).is_secure
    assert nsec3_nxdomain(name("a.example."), NSEC3, ZONE, ValidationWork()).is_bogus


def test_nsec3_nodata_and_empty_non_terminal() -> None:
    work = ValidationWork()
    assert nsec3_nodata(name("a.example."), AAAA, NSEC3, ZONE, work).is_secure
    assert nsec3_nodata(name("a.example."), A, NSEC3, ZONE, work).is_bogus
    assert nsec3_nodata(name("y.example."), A, NSEC3, ZONE, work).is_secure


def test_nsec3_wildcard_nodata_and_answer() -> None:
    """RFC 5155 §8.7 and §8.8."""
    wildcard = name("*.w.example.")
    qname = name("q.w.example.")
    assert nsec3_nodata(qname, AAAA, NSEC3, ZONE, ValidationWork()).is_secure
    assert nsec3_nodata(qname, TXT, NSEC3, ZONE, ValidationWork()).is_bogus
    assert nsec3_wildcard_answer(qname, wildcard, NSEC3, ZONE, ValidationWork()).is_secure
    gone = without(NSEC3, covering(NSEC3, "q.w.example."))
    verdict = nsec3_wildcard_answer(qname, wildcard, gone, ZONE, ValidationWork())
    assert verdict.code is ExtendedError.NSEC_MISSING


def test_nsec3_insecure_delegation_with_and_without_opt_out() -> None:
    """RFC 5155 §8.9: the NSEC3 at the cut has NS, no DS: insecure. §8.6: without a
    record at the cut, an opt-out span covering it makes it insecure; without opt-out the
    proof is missing."""
    sub = name("sub.example.")
    assert nsec3_nodata(sub, DS, NSEC3, ZONE, ValidationWork()).state is Security.INSECURE
    assert nsec3_nodata(name("secure.example."), DS, NSEC3, ZONE, ValidationWork()).is_bogus
    assert nsec3_nodata(name("a.example."), DS, NSEC3, ZONE, ValidationWork()).is_secure
    unsigned = {k: v for k, v in NSEC3_NAMES.items() if k != "sub"}
    opt_out = nsec3_chain(ZONE, unsigned, opt_out=True)
    assert nsec3_nodata(sub, DS, opt_out, ZONE, ValidationWork()).state is Security.INSECURE
    plain = nsec3_chain(ZONE, unsigned)
    assert nsec3_nodata(sub, DS, plain, ZONE, ValidationWork()).code is ExtendedError.NSEC_MISSING


def test_nsec3_nxdomain_in_an_opt_out_span_is_insecure() -> None:
    """An opt-out span may hide an unsigned delegation, so its NXDOMAIN is not secure."""
    opt_out = nsec3_chain(ZONE, NSEC3_NAMES, opt_out=True)
    verdict = nsec3_nxdomain(name("b.example."), opt_out, ZONE, ValidationWork())
    assert verdict.state is Security.INSECURE


def test_nsec3_iterations_above_the_limit_are_insecure() -> None:
    """RFC 9276 §3.2 (Unbound: 150): insecure, and no hash is computed."""
    costly = nsec3_chain(ZONE, NSEC3_NAMES, iterations=151)
    work = ValidationWork()
    verdict = nsec3_nxdomain(name("b.example."), costly, ZONE, work)
    assert verdict.state is Security.INSECURE and "RFC 9276" in verdict.text
    assert work.nsec3_hashes == 0
    fine = nsec3_chain(ZONE, NSEC3_NAMES, iterations=150, salt="aabb")
    assert nsec3_nxdomain(name("b.example."), fine, ZONE, ValidationWork()).is_secure


def test_nsec3_unknown_hash_algorithm_is_ignored() -> None:
    """RFC 5155 §8.1: records of an unknown hash algorithm are ignored: no proof."""
    unknown = nsec3_chain(ZONE, NSEC3_NAMES, algorithm=2)
    verdict = nsec3_nxdomain(name("b.example."), unknown, ZONE, ValidationWork())
    assert verdict.code is ExtendedError.NSEC_MISSING


def test_nsec3_hashes_are_bounded_per_query() -> None:
    """CVE-2023-50868: a name of many labels under a zone whose chain never matches makes
    the closest encloser search hash every ancestor; the budget stops it with EDE 6."""
    deep = dns.name.from_text(".".join(["l"] * 100) + ".example.")
    work = ValidationWork(ValidationLimits(max_nsec3_hashes=20))
    verdict = nsec3_nxdomain(deep, without(NSEC3, hashed("example.")), ZONE, work)
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.DNSSEC_BOGUS)
    assert work.nsec3_hashes == 20


@pytest.mark.parametrize("qtype", [A, TXT])
def test_nsec3_nodata_at_a_delegation_is_not_a_nodata(qtype: int) -> None:
    """The parent's NSEC3 at a cut says nothing about the child's types."""
    assert nsec3_nodata(name("sub.example."), qtype, NSEC3, ZONE, ValidationWork()).is_bogus
