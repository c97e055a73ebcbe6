"""Why no server of a zone gave an answer: the SERVFAIL a resolution ends with when every
server of its current zone cut is spent, with a reason a person can act on (RFC 8914 EDE
NO_REACHABLE_AUTHORITY or PROHIBITED)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import replace

from resolver.core.events import Failure
from resolver.core.targets import inside_without_glue
from resolver.model import EDE_TEXT_LIMIT, ExtendedError, Result, ZoneCut, join_reasons, servfail
from resolver.records import name_from_wire


def no_server_left(
    cut: ZoneCut, outcomes: list[str], tried: Collection[str], cycle_via: str | None
) -> Result:
    """SERVFAIL that says why no server of ``cut`` gave an answer: ``outcomes`` are what
    each try or address lookup met, ``tried`` the addresses asked, ``cycle_via`` the name
    server a dependency cycle went through (None: no cycle)."""
    missing = missing_servers(cut, outcomes, tried, cycle_via)
    if missing is not None:
        return missing
    zone = cut.zone.to_text()
    counts = Counter(outcomes)
    if len(counts) == 1:
        (what,) = counts
        if what == Failure.TIMEOUT.value:
            text = f"no server of {zone} answered"
        elif what.startswith("no address for"):
            text = f"no address for any name server of {zone}"
        elif what == Failure.LOCAL_ADDRESS.value:
            text = (
                f"every name server of {zone} has a local address (127.0.0.0/8, ::1, "
                "0.0.0.0/8, ::), not queried: outbound_allow does not name it"
            )
        else:
            text = f"all servers for {zone} {what}"
    elif counts:
        head = f"no usable server for {zone}: "
        text = head + join_reasons(
            [f"{n} {what}" for what, n in counts.items()], EDE_TEXT_LIMIT - len(head)
        )
    else:
        text = f"no address for any name server of {zone}"
    code = (
        ExtendedError.PROHIBITED
        if Failure.PROHIBITED.value in counts and len(counts) == 1
        else ExtendedError.NO_REACHABLE_AUTHORITY
    )
    return servfail(text, code)


def missing_servers(
    cut: ZoneCut, outcomes: list[str], tried: Collection[str], cycle_via: str | None
) -> Result | None:
    """SERVFAIL when the zone's servers could not even be addressed: a dependency cycle
    (with the name server it went through), name servers inside the zone without glue,
    or name servers that all do not exist (NXDOMAIN); None otherwise."""
    zone = cut.zone.to_text()
    code = ExtendedError.NO_REACHABLE_AUTHORITY
    if cycle_via is not None:
        others = [o for o in outcomes if not o.startswith("dependency cycle")]
        text = f"dependency cycle through {cycle_via}: no other server of {zone} is reachable"
        if others:
            text += " (" + ", ".join(dict.fromkeys(others)) + ")"
        return replace(servfail(text, code), cycle_via=cycle_via)
    inside = inside_without_glue(cut)
    if inside and not tried and not outcomes:
        names = ", ".join(name_from_wire(ns).to_text() for ns in inside)
        text = (
            f"dependency cycle: the name servers of {zone} ({names}) are inside it and have no glue"
        )
        return replace(servfail(text, code), cycle_via=name_from_wire(inside[0]).to_text())
    missing_only = all(o.startswith("name server ") for o in outcomes)
    if outcomes and missing_only and not tried and not inside:
        names = ", ".join(sorted(o.split()[2] for o in outcomes))
        text = f"all name servers of {zone} are missing (NXDOMAIN): {names}"
        return servfail(text, code)
    return None
