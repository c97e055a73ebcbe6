#!/usr/bin/env python3
"""Micro benchmark: what the core's events and actions cost as frozen, slotted dataclasses
against the NamedTuples they replaced (issue 11 point 4), and how many a cold name makes.

    python3 benchmarks/events.py [--rounds 200000]

For each type, one round builds one instance and dispatches it through a ``match`` with a
class pattern per type, as ``Resolution.handle`` and ``Mesh._run`` do; both kinds are timed
in the same run, alternating, best of five. Then the in-memory core harness resolves never-seen
names (fresh ``www.zN``-like names below a zone whose delegation is cached, as the cache
benchmark's cold run) and counts the events fed and actions returned per name, so the ns per
event turns into ns per name.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.core import events as current
from resolver.core.events import Failure
from resolver.core.machine import Resolution
from resolver.model import Question, Result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the core harness in tests/
from tests.core.harness import lab_responder, resolve
from tests.helpers import lab_with


class TupleReply(NamedTuple):
    ref: int
    reply: object
    rtt_s: float


class TupleFailed(NamedTuple):
    ref: int
    failure: Failure


class TupleDone(NamedTuple):
    ref: int
    result: object


class TupleSend(NamedTuple):
    ref: int
    server: str
    qname: object
    qtype: int
    use_edns: bool
    zone: object
    timeout_s: float
    listen_s: float = 0.0
    qname_key: bytes = b""
    zone_key: bytes = b""


class TupleStart(NamedTuple):
    ref: int
    question: object


class TupleFinished(NamedTuple):
    result: object


def _dispatcher(reply: type, failed: type, done: type) -> Callable[[object], int]:
    def dispatch(event: object) -> int:
        match event:
            case reply():  # type: ignore[misc]
                return 1
            case failed():  # type: ignore[misc]
                return 2
            case done():  # type: ignore[misc]
                return 3
        return 0

    return dispatch


def _makers(kinds: dict[str, type]) -> dict[str, Callable[[], object]]:
    result = Result(dns.rcode.NOERROR)
    question = Question(dns.name.root, dns.rdatatype.A)
    keys = {"qname_key": b"\x00", "zone_key": b"\x00"}  # SendQuery's keyword-only fields
    return {
        "ReplyReceived": lambda: kinds["ReplyReceived"](7, None, 0.01),
        "QueryFailed": lambda: kinds["QueryFailed"](7, Failure.TIMEOUT),
        "SubqueryDone": lambda: kinds["SubqueryDone"](7, result),
        "SendQuery": lambda: kinds["SendQuery"](
            7, "127.53.0.1", None, 1, True, None, 0.4, 1.0, **keys
        ),
        "StartSubquery": lambda: kinds["StartSubquery"](7, question),
        "Finished": lambda: kinds["Finished"](result),
    }


def _round(make: Callable[[], object], dispatch: Callable[[object], int]) -> Callable[[], int]:
    return lambda: dispatch(make())


def time_types(rounds: int) -> dict[str, dict[str, float]]:
    """ns per construct + match, per type, for both kinds."""
    kinds = {
        "tuple": {
            "ReplyReceived": TupleReply,
            "QueryFailed": TupleFailed,
            "SubqueryDone": TupleDone,
            "SendQuery": TupleSend,
            "StartSubquery": TupleStart,
            "Finished": TupleFinished,
        },
        "dataclass": {
            name: getattr(current, name)
            for name in (
                "ReplyReceived",
                "QueryFailed",
                "SubqueryDone",
                "SendQuery",
                "StartSubquery",
                "Finished",
            )
        },
    }
    best: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for _ in range(5):
        for kind, types in kinds.items():
            dispatch = _dispatcher(
                types["ReplyReceived"], types["QueryFailed"], types["SubqueryDone"]
            )
            for name, make in _makers(types).items():
                call = _round(make, dispatch)
                seconds = timeit.timeit(call, number=rounds)
                ns = seconds / rounds * 1e9
                best[kind][name] = min(best[kind].get(name, ns), ns)
    return best


def count_per_cold_name(names: int, *, warm: bool) -> Counter[str]:
    """Events and actions per never-seen name, from the core harness on the lab's zones:
    ``warm``: the zone's delegation is cached (as in the cache benchmark's cold run, where
    each name costs about two upstream queries); else every cache starts empty."""
    counts: Counter[str] = Counter()
    original_start, original_handle = Resolution.start, Resolution.handle

    def start(self: Resolution, now: float) -> list[current.Action]:
        actions = original_start(self, now)
        counts.update(type(a).__name__ for a in actions)
        return actions

    def handle(self: Resolution, event: current.Event, now: float) -> list[current.Action]:
        counts[type(event).__name__] += 1
        actions = original_handle(self, event, now)
        counts.update(type(a).__name__ for a in actions)
        return actions

    lab = lab_responder(lab_with())
    caches = Caches()
    resolve("www.example.lab.", "A", lab, caches=caches)  # the delegations are cached
    Resolution.start, Resolution.handle = start, handle  # type: ignore[method-assign]
    try:
        for i in range(names):
            resolve(f"n{i}.example.lab.", "A", lab, caches=caches if warm else Caches())
    finally:
        Resolution.start, Resolution.handle = original_start, original_handle  # type: ignore[method-assign]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    args = parser.parse_args()
    best = time_types(args.rounds)
    print(f"{'type':<14} {'NamedTuple ns':>14} {'dataclass ns':>13} {'extra ns':>9}")
    for name in best["tuple"]:
        old, new = best["tuple"][name], best["dataclass"][name]
        print(f"{name:<14} {old:14.0f} {new:13.0f} {new - old:9.0f}")
    names = 50
    for warm, label in ((True, "delegation cached"), (False, "every cache empty")):
        counts = count_per_cold_name(names, warm=warm)
        total_extra = 0.0
        print(f"\nper never-seen name nN.example.lab. A (mean of {names}, {label}):")
        for name, n in sorted(counts.items()):
            per_name = n / names
            extra = per_name * (best["dataclass"][name] - best["tuple"][name])
            total_extra += extra
            print(f"  {name:<14} {per_name:5.2f}  ({extra:+.0f} ns)")
        print(f"  extra per name: {total_extra:+.0f} ns")


if __name__ == "__main__":
    main()
