"""``Resolution`` driven directly with hand-made events: the types, stale references, events
after finishing and a SubqueryDone that answers nothing the machine asked."""

from __future__ import annotations

import dataclasses
import random

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.cache.view import Caches
from resolver.core.events import (
    Failure,
    Finished,
    QueryFailed,
    ReplyReceived,
    SendQuery,
    StartSubquery,
    SubqueryDone,
)
from resolver.core.machine import Resolution
from resolver.core.state import Done, WaitingReply, WaitingSubquery
from resolver.limits import Budget, Limits
from resolver.model import Question, Result, servfail
from resolver.names import name_key
from resolver.records import read_reply
from resolver.transport.upstream import query_wire
from tests.core.harness import lab_responder, lab_root
from tests.helpers import lab_with

LAB = lab_responder(lab_with())
NOW = 1_000_000.0


def test_events_of_different_kinds_with_equal_fields_are_unequal() -> None:
    # As NamedTuples they were equal tuples, and a set or dict keyed on them merged them.
    assert QueryFailed(1, Failure.TIMEOUT) != SubqueryDone(1, Failure.TIMEOUT)  # type: ignore[arg-type]
    assert QueryFailed(1, Failure.TIMEOUT) == QueryFailed(1, Failure.TIMEOUT)
    assert len({QueryFailed(1, Failure.TIMEOUT), SubqueryDone(1, Failure.TIMEOUT)}) == 2  # type: ignore[arg-type]


def test_events_and_actions_are_frozen_and_slotted() -> None:
    result = Result(dns.rcode.NOERROR)
    for item in (
        QueryFailed(1, Failure.TIMEOUT),
        SubqueryDone(1, result),
        Finished(result),
        StartSubquery(1, Question(dns.name.from_text("a.lab."), dns.rdatatype.A)),
    ):
        assert not hasattr(item, "__dict__")
        first_field = dataclasses.fields(item)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(item, first_field, 2)


def machine(qname: str = "www.example.lab.", caches: Caches | None = None) -> Resolution:
    question = Question(dns.name.from_text(qname), dns.rdatatype.A)
    return Resolution(
        question,
        root=lab_root(),
        caches=caches if caches is not None else Caches(),
        budget=Budget(Limits()),
        rng=random.Random(1),
        qname_minimisation=False,
    )


def reply_to(send: SendQuery) -> ReplyReceived:
    """What the lab's server would answer to ``send``."""
    reply = LAB(send.server, dns.message.from_wire(query_wire(send, 0)))
    assert not isinstance(reply, Failure)
    return ReplyReceived(send.ref, read_reply(reply.to_wire()), 0.001)


def only_send(actions: list[object]) -> SendQuery:
    assert len(actions) == 1
    (send,) = actions
    assert isinstance(send, SendQuery)
    return send


def walk_to_the_end(resolution: Resolution, send: SendQuery) -> Result:
    """Answer every query as the lab would until the machine finishes."""
    for _ in range(20):
        actions = resolution.handle(reply_to(send), NOW)
        if isinstance(actions[0], Finished):
            return actions[0].result
        send = only_send(actions)
    raise AssertionError("no end")


def test_events_for_a_reference_the_machine_does_not_wait_on_are_ignored() -> None:
    resolution = machine()
    send = only_send(resolution.start(NOW))
    assert resolution.state == WaitingReply(send)  # the state holds what it waits on
    stale = send.ref + 100
    assert resolution.handle(QueryFailed(stale, Failure.TIMEOUT), NOW) == []
    assert resolution.handle(dataclasses.replace(reply_to(send), ref=stale), NOW) == []
    assert resolution.handle(SubqueryDone(stale, Result(dns.rcode.SERVFAIL)), NOW) == []
    assert resolution.state == WaitingReply(send)
    # The try in flight is still the one awaited: its reply moves the walk on.
    result = walk_to_the_end(resolution, send)
    assert result.rcode == dns.rcode.NOERROR


