"""The resolver validates (issue 12): each signed lab zone, resolved through the mesh in
virtual time with the lab's trust anchor and ``now`` pinned inside the signatures'
validity, gets the rcode, state and Extended DNS Error Unbound 1.17 gives it
(tests/peer/signed_lab_unbound.py's table); the key cache makes the next name of a known
zone cost one upstream query."""

from __future__ import annotations

import datetime

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.view import Caches
from resolver.core.dnssec.anchor import parse_anchors
from resolver.core.dnssec.keys import Validator
from resolver.core.events import Failure
from resolver.limits import ValidationWork
from resolver.model import ExtendedError, Security
from resolver.paths import lab_description
from tests.core.harness import Responder, lab_responder, resolve
from tests.helpers import lab_with
from tests.peer.signed_lab_unbound import EXPECTED

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC).timestamp()
SIGNED = lab_responder(lab_with(), signed=True)
ANCHORS = parse_anchors((lab_description().parent / "trust-anchor.ds").read_text())


def validator() -> Validator:
    return Validator(ANCHORS)


CASES = sorted(EXPECTED.items())


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[f"{q[0]}{q[1]}" for q, _ in CASES])
def test_each_signed_lab_case_validates_as_unbound(
    question: tuple[str, str], expected: tuple[str, bool, int | None]
) -> None:
    rcode, ad, ede = expected
    result = resolve(*question, SIGNED, validator=validator(), now=NOW).result
    assert dns.rcode.to_text(result.rcode) == rcode, result.reason
    assert (result.security is Security.SECURE) is ad, result.security
    code = int(result.error_code) if result.is_failure and result.error_code else None
    assert code == ede, result.reason
    if result.is_failure:
        assert result.security is Security.BOGUS
        assert result.reason  # names the zone and the record


def test_keytrap_is_bogus_for_work_with_few_verifications() -> None:
    """KeyTrap (CVE-2023-50387): 32 keys share the DS's key tag; we try
    max_key_tag_collisions of them and give up with EDE 6, as Unbound, not minutes of CPU."""
    walk = resolve("www.keytrap.lab.", "A", SIGNED, validator=validator(), now=NOW)
    assert walk.result.error_code is ExtendedError.DNSSEC_BOGUS
    # Either check may meet the crowd first (the DS match or an RRSIG's key tag): both are
    # out of work, EDE 6, with no signature verified for nothing.
    assert "32 DNSKEYs share" in walk.result.reason and "key tag" in walk.result.reason


