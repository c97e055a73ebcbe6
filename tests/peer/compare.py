"""What the differential test compares, and the allow-list of differences kept on purpose.

A reply is reduced to its rcode, its TC bit and its answer section as a set of (owner name
lowercased, type, rdata in canonical form, RFC 4034 §6.2), TTLs ignored. Rules:

* both replies truncated (TC=1): only rcode and TC are compared (RFC 2181 §9: the answer of
  a truncated reply is not to be used);
* no reply from Unbound in time equals SERVFAIL from Rootwalk (Unbound drops a client's
  question it has given up on, Rootwalk answers SERVFAIL at its client deadline);
* otherwise rcode, TC and the answer set must be equal.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdatatype

TRANSPORTS = ("udp-edns", "udp", "tcp")
"""UDP with EDNS (1232-octet buffer), UDP without EDNS (512 octets), TCP."""
TIMEOUT = "TIMEOUT"
"""The rcode recorded when no reply came before the client gave up."""
ALLOWED_FILE = Path(__file__).with_name("allowed_differences.toml")


@dataclass(frozen=True, slots=True)
class Reply:
    rcode: str
    tc: bool = False
    answer: frozenset[tuple[str, str, str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"rcode": self.rcode, "tc": self.tc, "answer": sorted(self.answer)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(data["rcode"], data["tc"], frozenset(tuple(r) for r in data["answer"]))

    def summary(self) -> str:
        if self.rcode == TIMEOUT:
            return "no reply (timeout)"
        text = self.rcode + (" TC" if self.tc else "")
        if self.answer:
            text += ": " + ", ".join(f"{n} {t} {r}" for n, t, r in sorted(self.answer))
        return text


def canonical_rdata(rdata: dns.rdata.Rdata) -> str:
    """The rdata's text after the RFC 4034 §6.2 canonical form (names in NS, CNAME, SOA,
    MX, ... lowercased; TXT and the rest kept as sent)."""
    wire = rdata.to_digestable()
    return dns.rdata.from_wire(rdata.rdclass, rdata.rdtype, wire, 0, len(wire)).to_text()


def reply_of(message: dns.message.Message) -> Reply:
    answer = frozenset(
        (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), canonical_rdata(rd))
        for rrset in message.answer
        for rd in rrset
    )
    tc = bool(message.flags & dns.flags.TC)
    return Reply(dns.rcode.to_text(message.rcode()), tc, answer)


def same(rootwalk: Reply, unbound: Reply) -> bool:
    """Whether the two replies agree under the module's rules."""
    if unbound.rcode == TIMEOUT:
        return rootwalk.rcode in (TIMEOUT, "SERVFAIL")
    if rootwalk.tc and unbound.tc:
        return rootwalk.rcode == unbound.rcode
    return rootwalk == unbound


@dataclass(frozen=True, slots=True, order=True)
class Asked:
    """One asking of one question: over which transport, with QNAME minimisation on or off
    in both resolvers, and whether it was the first asking or the second (from cache)."""

    name: str
    type: str
    transport: str
    qmin: bool
    attempt: int


@dataclass(frozen=True, slots=True)
class Difference:
    asked: Asked
    rootwalk: Reply
    unbound: Reply


@dataclass(frozen=True, slots=True)
class Allowed:
    """An allow-list entry: a difference kept on purpose, with the reason. It names one
    question (``name`` and ``type``) or every question at or below a ``zone`` (of one
    ``type`` when given); with
    ``unbound_silent`` it covers only askings that Unbound left without a reply while
    Rootwalk answered (any rcode but SERVFAIL)."""

    name: str
    type: str
    reason: str
    transport: str | None = None
    qmin: bool | None = None
    zone: str | None = None
    unbound_silent: bool = False
    may_not_occur: bool = False
    """The difference depends on timing or on the order in which the caches fill: a run
    that does not see it leaves the entry true (never stale). Implied by ``unbound_silent``."""

    def matches(self, difference: Difference) -> bool:
        asked = difference.asked
        if self.zone is not None:
            below = self.zone == "." or asked.name.endswith("." + self.zone)
            at = (asked.name == self.zone or below) and self.type in ("", asked.type)
        else:
            at = self.name == asked.name and self.type == asked.type
        silent = difference.unbound.rcode == TIMEOUT and difference.rootwalk.rcode not in (
            TIMEOUT,
            "SERVFAIL",
        )
        return (
            at
            and self.transport in (None, asked.transport)
            and self.qmin in (None, asked.qmin)
            and (silent or not self.unbound_silent)
        )


class AllowListError(ValueError):
    """The allow-list names an unknown key or lacks a reason."""


