"""Security states and the verdict the validator hands each RRset or answer.

RFC 4033 §5 and RFC 4035 §4.3 name four states: *secure* (a chain of signed DNSKEY and DS
records leads from a trust anchor to the data), *insecure* (a signed proof that the chain
ends above the data: no DS at a delegation, or only algorithms or digests this validator
does not implement, RFC 6840 §5.2, RFC 4509 §3), *bogus* (a chain should exist and does not
hold) and *indeterminate* (no trust anchor covers the name). A bogus verdict becomes
SERVFAIL with the RFC 8914 Extended DNS Error it carries; its text names the zone and the
record that failed, as Unbound's ``val-log-level: 2`` reasons do.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name

from resolver.model import ExtendedError, Security

__all__ = ["INDETERMINATE", "SECURE", "Security", "Verdict", "bogus", "insecure", "out_of_work"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state, with the Extended DNS Error (RFC 8914 §4) and a sentence for bogus answers
    (and for insecure ones where the reason is worth telling: an unsupported algorithm).

    ``wildcard``, on a secure verdict for an RRset synthesised from a wildcard (RRSIG labels
    field below the owner's label count, RFC 4035 §5.3.4), is the wildcard's name
    ``*.<closest encloser>`` (the "source of synthesis", RFC 4592 §3.3.1): the answer is
    secure only once an NSEC or NSEC3 proves the exact name does not exist (RFC 4035 §5.3.4,
    RFC 5155 §8.8).

    ``ttl``, on a secure verdict for a verified RRset, is the most seconds it may be kept:
    the verifying RRSIG's original TTL and the seconds left until it expires
    (RFC 4035 §5.3.3); the caller keeps the smaller of this and the RRset's TTL."""

    state: Security
    code: ExtendedError | None = None
    text: str = ""
    wildcard: dns.name.Name | None = None
    ttl: int | None = None

    @property
    def is_secure(self) -> bool:
        return self.state is Security.SECURE

    @property
    def is_bogus(self) -> bool:
        return self.state is Security.BOGUS


SECURE = Verdict(Security.SECURE)
INDETERMINATE = Verdict(Security.INDETERMINATE)


def bogus(code: ExtendedError, text: str) -> Verdict:
    """A bogus verdict: SERVFAIL with ``code`` and ``text`` for the client (RFC 8914)."""
    return Verdict(Security.BOGUS, code, text)


def insecure(text: str = "", code: ExtendedError | None = None) -> Verdict:
    """An insecure verdict, with the reason when there is one worth telling."""
    return Verdict(Security.INSECURE, code, text)


def out_of_work(zone: dns.name.Name, what: str) -> Verdict:
    """The verdict when a work budget of :mod:`resolver.limits` is spent (KeyTrap,
    CVE-2023-50387): bogus with EDE 6, as Unbound 1.19.1 and dnsjava answer
    (``validate.bogus.rrsigtoomany``)."""
    return bogus(ExtendedError.DNSSEC_BOGUS, f"validation work limit reached at {zone}: {what}")