def test_bogus_text_names_the_zone_and_the_record() -> None:
    result = resolve("www.badsig.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert result.error_code is ExtendedError.DNSSEC_BOGUS
    assert "badsig.lab." in result.reason
    assert "www.badsig.lab. A" in result.reason


def test_time_matters_signatures_are_checked_against_now() -> None:
    """The same secure zone in 2037: its signatures (valid 2026-2036) have expired (EDE 7)."""
    later = datetime.datetime(2037, 1, 1, tzinfo=datetime.UTC).timestamp()
    result = resolve("www.secure.lab.", "A", SIGNED, validator=validator(), now=later).result
    assert result.security is Security.BOGUS
    assert result.error_code is ExtendedError.SIGNATURE_EXPIRED


@pytest.mark.parametrize(
    ("zone", "state"), [("secure.lab.", Security.SECURE), ("example.lab.", Security.INSECURE)]
)
def test_a_never_seen_name_in_a_known_zone_costs_one_query(zone: str, state: Security) -> None:
    """DNSKEY and DS verdicts are kept per zone (the key cache): the second name of a zone
    is one upstream query, as without validation."""
    shared, caches = validator(), Caches()
    first = resolve(f"www.{zone}", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert first.result.security is state
    second = resolve(f"nx1.{zone}", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert second.result.security is state
    assert len(second.sent) == 1, [(str(s.qname), s.qtype) for s in second.sent]


def test_upstream_queries_carry_do_when_validating() -> None:
    walk = resolve("www.secure.lab.", "A", SIGNED, validator=validator(), now=NOW)
    assert all(send.dnssec_ok for send in walk.sent)
    plain = resolve("www.secure.lab.", "A", SIGNED, now=NOW)
    assert not any(send.dnssec_ok for send in plain.sent)
    assert plain.result.security is None


def test_checking_disabled_returns_bogus_data_unvalidated() -> None:
    """RFC 4035 §3.2.2: CD=1 gets the data, not validated (no state)."""
    result = resolve(
        "www.badsig.lab.", "A", SIGNED, validator=validator(), now=NOW, checking_disabled=True
    ).result
    assert result.rcode == dns.rcode.NOERROR
    assert result.security is None


def test_the_answer_carries_its_rrsigs_for_do_clients() -> None:
    result = resolve("www.secure.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert any(rrset.rdtype == 46 for rrset in result.proof)
    negative = resolve("nx.secure.lab.", "A", SIGNED, validator=validator(), now=NOW).result
    assert {47, 46} <= {rrset.rdtype for rrset in negative.proof}


def test_unvalidated_zones_without_an_anchor_are_indeterminate_not_bogus() -> None:
    """No trust anchor covers the name (RFC 4035 §4.3): not validated, not failed."""
    empty = Validator({})
    result = resolve("www.secure.lab.", "A", SIGNED, validator=empty, now=NOW).result
    assert result.rcode == dns.rcode.NOERROR
    assert result.security is Security.INSECURE


def without_denial(responder: Responder) -> Responder:
    """The signed lab with NSEC and NSEC3 records (and their RRSIGs) left out of every
    reply's authority section: a stripped negative answer."""

    def respond(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        reply = responder(address, query)
        if isinstance(reply, Failure):
            return reply
        reply.authority = [
            r
            for r in reply.authority
            if r.rdtype not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)
            and r.covers not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)
        ]
        return reply

    return respond


def test_a_negative_answer_without_its_proof_is_bogus_nsec_missing() -> None:
    walk = resolve("nx.secure.lab.", "A", without_denial(SIGNED), validator=validator(), now=NOW)
    assert walk.result.security is Security.BOGUS
    assert walk.result.error_code is ExtendedError.NSEC_MISSING
    nodata = resolve(
        "www.secure.lab.", "MX", without_denial(SIGNED), validator=validator(), now=NOW
    )
    assert nodata.result.error_code is ExtendedError.NSEC_MISSING


def test_a_negative_trust_anchor_turns_validation_off_below_it() -> None:
    """RFC 7646: a bogus zone under a negative trust anchor is answered, insecure."""
    nta = Validator(ANCHORS, negative_anchors=frozenset({dns.name.from_text("badsig.lab.")}))
    result = resolve("www.badsig.lab.", "A", SIGNED, validator=nta, now=NOW).result
    assert result.rcode == dns.rcode.NOERROR
    assert result.security is Security.INSECURE
    other = resolve("www.expired.lab.", "A", SIGNED, validator=nta, now=NOW).result
    assert other.security is Security.BOGUS


def test_a_bogus_answer_is_kept_val_bogus_ttl_seconds() -> None:
    shared, caches = Validator(ANCHORS, bogus_ttl_s=60), Caches()
    first = resolve("www.badsig.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert first.result.error_code is ExtendedError.DNSSEC_BOGUS
    again = resolve("www.badsig.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW + 30)
    assert again.result.error_code is ExtendedError.DNSSEC_BOGUS
    assert again.sent == []
    later = resolve("www.badsig.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW + 61)
    assert later.result.error_code is ExtendedError.DNSSEC_BOGUS
    assert later.sent
    assert shared.verdicts["bogus"] == 3
    assert shared.bogus_reasons == {"DNSSEC_BOGUS": 3}


@pytest.mark.parametrize(
    ("name", "state"),
    [("www.secure.lab.", Security.SECURE), ("www.example.lab.", Security.INSECURE)],
)
def test_a_validated_rrset_is_answered_from_the_cache_with_its_state(
    name: str, state: Security
) -> None:
    """The RRset cache keeps each validated RRset's state and RRSIGs (RFC 4035 §4.5): the
    same question again is a cache lookup, with no fetch and no verification."""
    shared, caches = validator(), Caches()
    first = resolve(name, "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert first.result.security is state
    verified = first.result.upstream_queries
    assert verified > 0
    again = resolve(name, "A", SIGNED, validator=shared, caches=caches, now=NOW + 10)
    assert again.sent == []
    assert again.result.security is state
    assert again.result.answer == first.result.answer
    if state is Security.SECURE:
        assert [r.rdtype for r in again.result.proof] == [46]


def test_unvalidated_cached_data_is_asked_again_for_a_validating_question() -> None:
    """What a CD=1 question (or a name server lookup) cached was never judged: a validated
    question does not take it from the cache."""
    shared, caches = validator(), Caches()
    resolve("www.secure.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW,
            checking_disabled=True)  # fmt: skip
    walk = resolve("www.secure.lab.", "A", SIGNED, validator=shared, caches=caches, now=NOW)
    assert walk.result.security is Security.SECURE
    assert any(send.qname == dns.name.from_text("www.secure.lab.") for send in walk.sent)


COLD_SECURE_QUERIES = 6


def test_a_signed_referrals_ds_is_used_not_asked_for_again() -> None:
    """RFC 4035 §3.1.4: lab.'s referral to secure.lab. carries the signed DS, so the key
    chain uses it (verified with lab.'s keys) and no secure.lab. DS question is sent, as
    Unbound does; the answer is still secure. The root's referral to lab. carries lab.'s DS
    too, so a cold name costs 6 queries: lab., secure.lab. and www.secure.lab. (QNAME
    minimisation) and the DNSKEYs of ., lab. and secure.lab.; no DS question (8 before)."""
    walk = resolve("www.secure.lab.", "A", SIGNED, validator=validator(), now=NOW)
    assert walk.result.security is Security.SECURE
    asked = [(str(s.qname), s.qtype) for s in walk.sent]
    assert ("secure.lab.", dns.rdatatype.DS) not in asked, asked
    assert walk.result.upstream_queries == len(walk.sent) == COLD_SECURE_QUERIES, asked


def test_a_referral_ds_without_its_rrsig_is_not_trusted() -> None:
    """A referral whose DS lost its RRSIG (a forgery, or a stripping middlebox) does not
    count: the DS is asked for from lab.'s servers and verified as usual."""

    def strip(address: str, query: dns.message.Message) -> dns.message.Message | Failure:
        reply = SIGNED(address, query)
        if isinstance(reply, dns.message.Message):
            reply.authority = [r for r in reply.authority if r.rdtype != dns.rdatatype.RRSIG]
        return reply

    walk = resolve("www.secure.lab.", "A", strip, validator=validator(), now=NOW)
    asked = [(str(s.qname), s.qtype) for s in walk.sent]
    assert ("secure.lab.", dns.rdatatype.DS) in asked, asked


def not_validating() -> Validator:
    """The validator of ``dnssec = false`` (resolver/reload.py: validator_for)."""
    return Validator({}, enabled=False, aggressive_nsec=False)


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[f"{q[0]}{q[1]}" for q, _ in CASES])
def test_with_validation_off_each_case_is_answered_with_its_dnssec_records(
    question: tuple[str, str], expected: tuple[str, bool, int | None]
) -> None:
    """``dnssec = false`` as Unbound's ``module-config: "iterator"`` (checked against the
    signed lab: DO is sent upstream, a DO client gets the RRSIGs and a negative answer's
    NSEC/NSEC3 with their RRSIGs, never AD): no case is SERVFAIL nor secure, the broken
    zones answer their data, and nothing is counted as validated."""
    checker = not_validating()
    walk = resolve(*question, SIGNED, validator=checker, now=NOW)
    result = walk.result
    assert result.rcode == dns.rcode.from_text(
        expected[0] if expected[0] != "SERVFAIL" else "NOERROR"
    )
    assert result.security is None  # not validated: no state (the query log says none)
    assert all(sent.dnssec_ok for sent in walk.sent)
    unsigned = question[0].endswith(
        ("example.lab.", "forge.lab.", "insecure.optout.lab.", "nosig.lab.")
    )
    if not unsigned:
        kinds = {proof.rdtype for proof in result.proof}
        assert dns.rdatatype.RRSIG in kinds, result.proof
        if result.rcode == dns.rcode.NXDOMAIN or not result.answer:
            assert kinds & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}, result.proof
    assert not checker.verdicts and not checker.bogus_reasons


def test_with_validation_off_a_cached_answer_keeps_its_rrsigs() -> None:
    """The second asking is answered from the RRset and negative caches, RRSIGs and NSECs
    included (the RRset cache keeps them beside the data, as for a validated answer)."""
    checker, caches = not_validating(), Caches()
    for name in ("www.secure.lab.", "nx.secure.lab."):
        first = resolve(name, "A", SIGNED, validator=checker, caches=caches, now=NOW)
        again = resolve(name, "A", SIGNED, validator=checker, caches=caches, now=NOW)
        assert not again.sent
        assert again.result.proof == first.result.proof and again.result.proof


def test_answers_synthesised_from_the_nsec_cache_are_counted_by_kind() -> None:
    """rootwalk_dnssec_synthesised_total (RFC 8198): an answer made from cached secure NSECs
    is counted, by kind; one asked upstream or kept whole in the negative cache is not."""
    checker, caches = validator(), Caches()
    walks = [
        resolve(name, qtype, SIGNED, validator=checker, caches=caches, now=NOW)
        for name, qtype in [
            ("nx.secure.lab.", "A"),  # asked: its NSECs are cached
            ("nx.secure.lab.", "A"),  # the negative cache
            ("nx2.secure.lab.", "A"),  # synthesised NXDOMAIN
            ("nx3.secure.lab.", "AAAA"),  # synthesised NXDOMAIN
            ("www.secure.lab.", "MX"),  # asked: www's NSEC is cached
            ("www.secure.lab.", "TXT"),  # synthesised NODATA
        ]
    ]
    assert [len(walk.sent) > 0 for walk in walks] == [True, False, False, False, True, False]
    assert checker.synthesised == {"nxdomain": 2, "nodata": 1}


COLD_SECURE_VERIFICATIONS = 6


def test_each_rrset_of_a_cold_secure_name_is_verified_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """www.secure.lab. from empty caches: the DNSKEY RRsets of ., lab. and secure.lab., the
    DS of lab. and of secure.lab. (from the referrals), and the answer, one signature
    verification each (each DS was verified twice before: once when it came, once more
    when its zone's DNSKEY RRset arrived)."""
    spent: list[int] = []
    real = ValidationWork.spend_verification

    def counted(work: ValidationWork) -> bool:
        spent.append(1)
        return real(work)

    monkeypatch.setattr(ValidationWork, "spend_verification", counted)
    walk = resolve("www.secure.lab.", "A", SIGNED, validator=validator(), now=NOW)
    assert walk.result.security is Security.SECURE
    assert len(spent) == COLD_SECURE_VERIFICATIONS