ALLOWED_KEYS = {
    "name",
    "type",
    "reason",
    "transport",
    "qmin",
    "zone",
    "unbound_silent",
    "may_not_occur",
}


def load_allowed(path: Path = ALLOWED_FILE) -> list[Allowed]:
    """``[[difference]]`` tables: a reason, then name and type (or zone), all absolute;
    optional transport, qmin and unbound_silent."""
    data = tomllib.loads(path.read_text())
    entries = []
    for number, raw in enumerate(data.get("difference", []), start=1):
        where = f"{path.name}: difference #{number}"
        unknown = set(raw) - ALLOWED_KEYS
        if unknown:
            raise AllowListError(f"{where}: unknown keys {sorted(unknown)}")
        if not str(raw.get("reason", "")).strip():
            raise AllowListError(f"{where}: a reason is required")
        if raw.get("transport") not in (None, *TRANSPORTS):
            raise AllowListError(f"{where}: transport is one of {TRANSPORTS}")
        if ("zone" in raw) == ("name" in raw) or ("name" in raw and "type" not in raw):
            raise AllowListError(f"{where}: either name and type, or zone (and a type)")
        names = [str(raw[key]).lower() for key in ("name", "zone") if key in raw]
        if not names[0].endswith("."):
            raise AllowListError(f"{where}: the name is absolute (ends with a dot)")
        entries.append(
            Allowed(
                names[0] if "name" in raw else "",
                str(raw.get("type", "")).upper(),
                raw["reason"],
                raw.get("transport"),
                raw.get("qmin"),
                names[0] if "zone" in raw else None,
                bool(raw.get("unbound_silent", False)),
                bool(raw.get("may_not_occur", False)),
            )
        )
    return entries


@dataclass(slots=True)
class Verdict:
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    allowed: list[tuple[Difference, Allowed]] = field(default_factory=list)
    stale: list[Allowed] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.differences or self.stale)


def judge(
    rootwalk: dict[Asked, Reply], unbound: dict[Asked, Reply], allowed: list[Allowed]
) -> Verdict:
    """Compare every asking both resolvers answered; sort the differences into allowed and
    not; an allow-list entry that matches no difference is stale (the file stays true)."""
    verdict = Verdict()
    used: set[int] = set()
    for asked in sorted(rootwalk.keys() & unbound.keys()):
        verdict.compared += 1
        ours, theirs = rootwalk[asked], unbound[asked]
        if same(ours, theirs):
            continue
        difference = Difference(asked, ours, theirs)
        entry = next((e for e in allowed if e.matches(difference)), None)
        if entry is None:
            verdict.differences.append(difference)
        else:
            used.add(id(entry))
            verdict.allowed.append((difference, entry))
    verdict.stale = [
        e for e in allowed if id(e) not in used and not (e.unbound_silent or e.may_not_occur)
    ]
    return verdict


def report(verdict: Verdict, questions: int, skipped: dict[str, str]) -> str:
    """The differences grouped by question, then by the pair of replies, with the askings
    (transport, qmin, attempt) that gave each pair."""
    lines = [
        f"{questions} questions, {verdict.compared} askings compared; "
        f"{len(verdict.differences)} differences not allowed, {len(verdict.allowed)} allowed, "
        f"{len(verdict.stale)} stale allow-list entries",
    ]
    for zone, why in sorted(skipped.items()):
        lines.append(f"skipped zone {zone}: {why}")
    grouped: dict[tuple[str, str], dict[tuple[Reply, Reply], list[Asked]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for difference in verdict.differences:
        asked = difference.asked
        grouped[(asked.name, asked.type)][(difference.rootwalk, difference.unbound)].append(asked)
    for (name, rdtype), pairs in grouped.items():
        lines.append(f"\n{name} {rdtype}")
        for (ours, theirs), askings in pairs.items():
            where = ", ".join(
                f"{a.transport}/qmin-{'on' if a.qmin else 'off'}/{'first' if a.attempt == 1 else 'cached'}"
                for a in askings
            )
            lines.append(f"  [{where}]")
            lines.append(f"    rootwalk: {ours.summary()}")
            lines.append(f"    unbound:  {theirs.summary()}")
    for difference, entry in verdict.allowed:
        asked = difference.asked
        lines.append(f"allowed: {asked.name} {asked.type} {asked.transport}: {entry.reason}")
    for entry in verdict.stale:
        lines.append(
            f"stale allow-list entry (no longer differs): {entry.name} {entry.type}"
            f" transport={entry.transport} qmin={entry.qmin}"
        )
    return "\n".join(lines)
