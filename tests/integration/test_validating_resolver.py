"""``rootwalk`` with ``dnssec = true`` on the signed lab, over real sockets: each case gives
the rcode, AD bit and Extended DNS Error that Unbound 1.17 gives (tests/peer's table); AD
only to clients that set DO or AD (RFC 6840 §5.7-5.8); RRSIGs and NSEC records to DO
clients only (RFC 4035 §3.2.1); CD=1 gets bogus data unvalidated (RFC 4035 §3.2.2)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.paths import lab_trust_anchor
from tests.clock import FakeClock
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.peer.signed_lab_unbound import EXPECTED
from tests.ports import free_port

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC).timestamp()
PORT = free_port()


@pytest.fixture(scope="module")
def validating(stack: Stack) -> Iterator[Stack]:
    """A validating resolver with the lab's anchor and a pinned clock, on the session's lab."""
    settings = lab_settings(
        PORT, dnssec=True, trust_anchors=(lab_trust_anchor(),), client_deadline_s=4.0
    )
    running = Stack(settings, clock=FakeClock(NOW)).start()
    yield running
    running.stop()


def ask(
    name: str, rdtype: str, *, do: bool = True, ad: bool = False, cd: bool = False
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do, payload=1232)
    query.flags &= ~dns.flags.AD
    if ad:
        query.flags |= dns.flags.AD
    if cd:
        query.flags |= dns.flags.CD
    return dns.query.tcp(query, "127.0.0.1", port=PORT, timeout=8)


def ede_of(reply: dns.message.Message) -> int | None:
    edes = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    return int(edes[0].code) if edes else None


CASES = sorted(EXPECTED.items())


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[f"{q[0]}{q[1]}" for q, _ in CASES])
def test_rootwalk_answers_each_signed_case_as_unbound(
    validating: Stack, question: tuple[str, str], expected: tuple[str, bool, int | None]
) -> None:
    reply = ask(*question)
    got = (dns.rcode.to_text(reply.rcode()), bool(reply.flags & dns.flags.AD), ede_of(reply))
    assert got == expected, [str(o) for o in reply.options]


def test_ad_only_for_clients_that_ask_and_rrsigs_only_with_do(validating: Stack) -> None:
    plain = ask("www.secure.lab.", "A", do=False)
    assert not plain.flags & dns.flags.AD
    assert all(r.rdtype != dns.rdatatype.RRSIG for r in plain.answer)
    with_ad = ask("www.secure.lab.", "A", do=False, ad=True)
    assert with_ad.flags & dns.flags.AD
    assert all(r.rdtype != dns.rdatatype.RRSIG for r in with_ad.answer)
    with_do = ask("www.secure.lab.", "A")
    assert with_do.flags & dns.flags.AD
    assert any(r.rdtype == dns.rdatatype.RRSIG for r in with_do.answer)
    negative = ask("nx2.secure.lab.", "A")
    assert {dns.rdatatype.NSEC, dns.rdatatype.RRSIG} <= {r.rdtype for r in negative.authority}


def test_checking_disabled_gets_bogus_data_and_does_not_poison_cd0(validating: Stack) -> None:
    cd = ask("www.badsig.lab.", "A", cd=True)
    assert cd.rcode() == dns.rcode.NOERROR and not cd.flags & dns.flags.AD
    validated = ask("www.badsig.lab.", "A")
    assert validated.rcode() == dns.rcode.SERVFAIL and ede_of(validated) == 6
    assert ask("www.badsig.lab.", "A", cd=True).rcode() == dns.rcode.NOERROR


def test_insecure_answers_to_plain_clients_do_not_change(validating: Stack) -> None:
    reply = ask("www.example.lab.", "A", do=False)
    assert reply.rcode() == dns.rcode.NOERROR
    assert not reply.flags & dns.flags.AD
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.A]


def test_the_mesh_counts_answers_per_state_and_bogus_reasons(validating: Stack) -> None:
    ask("www2.secure.lab.", "A")
    ask("www.future.lab.", "A", do=False)
    mesh = validating.service.mesh
    assert mesh is not None
    stats = mesh.stats()
    assert stats.dnssec_states.get("secure", 0) >= 1
    assert stats.dnssec_bogus.get("SIGNATURE_NOT_YET_VALID", 0) >= 1


def test_the_query_log_says_the_state(validating: Stack, caplog: pytest.LogCaptureFixture) -> None:
    frontend = validating.service.frontend
    assert frontend is not None
    frontend.query_log = True
    try:
        with caplog.at_level(logging.INFO, logger="rootwalk.query"):
            ask("www3.secure.lab.", "A")
            ask("www.nosig.lab.", "A")
    finally:
        frontend.query_log = False
    lines = [r.getMessage() for r in caplog.records if r.name == "rootwalk.query"]
    assert any("www3.secure.lab." in line and "dnssec=secure" in line for line in lines), lines
    assert any("www.nosig.lab." in line and "dnssec=bogus" in line for line in lines), lines
