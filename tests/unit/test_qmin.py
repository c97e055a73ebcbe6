"""QNAME minimisation's label counts and steps (RFC 9156 §2.3, §3), as pure functions."""

from __future__ import annotations

import dns.name
import dns.rrset
import pytest

from resolver.core.classify import ReplyKind
from resolver.core.qmin import (
    MinimisedStep,
    Minimiser,
    after_minimised,
    minimised_label_count,
    minimised_name,
)
from resolver.limits import MAX_MINIMISE_COUNT, MAX_MINIMISE_TIMEOUTS, MINIMISE_ONE_LAB
from resolver.records import WireRRset

N = dns.name.from_text


def walk_from_root(labels: int) -> list[int]:
    """The label counts of the names asked for a name of ``labels`` labels, from the root."""
    asked, count, steps = 1, 0, []
    while asked < labels:
        count += 1
        asked = minimised_label_count(labels, asked, count)
        steps.append(asked)
    return steps


def test_names_up_to_max_minimise_count_labels_add_one_label_at_a_time() -> None:
    assert walk_from_root(MAX_MINIMISE_COUNT) == list(range(2, MAX_MINIMISE_COUNT + 1))
    assert walk_from_root(3) == [2, 3]


def test_a_long_name_adds_one_label_four_times_then_spreads_the_rest() -> None:
    """20 labels (the root's included): 4 single labels, then the other 15 over the 6
    queries left, the full name last (Unbound asks exactly these names)."""
    assert walk_from_root(20) == [2, 3, 4, 5, 7, 9, 11, 14, 17, 20]
    assert walk_from_root(20)[:MINIMISE_ONE_LAB] == [2, 3, 4, 5]


@pytest.mark.parametrize("labels", range(2, 128))
def test_no_name_costs_more_than_max_minimise_count_queries(labels: int) -> None:
    steps = walk_from_root(labels)
    assert len(steps) <= MAX_MINIMISE_COUNT
    assert steps[-1] == labels
    assert steps == sorted(set(steps))


def test_an_underscore_label_asks_the_full_name() -> None:
    qname = N("_25._tcp.mail.example.org.")
    assert minimised_name(qname, len(N("example.org.")), 1) == N("mail.example.org.")
    assert minimised_name(qname, len(N("mail.example.org.")), 2) == qname


def test_minimiser_walks_to_the_full_name_and_restarts_below_a_new_cut() -> None:
    minimiser = Minimiser(N("www.a.b.example.lab."))
    assert minimiser.next_name(N(".")) == N("lab.")
    assert minimiser.next_name(N("lab.")) == N("example.lab.")  # the cut moved to lab.
    assert minimiser.next_name(N("example.lab.")) == N("b.example.lab.")
    assert minimiser.next_name(N("example.lab.")) == N("a.b.example.lab.")
    assert minimiser.next_name(N("example.lab.")) is None  # now the full question
    deeper = Minimiser(N("www.a.b.example.lab."), asked=N("lab."), count=1)
    assert deeper.next_name(N("b.example.lab.")) == N("a.b.example.lab.")  # from the cut
    assert deeper.count == 1


def test_minimiser_gives_up_after_max_minimise_timeouts() -> None:
    minimiser = Minimiser(N("www.a.b.example.lab."))
    minimiser.next_name(N("example.lab."))
    assert not any(minimiser.timed_out(f"127.0.0.{i}") for i in range(MAX_MINIMISE_TIMEOUTS - 1))
    assert minimiser.timed_out("127.0.0.9")
    assert minimiser.silent == {f"127.0.0.{i}" for i in range(MAX_MINIMISE_TIMEOUTS - 1)} | {
        "127.0.0.9"
    }
    minimiser.next_name(N("example.lab."))  # a new name starts a new count
    assert minimiser.timeouts == 0


def test_what_a_reply_to_a_minimised_question_leads_to() -> None:
    cname = WireRRset.from_rrset(dns.rrset.from_text("a.lab.", 300, "IN", "CNAME", "b.lab."))
    address = WireRRset.from_rrset(dns.rrset.from_text("a.lab.", 300, "IN", "A", "192.0.2.1"))
    assert after_minimised(ReplyKind.REFERRAL, ()) is MinimisedStep.AS_USUAL
    assert after_minimised(ReplyKind.EDNS_UNSUPPORTED, ()) is MinimisedStep.AS_USUAL
    assert after_minimised(ReplyKind.NODATA, ()) is MinimisedStep.NEXT_NAME
    assert after_minimised(ReplyKind.ANSWER, (address,)) is MinimisedStep.NEXT_NAME
    assert after_minimised(ReplyKind.ANSWER, (cname, address)) is MinimisedStep.FULL_NAME
    for kind in (ReplyKind.NXDOMAIN, ReplyKind.CNAME, ReplyKind.SERVER_ERROR):
        assert after_minimised(kind, ()) is MinimisedStep.FULL_NAME
    assert after_minimised(ReplyKind.LAME, ()) is MinimisedStep.LAME
