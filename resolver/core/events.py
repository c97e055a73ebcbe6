"""Events fed into a Resolution (past-tense facts) and the actions it returns (commands).

Each is a frozen, slotted dataclass: immutable like the tuples they replace, but compared by
type as well as fields, so ``QueryFailed(1, TIMEOUT) != SubqueryDone(1, TIMEOUT)`` (two
NamedTuples with equal fields are equal tuples). Dispatch with ``match`` and
``typing.assert_never``.

The cost (``benchmarks/events.py``, Python 3.11, a busy 2-core machine): building and
matching one takes 0.1-0.4 µs more than a NamedTuple, a ``SendQuery`` about 0.8 µs more (a
frozen dataclass's ``__init__`` calls ``object.__setattr__`` once per field; it had eight
then, ten now that it carries its names' keys).
A never-seen name whose zone's delegation is cached makes one SendQuery, one ReplyReceived
and one Finished: about 1.1 µs more per name, under 1% of the ~175 µs a miss costs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from resolver.model import Question, Result
from resolver.names import NameKey
from resolver.records import Reply


class Failure(enum.Enum):
    """Why one upstream query produced no usable reply."""

    TIMEOUT = "timed out"
    NETWORK_ERROR = "network error"
    MALFORMED = "malformed reply"
    PROHIBITED = "destination not in the outbound allow-list"
    LOCAL_ADDRESS = "local address not named in the outbound allow-list"
    """127.0.0.0/8, ::1, 0.0.0.0/8 or ::, not queried unless the allow-list names them (as
    Unbound's ``do-not-query-localhost: yes``)."""


# Events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """A reply that matched our query's ID, source and question (RFC 5452 §9.1)."""

    ref: int
    reply: Reply
    rtt_s: float


@dataclass(frozen=True, slots=True)
class QueryFailed:
    """No usable reply to query ``ref``: why (the driver's timer or the transport)."""

    ref: int
    failure: Failure


@dataclass(frozen=True, slots=True)
class SubqueryDone:
    """The sub-resolution started by ``StartSubquery(ref, ...)`` ended with ``result``."""

    ref: int
    result: Result


Event = ReplyReceived | QueryFailed | SubqueryDone


# Actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Ask ``server`` (an IP address; the transport adds the port) one question.

    ``timeout_s`` is this try's wait: when it passes the transport reports a timeout, yet a
    UDP try keeps its socket open for a late reply until ``listen_s`` after its send (the
    exchange's deadline), unless the question at that server is settled first. A TCP try
    waits ``listen_s``."""

    ref: int
    server: str
    qname: dns.name.Name
    qtype: dns.rdatatype.RdataType
    use_edns: bool
    zone: dns.name.Name
    timeout_s: float
    listen_s: float = 0.0
    """0: no longer than ``timeout_s``."""
    qname_key: NameKey = field(kw_only=True)
    """``qname`` lower-cased in wire form: what the transport sends and matches replies by."""
    zone_key: NameKey = field(kw_only=True)
    """``zone`` lower-cased in wire form."""
    dnssec_ok: bool = field(default=False, kw_only=True)
    """Set the DO bit (RFC 3225 §3): ask for RRSIG, NSEC and NSEC3 records to validate."""


@dataclass(frozen=True, slots=True)
class StartSubquery:
    """Resolve ``question`` as a separate resolution and report back with SubqueryDone."""

    ref: int
    question: Question


@dataclass(frozen=True, slots=True)
class Finished:
    """The resolution is over; it ignores any later event."""

    result: Result


Action = SendQuery | StartSubquery | Finished
