#!/usr/bin/env python3
"""What one never-seen name in a signed zone costs Rootwalk, in process and deterministic:
no sockets, no dnsperf, no Unbound (issue 12's cold signed target, measured by counting).

    .venv/bin/python benchmarks/cold_signed_profile.py [--zones 300] [--warm 20] [--top 25]

The lab is ``cache_benchmark.py --signed``'s, smaller: a root, ``bench.`` and N signed zones
``zI.bench.`` (``signed_lab.py``, ECDSAP256SHA256, NSEC), signed into a temporary folder and
served by the lab's in-memory authority (:func:`resolver.lab.authority.lab_response`). The
resolver is the real one from the client's bytes to the reply's: :class:`Frontend` (screen,
render, answer cache store) → :class:`Driver` → :class:`Mesh` with the validator; only the
socket layer is replaced by :class:`ReplayUpstream`, which builds each query's wire
(:func:`query_wire`), reads the reply with :func:`read_reply` as the real transport does, and
hands it back on the event loop's next turn. The authority's own work is kept out of the
figures: a first resolver instance asks every name once and the replies are kept by question
(server, name, type, DO); the measured instance then gets them by a dict lookup.

Per never-seen name ``www.zI.bench. A`` (the first ``--warm`` names warm the root and
``bench.``, as the benchmark's 100 warm names do), it prints:

* upstream queries (the benchmark's NSD count; Unbound makes 3.00),
* signature verifications (calls of ``ValidationWork.spend_verification``: one per key tried),
* Python function calls (cProfile's count: deterministic, robust to a busy machine),
* CPU µs without the profiler (``time.process_time``: noisy on a shared machine),
* cProfile's tottime shares, grouped (signature crypto, dnspython, Rootwalk's own code...),
  and the ``--top`` functions by tottime.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Hashable
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdatatype

HERE = Path(__file__).resolve().parent
warnings.filterwarnings("ignore", message="DSA is deprecated")  # dnspython imports DSA
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cache_benchmark import write_lab  # noqa: E402
from signed_lab import write_signed_zones  # noqa: E402

from resolver.access import LOOPBACK_RULES, AccessList  # noqa: E402
from resolver.cache.answer import AnswerCache  # noqa: E402
from resolver.cache.view import Caches  # noqa: E402
from resolver.core.dnssec.anchor import parse_anchors  # noqa: E402
from resolver.core.dnssec.keys import Validator  # noqa: E402
from resolver.core.events import ReplyReceived, SendQuery  # noqa: E402
from resolver.driver import Driver  # noqa: E402
from resolver.files import load_root_hints  # noqa: E402
from resolver.frontend import Frontend  # noqa: E402
from resolver.lab.authority import ServedZone, lab_response, load_zone  # noqa: E402
from resolver.lab.description import Faults  # noqa: E402
from resolver.limits import Limits, ValidationWork  # noqa: E402
from resolver.mesh import Mesh  # noqa: E402
from resolver.model import Transport  # noqa: E402
from resolver.records import read_reply  # noqa: E402
from resolver.transport.upstream import query_wire  # noqa: E402
from resolver.wire import question_end  # noqa: E402

ROOT_ADDRESS, TLD_ADDRESS, ZONES_ADDRESS = "127.54.0.1", "127.54.1.1", "127.54.2.1"


class Authorities:
    """The three NSDs of the benchmark as one in-memory answer function, with every reply
    kept by question so a second resolver instance costs the authority nothing."""

    def __init__(self, folder: Path, zones: int) -> None:
        root = dns.name.root
        bench = dns.name.from_text("bench.")
        self.served: dict[str, dict[dns.name.Name, ServedZone]] = {
            ROOT_ADDRESS: {root: load_zone(str(folder / "root-signed.zone"), root)},
            TLD_ADDRESS: {bench: load_zone(str(folder / "bench-signed.zone"), bench)},
            ZONES_ADDRESS: {},
        }
        for index in range(zones):
            apex = dns.name.from_text(f"z{index}.bench.")
            zone = load_zone(str(folder / "signed" / f"z{index}.zone"), apex)
            self.served[ZONES_ADDRESS][apex] = zone
        self.kept: dict[tuple[str, bytes, int, bool, bool], bytes] = {}
        self.faults = Faults()

    def reply_wire(self, send: SendQuery, wire: bytes) -> bytes:
        key = (send.server, send.qname_key, send.qtype, send.dnssec_ok, send.use_edns)
        found = self.kept.get(key)
        if found is None:
            zones = self.served.get(send.server, {})
            response = lab_response(zones, self.faults, dns.message.from_wire(wire))
            assert response is not None, f"{send.server} stays silent to {send.qname}"
            found = self.kept[key] = response.to_wire(max_size=65535)
        return found


class ReplayUpstream:
    """The transport's part of a query without sockets: the query's wire is built, the reply
    read with our wire reader, and the outcome delivered on the loop's next turn."""

    def __init__(self, authorities: Authorities) -> None:
        self.authorities = authorities
        self.sent = 0
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(
        self,
        send: SendQuery,
        on_outcome: Callable[[ReplyReceived], object],
        owner: Hashable = None,
    ) -> None:
        self.sent += 1
        self._next_id = (self._next_id + 1) & 0xFFFF
        wire = query_wire(send, self._next_id)
        reply = self.authorities.reply_wire(send, wire)
        event = ReplyReceived(send.ref, read_reply(reply, question_end(wire)), 0.001)
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.get_running_loop()
        self._loop.call_soon(on_outcome, event)

    def settle(self, owner: Hashable) -> None:
        """Nothing stays open here."""

    def close(self) -> None:
        """Nothing stays open here."""


