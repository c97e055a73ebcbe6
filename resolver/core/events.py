"""Events fed into a Resolution (past-tense facts) and the actions it returns (commands)."""

from __future__ import annotations

import enum
from typing import NamedTuple

import dns.name
import dns.rdatatype

from resolver.model import Question, Result
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


class ReplyReceived(NamedTuple):
    """A reply that matched our query's ID, source and question (RFC 5452 §9.1)."""

    ref: int
    reply: Reply
    rtt_s: float


class QueryFailed(NamedTuple):
    ref: int
    failure: Failure


class SubqueryDone(NamedTuple):
    ref: int
    result: Result


Event = ReplyReceived | QueryFailed | SubqueryDone


# Actions ------------------------------------------------------------------------------------


class SendQuery(NamedTuple):
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


class StartSubquery(NamedTuple):
    """Resolve ``question`` as a separate resolution and report back with SubqueryDone."""

    ref: int
    question: Question


class Finished(NamedTuple):
    result: Result


Action = SendQuery | StartSubquery | Finished
