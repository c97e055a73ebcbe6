"""QNAME minimisation, relaxed (RFC 9156): ask each zone only for the next label it needs.

A resolution that minimises asks the servers of a zone cut for an ancestor of the name it
resolves, one label (or, deep down, a few labels) below the cut, with QTYPE A, and asks the
full question only when the ancestor it reached is the name itself. :class:`Minimiser` holds
that walk for one name; the machine (``core/machine.py``) tells it when the cut moves and
when a minimised question failed, and falls back to the full name as Unbound does with its
default ``qname-minimisation-strict: no``.

Pure and sans-IO: no cache, no clock; the machine consults the caches.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype

from resolver.core.classify import ReplyKind
from resolver.limits import MAX_MINIMISE_COUNT, MAX_MINIMISE_TIMEOUTS, MINIMISE_ONE_LAB
from resolver.records import WireRRset

MINIMISE_MULTIPLE_LABS = MAX_MINIMISE_COUNT - MINIMISE_ONE_LAB
"""The minimised queries left, after the first one-label ones, for the rest of the labels."""

MINIMISED_QTYPE = dns.rdatatype.A
"""RFC 9156 §2.1 allows A or NS for the minimised questions. A, as Unbound since 1.7.2: NS
questions made some broken servers (and middleboxes) fail where A works, A is the most common
QTYPE so it hides among other questions, and a zone cut still shows as a referral to it."""


def is_underscore_label(label: bytes) -> bool:
    """A label such as ``_25`` or ``_tcp``: RFC 9156 §2.3 lets a resolver assume such labels
    are no administrative boundary (RFC 8552 attribute leaves)."""
    return label.startswith(b"_")


def minimised_label_count(qname_labels: int, previous_labels: int, count: int) -> int:
    """How many labels (the root's included) the next minimised name has (RFC 9156 §2.3).

    ``previous_labels`` is the last name asked (or the zone cut), ``count`` the number of this
    minimised query for the name (from 1). Names of up to ``MAX_MINIMISE_COUNT`` labels, and
    the first ``MINIMISE_ONE_LAB`` queries of longer ones, add one label; after that the
    remaining labels are spread evenly over the queries left, and the last allowed query asks
    the full name. The arithmetic is Unbound's (``iterator.c``, processQueryTargets)."""
    if qname_labels - previous_labels <= 1:
        return qname_labels
    if qname_labels <= MAX_MINIMISE_COUNT or count <= MINIMISE_ONE_LAB:
        return previous_labels + 1
    if count >= MAX_MINIMISE_COUNT:
        return qname_labels
    multiple = qname_labels - 1 - MINIMISE_ONE_LAB
    extra = multiple // MINIMISE_MULTIPLE_LABS
    if MAX_MINIMISE_COUNT - count >= multiple % MINIMISE_MULTIPLE_LABS:
        extra -= 1  # one label is added anyway
    return min(previous_labels + 1 + extra, qname_labels)


def minimised_name(qname: dns.name.Name, previous_labels: int, count: int) -> dns.name.Name:
    """The next ancestor of ``qname`` to ask (``qname`` itself when minimisation is over).

    Once a label to add starts with an underscore, the full name is asked (RFC 9156 §2.3:
    ``_25._tcp.mail.example.org`` after ``mail.example.org``)."""
    labels = minimised_label_count(len(qname), previous_labels, count)
    added = qname.labels[len(qname) - labels : len(qname) - previous_labels]
    if any(is_underscore_label(label) for label in added):
        return qname
    return dns.name.Name(qname.labels[len(qname) - labels :])


@dataclass(slots=True)
class Minimiser:
    """The minimised walk toward one name (RFC 9156 §3): what was asked last, how many
    minimised questions were sent, and the timeouts of the one in flight."""

    qname: dns.name.Name
    asked: dns.name.Name | None = None
    """The last minimised name (Unbound's ``qinfo_out``), or None before the first."""
    count: int = 0
    timeouts: int = 0
    silent: set[str] = field(default_factory=set)
    """Servers that failed a minimised question (they may still answer the full one)."""

    def next_name(self, zone: dns.name.Name) -> dns.name.Name | None:
        """The next ancestor to ask the servers of ``zone``, or None when the next question
        is the full one. Starts again at ``zone`` when the cut is no longer above the last
        name asked (RFC 9156 §3 steps 2-4)."""
        asked = self.asked
        if asked is None or not (self.qname.is_subdomain(asked) and asked.is_subdomain(zone)):
            asked = zone
            self.count = 0
        self.count += 1
        self.timeouts = 0
        name = minimised_name(self.qname, len(asked), self.count)
        if len(name) == len(self.qname):
            return None
        self.asked = name
        return name

    def timed_out(self, server: str) -> bool:
        """A minimised question to ``server`` got no reply; True when it is time to fall back
        to the full name (Unbound's ``MAX_MINIMISE_TIMEOUT_COUNT``)."""
        self.timeouts += 1
        self.silent.add(server)
        return self.timeouts >= MAX_MINIMISE_TIMEOUTS


class MinimisedStep(enum.Enum):
    """What a reply to a minimised question leads to."""

    AS_USUAL = "as usual"  # a referral (the cut moves), FORMERR to EDNS (retry without)
    NEXT_NAME = "next name"  # NOERROR: add labels
    FULL_NAME = "full name"  # fall back to the full question
    LAME = "lame"  # the server is lame: fall back, and handle it as any lame server


def after_minimised(kind: ReplyKind, chain: tuple[WireRRset, ...]) -> MinimisedStep:
    """RFC 9156 §3 step 6 with Unbound's relaxed fallbacks (``qname-minimisation-strict:
    no``). NOERROR without a CNAME (NODATA at an empty non-terminal, or the ancestor's own
    A records) adds labels. NXDOMAIN falls back to the full name, as Unbound does without
    DNSSEC: a broken server may say NXDOMAIN for an empty non-terminal and nothing tells it
    apart from one that follows RFC 8020 (which then says NXDOMAIN again, one query later).
    A CNAME (the ancestor is an alias) is not followed: its target is no answer to the name
    asked. REFUSED, SERVFAIL, FORMERR without EDNS (RFC 9156 §2.4) fall back too; the
    server is not marked lame for them, since it may answer the full question."""
    match kind:
        case ReplyKind.REFERRAL | ReplyKind.EDNS_UNSUPPORTED:
            return MinimisedStep.AS_USUAL
        case ReplyKind.NODATA | ReplyKind.ANSWER:
            if any(rrset.rdtype == dns.rdatatype.CNAME for rrset in chain):
                return MinimisedStep.FULL_NAME
            return MinimisedStep.NEXT_NAME
        case ReplyKind.LAME:
            return MinimisedStep.LAME
        case _:  # NXDOMAIN, CNAME, SERVER_ERROR, and kinds added later (DNAME, YXDOMAIN)
            return MinimisedStep.FULL_NAME