class Instance:
    """One resolver (caches empty) as ``rootwalk serve --trust-anchors`` builds it."""

    def __init__(self, folder: Path, authorities: Authorities) -> None:
        anchors = parse_anchors((folder / "trust-anchor.ds").read_text())
        self.upstream = ReplayUpstream(authorities)
        mesh = Mesh(
            root=load_root_hints(folder / "root.hints"),
            caches=Caches(),
            limits=Limits(),
            rng=random.Random(1),
            validator=Validator(anchors),
        )
        self.validator = mesh.validator
        driver = Driver(mesh, self.upstream)  # type: ignore[arg-type]
        self.frontend = Frontend(
            driver, AccessList(list(LOOPBACK_RULES)), AnswerCache(64 * 2**20), time.time
        )
        self.replies: list[bytes | None] = []

    async def ask(self, queries: list[bytes], concurrency: int) -> None:
        """Send each query once, ``concurrency`` at a time (dnsperf keeps several in flight)."""
        done = asyncio.Event()
        left = queries[::-1]
        loop = asyncio.get_running_loop()
        in_flight = 0

        def reply_to(_address: object, reply: bytes | None) -> None:
            nonlocal in_flight
            self.replies.append(reply)
            in_flight -= 1
            loop.call_soon(fill)  # the next query comes in a later turn, as over a socket

        def fill() -> None:
            nonlocal in_flight
            while left and in_flight < concurrency:
                wire = left.pop()
                in_flight += 1
                answer = self.frontend.on_query(
                    wire, "127.0.0.1", Transport.UDP, reply_to, ("127.0.0.1", 1)
                )
                if isinstance(answer, bytes):
                    reply_to(None, answer)
            if not left and in_flight == 0:
                done.set()

        fill()
        await done.wait()


def _client_query(name: str, index: int) -> bytes:
    """The client's query (built before the clock or the profiler runs, as dnsperf's are)."""
    query = dns.message.make_query(name, dns.rdatatype.A, id=index & 0xFFFF)
    query.flags |= dns.flags.AD  # AD without DO: AD in the reply when secure (RFC 6840 §5.7)
    return query.to_wire()


_verifications = [0]
_real_spend = ValidationWork.spend_verification


def _counted_spend(self: ValidationWork) -> bool:
    _verifications[0] += 1
    return _real_spend(self)


ValidationWork.spend_verification = _counted_spend  # type: ignore[method-assign]


def _check(instance: Instance, count: int) -> None:
    """Every cold answer NOERROR with AD (RFC 4035 §3.2.3), or the figures mean nothing."""
    bad = [
        r for r in instance.replies[-count:] if r is None or dns.message.from_wire(r).rcode() != 0
    ]
    ad = [
        r
        for r in instance.replies[-count:]
        if r is not None and dns.message.from_wire(r).flags & dns.flags.AD
    ]
    if bad or len(ad) != count:
        raise SystemExit(f"{len(bad)} failed answers, {len(ad)} of {count} with AD: no figures")


