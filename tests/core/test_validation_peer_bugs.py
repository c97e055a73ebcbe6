"""Bugs the differential validating run (tests/peer/validating.py) found against Unbound
1.17, each pinned here in virtual time on the signed lab through the harness."""

from __future__ import annotations

import collections

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.view import Caches
from resolver.core.compose import render_result
from resolver.model import Result, Security
from resolver.screen import read_plain_query
from resolver.wire import read_fast_query
from tests.core.harness import resolve
from tests.core.test_validation import NOW, SIGNED, validator


def rendered(qname: str, qtype: str, result: Result) -> dns.message.Message:
    """``result`` as the frontend sends it to a client that set DO."""
    wire = dns.message.make_query(qname, qtype, want_dnssec=True).to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    return dns.message.from_wire(render_result(read_plain_query(wire, fast), result, 65535))


@pytest.mark.parametrize("zone", [".", "alg10.lab.", "secure.lab."])
def test_any_at_a_signed_apex_is_secure_each_rrset_validated_on_its_own(zone: str) -> None:
    """ANY gives several RRsets and their RRSIGs in the answer: each RRset is verified
    with its own signatures, and the RRSIG RRset is not unsigned data (was SERVFAIL, EDE
    10 or 0). A DO client gets every RRSIG once."""
    result = resolve(zone, "ANY", SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.NOERROR, result.reason
    assert result.security is Security.SECURE
    reply = rendered(zone, "ANY", result)
    assert reply.flags & dns.flags.AD
    keys = collections.Counter((r.name, r.rdtype, r.covers) for r in reply.answer)
    assert all(count == 1 for count in keys.values()), keys


@pytest.mark.parametrize("qtype", ["A", "TXT"])
def test_a_wildcard_answer_in_an_nsec3_opt_out_span_is_insecure(qtype: str) -> None:
    """RFC 5155 §9.2: the NSEC3 that covers the next closer name has the opt-out flag, so
    an unsigned delegation could hide there; the wildcard answer (A) or wildcard NODATA
    (TXT) is insecure (no AD), as Unbound gives it, not secure. The same wildcard in a
    zone without opt-out stays secure."""
    name = "peer-w.wild.optout.lab."
    result = resolve(name, qtype, SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.NOERROR, result.reason
    assert result.security is Security.INSECURE
    plain = resolve("peer-w.wild.nsec3.lab.", qtype, SIGNED, validator=validator(), now=NOW)
    assert plain.result.security is Security.SECURE


@pytest.mark.parametrize("qname", ["www.badsig.lab.", "www.keytrap.lab."])
def test_a_bogus_servfail_carries_no_records_only_its_ede(qname: str) -> None:
    """A SERVFAIL for bogus data holds no records, not the bogus RRset's RRSIGs (as
    Unbound): for KeyTrap they overflowed 1232 octets and the reply came back TC=1."""
    result = resolve(qname, "A", SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.SERVFAIL
    assert result.security is Security.BOGUS
    assert result.proof == ()
    reply = rendered(qname, "A", result)
    assert not reply.answer and not reply.authority
    assert not reply.flags & dns.flags.TC
    assert reply.options and reply.options[0].otype == dns.edns.EDE


@pytest.mark.parametrize("qname", ["example.", "cnns.lab.", "example.lab."])
def test_ds_at_an_unsigned_delegation_is_a_secure_nodata_from_the_parent(qname: str) -> None:
    """RFC 4035 §3.1.4.1, §5.4: the parent answers DS; its signed NSEC at the delegation
    (NS, no DS) proves no DS, so the NODATA is secure (AD, as Unbound), though the child
    zone itself is insecure. Its data stays insecure."""
    shared, caches = validator(), Caches()
    result = resolve(qname, "DS", SIGNED, validator=shared, caches=caches, now=NOW).result
    assert result.rcode == dns.rcode.NOERROR, result.reason
    assert not result.answer
    assert result.security is Security.SECURE
    again = resolve(qname, "DS", SIGNED, validator=shared, caches=caches, now=NOW).result
    assert again.security is Security.SECURE
    child = resolve(f"www.{qname}", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert child.result.security is Security.INSECURE


@pytest.mark.parametrize(("qname", "qtype"), [(".", "NS"), ("b.root.lab.", "A")])
def test_a_cd_answer_from_the_cache_carries_its_rrsigs(qname: str, qtype: str) -> None:
    """RFC 4035 §3.2.1: with DO and CD=1 the client gets the RRSIGs. An RRset the cache
    holds unvalidated (from the priming or a referral: ". NS", "b.root.lab. A") has none
    kept, so it is asked again, with DO, not answered bare."""
    shared, caches = validator(), Caches()
    resolve("www.secure.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    for _ in range(2):  # the second from the cache
        result = resolve(
            qname, qtype, SIGNED, validator=shared, caches=caches, now=NOW, checking_disabled=True
        ).result
        assert result.answer
        assert any(r.rdtype == 46 and r.name == result.answer[0].name for r in result.proof)


@pytest.mark.parametrize(
    ("qname", "first_link"),
    [
        ("c2.mixed.lab.", "c2.mixed.lab."),  # in-zone CNAMEs
        ("x6.mixed.lab.", "x6.mixed.lab."),  # CNAMEs across mixed.lab. and hop.lab.
        ("www.dn.mixed.lab.", "dn.mixed.lab."),  # a DNAME (its CNAME unsigned, RFC 6672 §5.3.3)
        ("a.peer-w.dnbogus.mixed.lab.", "dnbogus.mixed.lab."),  # a DNAME, then NXDOMAIN
    ],
)
@pytest.mark.parametrize("checking_disabled", [False, True])
def test_a_cd_chain_from_the_cache_carries_every_rrsig(
    qname: str, first_link: str, checking_disabled: bool
) -> None:
    """Found by the validating run on mixed.lab. (a signed zone of CNAME chains, in-zone
    and across hop.lab., and DNAMEs): once a question had cached the chain, a DO=1 CD=1
    question got its CNAMEs and DNAMEs without their RRSIGs, only the final RRset's. RFC
    4035 §3.2.1: every signed RRset of the answer comes with its RRSIGs, as in the first
    answer; Unbound 1.17 gives them."""
    shared, caches = validator(), Caches()

    def signatures(cd: bool) -> set[tuple[str, int]]:
        result = resolve(
            qname, "A", SIGNED, validator=shared, caches=caches, now=NOW, checking_disabled=cd
        ).result
        assert result.answer, result.reason
        reply = rendered(qname, "A", result)
        return {(r.name.to_text(), r.covers) for r in reply.answer if r.rdtype == 46}

    first = signatures(checking_disabled)
    assert first_link in {owner for owner, _ in first}
    assert signatures(True) == first


def test_a_signed_chain_of_eight_cnames_fits_1232_octets_with_its_targets_compressed() -> None:
    """Found by the differential run on mixed.lab.: ``c8.mixed.lab. A`` with DO (8 signed
    CNAMEs, then the A) came back TC=1 to a 1232-octet client; uncompressed CNAME targets
    made it 1236 octets. Unbound compresses them (RFC 1035 §4.1.4) and fits; so do we."""
    result = resolve("c8.mixed.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.NOERROR, result.reason
    wire = dns.message.make_query("c8.mixed.lab.", "A", want_dnssec=True).to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    data = render_result(read_plain_query(wire, fast), result, 1232)
    reply = dns.message.from_wire(data)
    assert not reply.flags & dns.flags.TC, len(data)
    targets = [rrset[0].target for rrset in reply.answer if rrset.rdtype == dns.rdatatype.CNAME]
    assert [t.to_text() for t in targets] == [f"c{i}.mixed.lab." for i in range(7, 0, -1)] + [
        "www.mixed.lab."
    ]


def test_a_sha1_ds_beside_a_sha256_one_that_matches_no_key_is_bogus() -> None:
    """dsdowngrade.lab.: lab. publishes a right SHA-1 DS and a SHA-256 DS that matches no
    DNSKEY. RFC 4509 §3: a validator SHOULD ignore SHA-1 DS records when SHA-256 ones are
    present (else a forged SHA-256 DS could not stop a downgrade), so the zone is bogus
    (EDE 9). Unbound 1.17 accepts the SHA-1 match (NOERROR AD): a difference kept on
    purpose (tests/peer/allowed_differences.toml). A SHA-1 DS alone validates (ds1.lab.)."""
    result = resolve("www.dsdowngrade.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert result.rcode == dns.rcode.SERVFAIL
    assert result.security is Security.BOGUS
    assert result.error_code is not None and int(result.error_code) == 9, result.reason
    alone = resolve("www.ds1.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert alone.security is Security.SECURE
