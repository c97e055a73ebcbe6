"""The states of one :class:`~resolver.core.machine.Resolution`, as Unbound's iterator names
them (``iterator/iterator.h``: INIT_REQUEST, QUERYTARGETS, QUERY_RESP, FINISHED), each a
small value that carries what that state needs.

A waiting state holds what it waits on, so an event matches the state itself: a
``ReplyReceived`` is taken only in :class:`WaitingReply` with the same ``ref`` (or for an
earlier try still listening), a ``SubqueryDone`` only in :class:`WaitingSubquery` with the
same ``ref``; anything else is stale and ignored. A reply taken becomes
:class:`ReplyArrived`, the state whose handler classifies it (QUERY_RESP).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name

from resolver.core.events import ReplyReceived, SendQuery
from resolver.model import Result
from resolver.names import NameKey


@dataclass(frozen=True, slots=True)
class Init:
    """INIT_REQUEST: answer from the cache, or find the closest zone cut for the current
    name (RFC 1034 §5.3.3 steps 1-2)."""


@dataclass(frozen=True, slots=True)
class QueryTargets:
    """QUERYTARGETS: pick the next server of the cut, or look up a glueless one's address."""


@dataclass(frozen=True, slots=True)
class WaitingReply:
    """Waiting for the reply to ``query`` (or its failure)."""

    query: SendQuery


@dataclass(frozen=True, slots=True)
class WaitingSubquery:
    """Waiting for the sub-resolution ``ref``: the addresses (``qtype`` A or AAAA) of the
    name server ``ns_key``."""

    ref: int
    ns_key: NameKey
    qtype: int


@dataclass(frozen=True, slots=True)
class WaitingKeys:
    """VALIDATING: waiting for the fetch ``ref`` of ``zone``'s DNSKEY or DS RRset
    (``qtype``), which the answer's validation needs (:mod:`resolver.core.validating`)."""

    ref: int
    zone: dns.name.Name
    qtype: int


@dataclass(frozen=True, slots=True)
class ReplyArrived:
    """QUERY_RESP: ``reply`` answered ``query``; its handler classifies and follows it."""

    query: SendQuery
    reply: ReplyReceived


@dataclass(frozen=True, slots=True)
class Done:
    """FINISHED: ``result`` was returned in a ``Finished`` action; later events are ignored."""

    result: Result


INIT = Init()
QUERY_TARGETS = QueryTargets()

State = Init | QueryTargets | WaitingReply | WaitingSubquery | WaitingKeys | ReplyArrived | Done