def test_a_reply_to_an_earlier_try_is_stale_once_the_next_was_sent() -> None:
    resolution = machine()
    first = only_send(resolution.start(NOW))
    second = only_send(resolution.handle(reply_to(first), NOW))  # the root's referral
    assert second.ref != first.ref
    assert resolution.handle(reply_to(first), NOW) == []  # the root's reply again: stale
    assert resolution.handle(QueryFailed(first.ref, Failure.TIMEOUT), NOW) == []
    assert walk_to_the_end(resolution, second).rcode == dns.rcode.NOERROR


def test_events_after_finishing_are_ignored() -> None:
    # Ignored rather than an error: the I/O around the machine races it (a late UDP reply, a
    # sub-resolution ending after the client's deadline finished its parent), so an event
    # after Finished is a normal happening, not a caller's bug.
    resolution = machine()
    send = only_send(resolution.start(NOW))
    result = walk_to_the_end(resolution, send)
    assert resolution.state == Done(result)
    assert resolution.result == result
    assert resolution.handle(reply_to(send), NOW) == []
    assert resolution.handle(QueryFailed(send.ref, Failure.TIMEOUT), NOW) == []
    assert resolution.handle(SubqueryDone(send.ref, servfail("late")), NOW) == []
    assert resolution.result == result


def test_a_subquery_done_for_the_query_in_flight_is_ignored() -> None:
    # ``send.ref`` names an upstream query, not a sub-resolution: the machine keeps waiting.
    resolution = machine()
    send = only_send(resolution.start(NOW))
    assert resolution.handle(SubqueryDone(send.ref, Result(dns.rcode.NOERROR)), NOW) == []
    assert walk_to_the_end(resolution, send).rcode == dns.rcode.NOERROR


def test_a_reply_for_the_subquery_awaited_is_ignored() -> None:
    # glueless.lab.'s name servers have no glue: the machine starts a sub-resolution and
    # waits on it; a ReplyReceived or QueryFailed with that ref answers nothing it asked.
    resolution = machine("www.glueless.lab.")
    actions = resolution.start(NOW)
    for _ in range(10):
        (action,) = actions
        if isinstance(action, StartSubquery):
            break
        assert isinstance(action, SendQuery)
        actions = resolution.handle(reply_to(action), NOW)
    else:
        raise AssertionError("no sub-resolution started")
    assert action.question.qname == dns.name.from_text("nsg.other.example.")
    ns_key = name_key(action.question.qname)
    assert resolution.state == WaitingSubquery(action.ref, ns_key, dns.rdatatype.A)
    assert resolution.handle(QueryFailed(action.ref, Failure.TIMEOUT), NOW) == []
    assert resolution.state == WaitingSubquery(action.ref, ns_key, dns.rdatatype.A)
    done = resolution.handle(SubqueryDone(action.ref, servfail("no address")), NOW)
    assert done  # the real SubqueryDone is taken: the machine moves on


def test_a_late_reply_to_a_listening_try_is_taken_and_the_try_in_flight_abandoned() -> None:
    caches = Caches()
    for (
        address
    ) in lab_root().addresses():  # a known RTT: a try's wait is shorter than its listening
        caches.infra.record_rtt(address, 0.01, NOW)
    resolution = machine(caches=caches)
    first = only_send(resolution.start(NOW))
    assert first.timeout_s < first.listen_s
    second = only_send(resolution.handle(QueryFailed(first.ref, Failure.TIMEOUT), NOW))
    assert resolution.state == WaitingReply(second)
    onward = only_send(resolution.handle(reply_to(first), NOW))  # the root's late referral
    assert onward.zone == dns.name.from_text("lab.")
    assert resolution.handle(reply_to(second), NOW) == []  # abandoned: stale now
    assert walk_to_the_end(resolution, onward).rcode == dns.rcode.NOERROR
