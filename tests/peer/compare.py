"""What the differential test compares, and the allow-list of differences kept on purpose.

A reply is reduced to its rcode, its TC bit and its answer section as a set of (owner name
lowercased, type, rdata in canonical form, RFC 4034 §6.2), TTLs ignored. Rules:

* both replies truncated (TC=1): only rcode and TC are compared (RFC 2181 §9: the answer of
  a truncated reply is not to be used);
* no reply from Unbound in time equals SERVFAIL from Rootwalk (Unbound drops a client's
  question it has given up on, Rootwalk answers SERVFAIL at its client deadline);
* otherwise rcode, TC and the answer set must be equal.

The validating run (both resolvers validate with the lab's trust anchor, issue 12) also
records the AD bit and the Extended DNS Error code (RFC 8914) and compares them: AD always,
the EDE code when Unbound gives one. There an RRSIG is reduced to its type covered and signer
(RFC 4034 §3.1): the two resolvers may relay different signatures of one RRset, and their bytes
say nothing about the validation.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdatatype

TRANSPORTS = ("udp-edns", "udp", "tcp")
"""UDP with EDNS (1232-octet buffer), UDP without EDNS (512 octets), TCP."""
TIMEOUT = "TIMEOUT"
"""The rcode recorded when no reply came before the client gave up."""
VALIDATING_MODES = ("do", "plain", "cd")
"""How the validating run asks (UDP with EDNS, 1232 octets): DO=1; DO=0; DO=1 with CD=1."""
ALLOWED_FILE = Path(__file__).with_name("allowed_differences.toml")


@dataclass(frozen=True, slots=True)
class Reply:
    rcode: str
    tc: bool = False
    answer: frozenset[tuple[str, str, str]] = frozenset()
    ad: bool | None = None
    """The AD bit; recorded in the validating run only (None otherwise)."""
    ede: int | None = None
    """The first Extended DNS Error's info code; validating run only."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rcode": self.rcode,
            "tc": self.tc,
            "answer": sorted(self.answer),
            "ad": self.ad,
            "ede": self.ede,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            data["rcode"],
            data["tc"],
            frozenset(tuple(r) for r in data["answer"]),
            data.get("ad"),
            data.get("ede"),
        )

    def summary(self) -> str:
        if self.rcode == TIMEOUT:
            return "no reply (timeout)"
        text = self.rcode + (" TC" if self.tc else "")
        if self.ad:
            text += " AD"
        if self.ede is not None:
            text += f" EDE={self.ede}"
        if self.answer:
            text += ": " + ", ".join(f"{n} {t} {r}" for n, t, r in sorted(self.answer))
        return text


def canonical_rdata(rdata: dns.rdata.Rdata) -> str:
    """The rdata's text after the RFC 4034 §6.2 canonical form (names in NS, CNAME, SOA,
    MX, ... lowercased; TXT and the rest kept as sent)."""
    wire = rdata.to_digestable()
    return dns.rdata.from_wire(rdata.rdclass, rdata.rdtype, wire, 0, len(wire)).to_text()


def rrsig_summary(rdata: dns.rdata.Rdata) -> str:
    """An RRSIG as the validating run compares it: type covered and signer's name only."""
    covered = dns.rdatatype.to_text(rdata.type_covered)  # type: ignore[attr-defined]
    return f"{covered} {rdata.signer.to_text().lower()}"  # type: ignore[attr-defined]


def reply_of(message: dns.message.Message, validating: bool = False) -> Reply:
    """The reply as compared; with ``validating``, AD, the EDE code and RRSIGs by summary."""

    def rdata_text(rd: dns.rdata.Rdata) -> str:
        if validating and rd.rdtype == dns.rdatatype.RRSIG:
            return rrsig_summary(rd)
        return canonical_rdata(rd)

    answer = frozenset(
        (rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype), rdata_text(rd))
        for rrset in message.answer
        for rd in rrset
    )
    tc = bool(message.flags & dns.flags.TC)
    rcode = dns.rcode.to_text(message.rcode())
    if not validating:
        return Reply(rcode, tc, answer)
    edes = [o for o in message.options if isinstance(o, dns.edns.EDEOption)]
    ede = int(edes[0].code) if edes else None
    return Reply(rcode, tc, answer, bool(message.flags & dns.flags.AD), ede)


