"""The differential test's own rules (pure functions; part of the default suite)."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rrset
import pytest

from resolver.lab.description import load_lab_description
from resolver.paths import lab_description
from tests.peer.compare import (
    TIMEOUT,
    Allowed,
    AllowListError,
    Asked,
    Reply,
    judge,
    load_allowed,
    reply_of,
    same,
)
from tests.peer.questions import derive_questions

A = frozenset({("www.example.lab.", "A", "192.0.2.10")})


def test_timeout_from_unbound_equals_servfail_from_rootwalk_only() -> None:
    assert same(Reply("SERVFAIL"), Reply(TIMEOUT))
    assert not same(Reply("NOERROR", answer=A), Reply(TIMEOUT))
    assert not same(Reply(TIMEOUT), Reply("SERVFAIL"))


def test_truncated_replies_compare_rcode_and_tc_only() -> None:
    assert same(Reply("NOERROR", True, A), Reply("NOERROR", True))
    assert not same(Reply("NOERROR", True), Reply("NOERROR", False, A))
    assert not same(Reply("NOERROR", answer=A), Reply("NOERROR"))


def test_allowed_and_stale_entries() -> None:
    asked = Asked("example.lab.", "ANY", "udp", True, 1)
    ours, theirs = {asked: Reply("NOERROR", answer=A)}, {asked: Reply("NOERROR")}
    entry = Allowed("example.lab.", "ANY", "RFC 8482", transport="udp")
    stale = Allowed("www.example.lab.", "A", "no longer differs")
    verdict = judge(ours, theirs, [entry, stale])
    assert not verdict.differences
    assert verdict.stale == [stale]
    assert verdict.failed
    assert judge(ours, theirs, []).differences


def test_allow_list_file_is_valid_and_entries_need_a_reason(tmp_path: Path) -> None:
    load_allowed()
    bad = tmp_path / "allowed.toml"
    bad.write_text('[[difference]]\nname = "a.lab."\ntype = "A"\n')
    with pytest.raises(AllowListError):
        load_allowed(bad)


def test_questions_cover_every_lab_zone_and_its_special_names() -> None:
    description = load_lab_description(lab_description())
    questions = {(q.name, q.type) for q in derive_questions(description)}
    for zone in description.zone_files:
        assert (zone.to_text(), "SOA") in questions
        assert (f"peer-nx.{zone}".replace("..", "."), "A") in questions
    assert ("pc.lab.", "DS") in questions  # DS at a delegation point
    assert ("ns2.pc.lab.", "A") in questions  # a glue-only name
    assert ("peer-w.wild.example.lab.", "A") in questions  # under a wildcard
    assert ("ent.example.lab.", "A") in questions  # an empty non-terminal


def test_a_zone_entry_covers_only_unbounds_silences_below_it() -> None:
    silent = Asked("www.fb.lab.", "A", "udp", True, 1)
    wrong = Asked("ns1.fb.lab.", "A", "udp", True, 1)
    elsewhere = Asked("www.example.lab.", "A", "tcp", False, 2)
    ours = {
        silent: Reply("NOERROR", answer=A),
        wrong: Reply("NXDOMAIN"),
        elsewhere: Reply("NOERROR", answer=A),
    }
    theirs = {silent: Reply(TIMEOUT), wrong: Reply("NOERROR", answer=A), elsewhere: Reply(TIMEOUT)}
    entry = Allowed("", "", "parent-side glue", zone="fb.lab.", unbound_silent=True)
    verdict = judge(ours, theirs, [entry])
    assert [d.asked for d, _ in verdict.allowed] == [silent]
    assert sorted(d.asked for d in verdict.differences) == [wrong, elsewhere]
    anywhere = Allowed("", "A", "every A", zone=".")
    assert len(judge(ours, theirs, [anywhere]).allowed) == 3


def test_an_entry_names_a_question_or_a_zone(tmp_path: Path) -> None:
    both = tmp_path / "allowed.toml"
    both.write_text('[[difference]]\nname = "a.lab."\ntype = "A"\nzone = "lab."\nreason = "x"\n')
    with pytest.raises(AllowListError, match="either name and type, or zone"):
        load_allowed(both)
    both.write_text('[[difference]]\nname = "a.lab."\nreason = "x"\n')
    with pytest.raises(AllowListError, match="either name and type, or zone"):
        load_allowed(both)


SIGNED = frozenset(
    {("www.secure.lab.", "A", "192.0.2.100"), ("www.secure.lab.", "RRSIG", "A secure.lab.")}
)


def test_validating_replies_compare_ad_and_ede_when_unbound_gives_one() -> None:
    assert not same(
        Reply("NOERROR", answer=SIGNED, ad=False), Reply("NOERROR", answer=SIGNED, ad=True)
    )
    assert same(Reply("SERVFAIL", ad=False, ede=9), Reply("SERVFAIL", ad=False))
    assert not same(Reply("SERVFAIL", ad=False, ede=9), Reply("SERVFAIL", ad=False, ede=6))


def test_rrsigs_compare_by_type_covered_and_signer() -> None:
    rrsig = "A 13 3 3600 20360101000000 20260101000000 52194 secure.lab. {}"
    one, other = (
        dns.rrset.from_text("www.secure.lab.", 3600, "IN", "RRSIG", rrsig.format(sig))
        for sig in ("AAAA", "BBBB")
    )
    replies = []
    for sig in (one, other):
        message = dns.message.make_response(dns.message.make_query("www.secure.lab.", "A"))
        message.answer.append(sig)
        replies.append(reply_of(message, validating=True))
    assert replies[0] == replies[1]
    assert ("www.secure.lab.", "RRSIG", "A secure.lab.") in replies[0].answer


def test_differs_in_narrows_an_entry_and_validating_entries_load_apart(tmp_path: Path) -> None:
    asked = Asked("www.secure.lab.", "A", "cd", True, 1)
    ad_only = {asked: Reply("NOERROR", answer=SIGNED, ad=False)}
    unbound = {asked: Reply("NOERROR", answer=SIGNED, ad=True)}
    entry = Allowed("", "", "CD", transport="cd", zone=".", differs_in=frozenset({"ad"}))
    assert judge(ad_only, unbound, [entry]).allowed
    servfail = {asked: Reply("SERVFAIL", ad=False)}
    assert judge(servfail, unbound, [entry]).differences
    path = tmp_path / "allowed.toml"
    path.write_text(
        '[[difference]]\nzone = "."\ntransport = "cd"\nvalidating = true\n'
        'differs_in = ["ad"]\nreason = "x"\n'
        '[[difference]]\nzone = "."\ntype = "ANY"\nreason = "y"\n'
    )
    assert [e.reason for e in load_allowed(path, validating=True)] == ["x"]
    assert [e.reason for e in load_allowed(path)] == ["y"]
    path.write_text('[[difference]]\nzone = "."\ntransport = "cd"\nreason = "x"\n')
    with pytest.raises(AllowListError, match="transport"):
        load_allowed(path)
    path.write_text('[[difference]]\nzone = "."\ndiffers_in = ["bytes"]\nreason = "x"\n')
    with pytest.raises(AllowListError, match="differs_in"):
        load_allowed(path)
