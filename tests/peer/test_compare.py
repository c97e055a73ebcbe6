"""The differential test's own rules (pure functions; part of the default suite)."""

from __future__ import annotations

from pathlib import Path

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