def same(rootwalk: Reply, unbound: Reply) -> bool:
    """Whether the two replies agree under the module's rules."""
    if unbound.rcode == TIMEOUT:
        return rootwalk.rcode in (TIMEOUT, "SERVFAIL")
    if rootwalk.tc and unbound.tc:
        return rootwalk.rcode == unbound.rcode
    if unbound.ede is None:  # Unbound gives no EDE here: Rootwalk's, if any, is not compared
        return rootwalk == dataclasses.replace(unbound, ede=rootwalk.ede)
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
    differs_in: frozenset[str] = frozenset()
    """When given, the entry covers only differences that vanish once these parts of both
    replies are set aside (:data:`PARTS`): "ad" covers a difference in AD alone, not a
    different rcode in the same asking."""
    validating: bool = False
    """The entry belongs to the validating run (its ``transport`` then names one of
    :data:`VALIDATING_MODES`); without it, to the iterator-only run. Each run loads and checks
    for staleness only its own entries."""

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
        if self.differs_in and not same(
            without(difference.rootwalk, self.differs_in),
            without(difference.unbound, self.differs_in),
        ):
            return False
        return (
            at
            and self.transport in (None, asked.transport)
            and self.qmin in (None, asked.qmin)
            and (silent or not self.unbound_silent)
        )


PARTS = ("rcode", "tc", "ad", "ede", "answer", "rrsig")
"""The parts of a reply ``differs_in`` may name; "rrsig" is the answer's RRSIG records."""


def without(reply: Reply, parts: frozenset[str]) -> Reply:
    """``reply`` with ``parts`` set to one fixed value (so two replies compare equal there)."""
    answer = reply.answer
    if "answer" in parts:
        answer = frozenset()
    elif "rrsig" in parts:
        answer = frozenset(row for row in answer if row[1] != "RRSIG")
    return Reply(
        "" if "rcode" in parts else reply.rcode,
        False if "tc" in parts else reply.tc,
        answer,
        None if "ad" in parts else reply.ad,
        None if "ede" in parts else reply.ede,
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
    "validating",
    "differs_in",
}


def load_allowed(path: Path = ALLOWED_FILE, validating: bool = False) -> list[Allowed]:
    """``[[difference]]`` tables: a reason, then name and type (or zone), all absolute;
    optional transport, qmin, unbound_silent, may_not_occur and validating. Only the entries
    of the run asked for (``validating`` or not) are returned; every entry is checked."""
    data = tomllib.loads(path.read_text())
    entries = []
    for number, raw in enumerate(data.get("difference", []), start=1):
        where = f"{path.name}: difference #{number}"
        unknown = set(raw) - ALLOWED_KEYS
        if unknown:
            raise AllowListError(f"{where}: unknown keys {sorted(unknown)}")
        if not str(raw.get("reason", "")).strip():
            raise AllowListError(f"{where}: a reason is required")
        ways = VALIDATING_MODES if raw.get("validating", False) else TRANSPORTS
        if raw.get("transport") not in (None, *ways):
            raise AllowListError(f"{where}: transport is one of {ways}")
        differs_in = frozenset(raw.get("differs_in", ()))
        if not differs_in <= set(PARTS):
            raise AllowListError(f"{where}: differs_in names some of {PARTS}")
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
                differs_in,
                bool(raw.get("validating", False)),
            )
        )
    return [entry for entry in entries if entry.validating == validating]


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
        why = entry.reason.splitlines()[0]
        lines.append(f"allowed: {asked.name} {asked.type} {asked.transport}: {why} ...")
    for entry in verdict.stale:
        lines.append(
            f"stale allow-list entry (no longer differs): {entry.name} {entry.type}"
            f" transport={entry.transport} qmin={entry.qmin}"
        )
    return "\n".join(lines)