_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    (
        "signature crypto (cryptography + dnssecalgs)",
        (
            "cryptography",
            "dnssecalgs",
            "{method 'verify'",
            "{built-in method _openssl",
            "{built-in method _rust",
        ),
    ),
    ("dns.dnssec (canonical forms, checks)", ("dns/dnssec.py",)),
    ("dnspython other (names, rdata, rrsets)", ("/dns/",)),
    ("rootwalk core/dnssec", ("resolver/core/dnssec/",)),
    (
        "rootwalk core (machine, mesh...)",
        ("resolver/core/", "resolver/mesh.py", "resolver/waiters.py"),
    ),
    ("rootwalk caches", ("resolver/cache/",)),
    (
        "rootwalk wire/records/names",
        ("resolver/records.py", "resolver/wire.py", "resolver/names.py"),
    ),
    ("rootwalk other", ("resolver/",)),
    ("asyncio", ("asyncio/",)),
]


def _group_of(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for label, needles in _GROUPS:
        if any(needle in where for needle in needles):
            return label
    return "python builtins / other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=300)
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--timing-rounds", type=int, default=3)
    parser.add_argument("--out", help="keep the signed lab in this folder (reused if fresh)")
    args = parser.parse_args()

    folder = Path(args.out or tempfile.mkdtemp(prefix="rootwalk-cold-signed-"))
    folder.mkdir(parents=True, exist_ok=True)
    write_lab(folder, args.zones, signed=True)
    took = write_signed_zones(folder, args.zones, processes=1)
    print(f"signed lab of {args.zones} zones in {folder} ({took:.1f} s)")
    authorities = Authorities(folder, args.zones)
    names = [f"www.z{i}.bench." for i in range(args.zones)]
    queries = [_client_query(name, index) for index, name in enumerate(names)]
    warm, cold = queries[: args.warm], queries[args.warm :]

    def fresh_warm() -> Instance:
        instance = Instance(folder, authorities)
        asyncio.run(instance.ask(warm, 1))
        return instance

    # Pass 1: the authority answers every question once (kept for the passes below).
    first = fresh_warm()
    asyncio.run(first.ask(cold, args.concurrency))
    _check(first, len(cold))

    # Pass 2: counted and profiled.
    instance = fresh_warm()
    sent_before, verified_before = instance.upstream.sent, _verifications[0]
    profile = cProfile.Profile()
    loop = asyncio.new_event_loop()
    try:
        profile.enable()
        loop.run_until_complete(instance.ask(cold, args.concurrency))
        profile.disable()
    finally:
        loop.close()
    _check(instance, len(cold))
    per_name = len(cold)
    upstream = (instance.upstream.sent - sent_before) / per_name
    verifications = (_verifications[0] - verified_before) / per_name
    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    total_tt = sum(entry[2] for entry in raw.values())
    calls = sum(entry[1] for entry in raw.values())

    # Pass 3: CPU time without the profiler (noisy on a shared machine: best of N rounds).
    cpu_us = []
    for _ in range(args.timing_rounds):
        timed = fresh_warm()
        started = time.process_time()
        asyncio.run(timed.ask(cold, args.concurrency))
        cpu_us.append((time.process_time() - started) / per_name * 1e6)
        _check(timed, len(cold))

    print(f"never-seen signed names: {per_name} (after {len(warm)} warm names)")
    print(f"upstream queries per name:      {upstream:.2f}")
    print(f"signature verifications / name: {verifications:.2f}")
    print(f"Python function calls / name:   {calls / per_name:.0f}")
    print(
        f"CPU µs / name (no profiler):    best {min(cpu_us, default=0):.0f}, all {[round(c) for c in cpu_us]}"
    )
    groups: dict[str, float] = {}
    for (filename, _line, function), entry in raw.items():
        label = _group_of(filename, function)
        groups[label] = groups.get(label, 0.0) + entry[2]
    print("\ncProfile tottime share by group:")
    for label, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {seconds / total_tt:6.1%}  {label}")
    print(f"\ntop {args.top} functions by tottime (calls per name, share):")
    ranked = sorted(raw.items(), key=lambda item: -item[1][2])[: args.top]
    for (filename, line, function), entry in ranked:
        where = filename.split("site-packages/")[-1].split(f"{HERE.parent}/")[-1]
        print(
            f"  {entry[1] / per_name:7.1f}  {entry[2] / total_tt:6.1%}  {where}:{line} {function}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
