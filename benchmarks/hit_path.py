#!/usr/bin/env python3
"""Micro benchmark of the cache-hit path alone: nanoseconds per hit, in process.

    python3 benchmarks/hit_path.py [--hits 200000]

Stores one lab answer in the answer cache, then times ``Frontend.on_query`` (the one way in
for a query; a hit returns the reply bytes) on queries with varying IDs and letter case,
TTLs aged, two ways:

- repeats: a query whose bytes after the ID were answered earlier in the same second takes
  the reply kept ready for it (check the access list, one dict lookup, put in the ID);
- full patch: the ready replies are forgotten before every hit, so each reads the query's
  bytes, looks up its key, copies the stored reply and patches ID, letter case and TTLs
  (what the first query for a name each second costs; includes one ``dict.clear``).

No sockets: this is the Python cost a hit adds on top of the event loop's receive and send.
"""

from __future__ import annotations

import argparse
import time

import dns.message

from resolver.access import LOOPBACK_RULES, AccessList
from resolver.cache.answer import AnswerCache
from resolver.core.compose import render_result
from resolver.frontend import Frontend
from resolver.model import Result, Transport
from resolver.records import WireRRset
from resolver.screen import read_plain_query
from resolver.wire import read_fast_query


class _Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _never(address: tuple[str | int, ...], reply: bytes | None) -> None:
    raise AssertionError("a hit answers at once")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=200_000)
    args = parser.parse_args()
    query = dns.message.make_query("www.example.lab.", "A", use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.example.lab.", 300, "IN", "A", "192.0.2.10"))
    result = Result(0, tuple(WireRRset.from_rrset(r) for r in response.answer))  # type: ignore[arg-type]
    answers = AnswerCache(1 << 24)
    wire = query.to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    clock = _Clock()
    rendered = render_result(read_plain_query(wire, fast), result, 65535)
    answers.store(fast.key, rendered, fast.question_end, clock.now)
    clock.now += 10  # aged: every hit patches the TTLs
    frontend = Frontend(None, AccessList(LOOPBACK_RULES), answers, clock)  # type: ignore[arg-type]
    queries = []
    for i in range(256):
        q = dns.message.make_query(
            "WwW.example.LAB." if i % 2 else "www.example.lab.", "A", use_edns=0, payload=1232, id=i
        )
        queries.append(q.to_wire())
    answer = frontend.on_query
    address = ("127.0.0.1", 53000)
    assert type(answer(queries[1], "127.0.0.1", Transport.UDP, _never, address)) is bytes
    started = time.perf_counter_ns()
    for i in range(args.hits):
        answer(queries[i & 255], "127.0.0.1", Transport.UDP, _never, address)
    elapsed = time.perf_counter_ns() - started
    print(f"repeats:    {elapsed / args.hits:.0f} ns per hit ({args.hits} hits)")
    forget = answers._udp_ready.clear  # one dict.clear, as before the one-call API
    started = time.perf_counter_ns()
    for i in range(args.hits):
        forget()
        answer(queries[i & 255], "127.0.0.1", Transport.UDP, _never, address)
    elapsed = time.perf_counter_ns() - started
    print(f"full patch: {elapsed / args.hits:.0f} ns per hit ({args.hits} hits)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
