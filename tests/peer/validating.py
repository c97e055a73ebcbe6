"""The differential test's validating run (issue 12, "Done when"): Rootwalk and Unbound 1.17,
both validating with the lab's trust anchor, on the signed lab.

    sudo .venv/bin/python -m tests.peer.validating [--out DIR]

re-runs itself under ``unshare --net`` (loopback only), starts the lab on port 53, one
``rootwalk serve`` (validating by default, ``--trust-anchors zones/lab/trust-anchor.ds``) and
one Unbound with ``module-config: "validator iterator"``, the same anchor and ``ede: yes``,
both with QNAME minimisation on, and asks each of them every question of
:mod:`tests.peer.questions` (the signed zones included) over UDP with EDNS: once with DO=1 and
once with DO=0 (which of the two goes first, and so meets the empty cache, alternates from
question to question), and every ``CD_EVERY``-th question a third time with DO=1 and CD=1
(after the others: a validated or bogus entry in the cache must not answer it, RFC 6840 §5.9).
:mod:`tests.peer.compare` compares rcode, AD, the EDE code (when Unbound gives one) and the
answer RRsets, RRSIGs by type covered and signer, against the ``validating = true`` entries
of the allow-list.

Fewer askings than the iterator-only run (no TCP, no UDP without EDNS, no repeat, QNAME
minimisation on only): that run covers the transports and the cache; this one adds the DNSSEC
bits, within about a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from resolver.lab.description import load_lab_description
from resolver.paths import lab_description
from tests.peer import harness
from tests.peer.compare import Asked, load_allowed
from tests.peer.harness import (
    FIRST_TIMEOUT_S,
    QMIN_ENV,
    ZONES_AT_ONCE,
    ask,
    asked_json,
    lab_resolver_command,
    rootwalk_command,
    rootwalk_knows_qmin,
    started,
    unbound_config,
    unbound_path,
    wait_for_line,
)
from tests.peer.questions import PeerQuestion, derive_questions, random_zones, zone_of

ROOTWALK_PORT = 5303
UNBOUND_PORT = 5313
CD_EVERY = 3
"""Every third question is also asked with CD=1 (a sample: CD answers differ from the
others only in the bogus zones, whose every question the derivation keeps together)."""
ASK_BUDGET_S = 60.0
ITERATOR_ONLY_ZONES = ("awk.example.lab.",)
"""Subtrees left to the iterator-only run: unsigned awkward cases (lame, truncating and
misstating servers, parent/child differences) below an insecure delegation, where both
resolvers answer insecure and the DNSSEC bits this run adds say nothing; asking them here
too pushed the run past ``ASK_BUDGET_S`` on a busy machine (measured: 62 s)."""


def modes_of(index: int) -> list[str]:
    """How question ``index`` is asked, in order (see the module's docstring)."""
    modes = ["do", "plain"] if index % 2 == 0 else ["plain", "do"]
    return [*modes, "cd"] if index % CD_EVERY == 0 else modes


async def ask_all(port: int, questions: list[PeerQuestion], until: float) -> list[dict[str, Any]]:
    """Every question in each of its modes, one asking after the other (so the later ones
    meet the cache the first filled); ``ZONES_AT_ONCE`` lab zones at a time."""
    by_zone: dict[str, list[tuple[int, PeerQuestion]]] = {}
    for index, question in enumerate(questions):
        by_zone.setdefault(question.zone, []).append((index, question))
    at_once = asyncio.Semaphore(ZONES_AT_ONCE)

    async def zone(items: list[tuple[int, PeerQuestion]]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async with at_once:
            for index, question in items:
                if time.monotonic() > until:
                    break
                for mode in modes_of(index):
                    sent_at = time.monotonic()
                    reply = await ask(port, question.name, question.type, mode, FIRST_TIMEOUT_S)
                    asked = Asked(question.name, question.type, mode, True, 1)
                    seconds = round(time.monotonic() - sent_at, 3)
                    rows.append(
                        {"asked": asked_json(asked), "reply": reply.to_json(), "s": seconds}
                    )
        return rows

    per_zone = await asyncio.gather(*(zone(items) for items in by_zone.values()))
    return [row for rows in per_zone for row in rows]


def expected_askings(questions: int) -> int:
    return sum(len(modes_of(index)) for index in range(questions))


def inside(out: Path) -> int:
    """The namespace side: start everything, ask, write ``results.json``."""
    description = load_lab_description(lab_description())
    zones = [zone.to_text() for zone in description.zone_files]
    skipped = random_zones(description)
    questions = [
        q
        for q in derive_questions(description)
        if zone_of(q, zones) not in skipped
        and not any(
            q.name.endswith(f".{subtree}") or q.name == subtree for subtree in ITERATOR_ONLY_ZONES
        )
    ]
    env = {**os.environ, QMIN_ENV: "true"} if rootwalk_knows_qmin() else None
    unbound = unbound_path()
    assert unbound is not None
    lab_command = lab_resolver_command()
    config = unbound_config(out, UNBOUND_PORT, True, zones, validating=True)
    started_at = time.monotonic()
    with (
        started(lab_command, out / "lab.log") as lab,
        started(rootwalk_command(ROOTWALK_PORT), out / "rootwalk.log", env) as rootwalk,
        started([unbound, "-d", "-c", str(config)], out / "unbound.out") as validator,
    ):
        wait_for_line(out / "lab.log", "rootwalk lab: resolver on", lab)
        wait_for_line(out / "rootwalk.log", f"listening on 127.0.0.1:{ROOTWALK_PORT} ", rootwalk)
        wait_for_line(out / f"unbound-{UNBOUND_PORT}.log", "start of service", validator)
        ready_at = time.monotonic()
        until = ready_at + ASK_BUDGET_S

        async def run_all() -> tuple[list[dict[str, Any]], ...]:
            return await asyncio.gather(
                ask_all(ROOTWALK_PORT, questions, until), ask_all(UNBOUND_PORT, questions, until)
            )

        rootwalk_rows, unbound_rows = asyncio.run(run_all())
    results = {
        "questions": [[q.name, q.type, q.zone] for q in questions],
        "skipped": skipped,
        "rootwalk": rootwalk_rows,
        "unbound": unbound_rows,
        "seconds": {"start": ready_at - started_at, "ask": time.monotonic() - ready_at},
    }
    (out / "results.json").write_text(json.dumps(results))
    return 0


def run_in_namespace(out: Path, timeout_s: float = 100.0) -> tuple[int, str]:
    """:func:`inside` under ``unshare --net`` with ``lo`` up (see the harness's)."""
    return harness.run_in_namespace(
        out, timeout_s, module="tests.peer.validating", what="the validating run"
    )


def main() -> int:
    return harness.command_line(
        inside,
        run_in_namespace,
        prefix="rootwalk-peer-validating-",
        allowed=load_allowed(validating=True),
        description=__doc__,
    )


if __name__ == "__main__":
    raise SystemExit(main())
