"""The signed lab's DNSSEC corner cases (resolver/lab/corners.py), each resolved in
virtual time through the harness as tests/peer/signed_lab_unbound.py pins Unbound 1.17 on
them, or as the RFC says where Unbound differs (tests/peer/allowed_differences.toml)."""

from __future__ import annotations

import dns.rcode
import pytest

from resolver.cache.view import Caches
from resolver.model import Security
from tests.core.harness import resolve
from tests.core.test_validation import NOW, SIGNED, validator


@pytest.mark.parametrize(
    ("qname", "qtype"),
    [
        ("www.rollover.lab.", "A"),  # DS for the new KSK only; DNSKEY signed by both KSKs
        ("rollover.lab.", "DNSKEY"),
        ("www.algmix.lab.", "A"),  # DS for alg 13 and 8, data signed by 13 only
        ("algmix.lab.", "DNSKEY"),
        ("www.bigkeys.lab.", "A"),  # six RSA keys: a DNSKEY set over 1232 octets
        ("bigkeys.lab.", "DNSKEY"),
    ],
)
def test_rollover_states_validate(qname: str, qtype: str) -> None:
    """A KSK rollover half done (two KSKs, DS for one, a pre-published ZSK that signs
    nothing) and an algorithm rollover (DS for two algorithms, data signed by one: RFC
    6840 §5.11, any one supported algorithm's signature is enough) are secure, as Unbound
    gives them."""
    result = resolve(qname, qtype, SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.NOERROR, result.reason
    assert result.security is Security.SECURE, result.reason


@pytest.mark.parametrize(
    ("qname", "code"),
    [
        ("www.revoked.lab.", 9),  # the only key has the REVOKE bit (RFC 5011 §2.1)
        ("www.nozonebit.lab.", 11),  # the only key lacks the Zone Key bit (RFC 4034 §2.1.1)
        ("www.labels.lab.", 6),  # RRSIG labels above the owner's (RFC 4035 §5.3.1)
        ("low.labels.lab.", 6),  # a wildcard expansion with no denial (RFC 4035 §5.3.4)
    ],
)
def test_keys_and_signatures_that_must_not_be_used_are_bogus(qname: str, code: int | None) -> None:
    """A revoked key or a key without the Zone Key bit validates nothing, even when the
    parent's DS names it; an RRSIG whose labels field exceeds its owner's count is not
    valid, and one that claims a wildcard expansion needs a denial of the name. Unbound
    1.17 agrees on all but the revoked key, which it uses (allowed_differences.toml); the
    key without the Zone Key bit gets EDE 11 (RFC 8914 §4.12), as Unbound gives it."""
    result = resolve(qname, "A", SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.SERVFAIL, result.reason
    assert result.security is Security.BOGUS
    if code is not None:
        assert result.error_code is not None and int(result.error_code) == code, result.reason


def test_a_bogus_wildcard_signature_synthesises_nothing() -> None:
    """low.labels.lab.'s RRSIG is a valid signature of ``*.labels.lab. A``, but the NSEC
    chain proves there is no such wildcard: after low is found bogus, another name below
    labels.lab. is still NXDOMAIN, secure. Unbound 1.17 answers it NOERROR AD with low's
    address (synthesised from the bogus wildcard): allowed_differences.toml."""
    shared, caches = validator(), Caches()
    low = resolve("low.labels.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert low.result.rcode == dns.rcode.SERVFAIL
    other = resolve("peer-nx.labels.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert other.result.rcode == dns.rcode.NXDOMAIN, other.result.reason
    assert other.result.security is Security.SECURE
