#!/usr/bin/env python3
"""Random-subdomain flood and mixed soak against `rootwalk lab`, on loopback only.

    python3 benchmarks/flood.py flood --seconds 20 --rate 3000      # water torture
    python3 benchmarks/flood.py soak --seconds 60 --rate 2000       # mixed traffic
    python3 benchmarks/flood.py flood --zone secure.lab. --seconds 20 --rate 2000
    python3 benchmarks/flood.py flood --zone secure.lab. --no-aggressive-nsec ...  # compare
    python3 benchmarks/flood.py flood --zone nsec3.lab. --seconds 20 --rate 2000   # NSEC3

Starts `rootwalk lab` (its own lab port and resolver port, small caches so limits are
reached), sends UDP queries from one process at a bounded rate for a bounded time, and
every half second probes names that should stay cached and samples the resolver's resident
memory. Prints a JSON summary and exits non-zero if the resolver died, a probe failed, or
memory grew after warm-up beyond --max-growth-mb.

flood: unique never-seen names under nx.example.lab. (NXDOMAIN at the lab server) and under
wild.example.lab. (a wildcard: every name exists), as in water-torture attacks.
soak: cached names, never-seen names, NXDOMAIN, a lame zone, a zone with a dead server.
flood --zone Z: unique never-seen names under the signed lab zone Z (secure.lab.: NSEC;
nsec3.lab.: NSEC3; optout.lab.: NSEC3 opt-out), validation on. The lab then runs in this
process and `rootwalk serve` is pointed at it, so the summary also gives the queries the
lab's servers received per flood query (RFC 8198's aggressive use of cached NSEC and NSEC3
makes it near 0; --no-aggressive-nsec for the comparison, or optout.lab., whose opt-out
spans deny nothing: about 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.message
import dns.rcode

REPO = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def query_wire(name: str, rdtype: str = "A") -> bytes:
    return dns.message.make_query(name, rdtype, id=random.randrange(65536)).to_wire()


def probe(port: int, name: str) -> bool:
    """Ask for a name that must stay answerable; True when the answer is right."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(query_wire(name), ("127.0.0.1", port))
        try:
            reply = dns.message.from_wire(sock.recvfrom(4096)[0])
        except (TimeoutError, OSError):
            return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def wait_for_banner(server: subprocess.Popen[str], timeout_s: float = 30.0) -> bool:
    """Until ``rootwalk lab`` prints its banner, its first line on stdout, once the lab and
    the resolver both listen; False if it exits first or (only a guard) after ``timeout_s``."""
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], timeout_s)
    return bool(ready) and server.stdout.readline().startswith("rootwalk lab: resolver on")


def start_lab(port: int) -> tuple[object, asyncio.AbstractEventLoop]:
    """The lab's servers in this process (a thread runs their loop), so what each
    received can be counted; returns the lab and its loop."""
    sys.path.insert(0, str(REPO))
    from resolver.lab.server import Lab  # noqa: PLC0415
    from resolver.paths import lab_description  # noqa: PLC0415

    lab = Lab.from_file(lab_description(), port)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(lab.start(), loop).result(30)
    return lab, loop


def lab_queries(lab: object) -> int:
    return int(lab.total_queries())  # type: ignore[attr-defined]


def wait_until_answering(port: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe(port, "www.example.lab."):
            return True
        time.sleep(0.2)
    return False


def next_name(mode: str, rng: random.Random, zone: str | None = None) -> tuple[str, str]:
    label = f"{rng.getrandbits(40):010x}"
    if zone is not None:
        return f"{label}.{zone}", "A"
    if mode == "flood":
        return (
            f"{label}.nx.example.lab." if rng.random() < 0.5 else f"{label}.wild.example.lab."
        ), "A"
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(
            ["www.example.lab.", "alias.example.lab.", "chain.example.lab.", "www.glueless.lab."]
        ), "A"
    if roll < 0.7:
        return f"{label}.wild.example.lab.", "A"
    if roll < 0.85:
        return f"{label}.example.lab.", "AAAA"  # NXDOMAIN
    return rng.choice(["www.lame.lab.", "www.deadns.lab.", "www.example.lab."]), rng.choice(
        ["A", "MX", "TXT"]
    )


def run(args: argparse.Namespace) -> dict[str, object]:
    env = {
        **os.environ,
        "ROOTWALK_ANSWER_CACHE_BYTES": str(args.cache_mb * 2**20),
        "ROOTWALK_RRSET_CACHE_BYTES": str(args.cache_mb * 2**20),
        "ROOTWALK_METRICS": "off",
        "ROOTWALK_CONTROL": "off",
        "ROOTWALK_LOG_LEVEL": "WARNING",
        "ROOTWALK_UPSTREAM_TIMEOUT_S": "0.3",
        **({"ROOTWALK_MAX_PENDING_QUERIES": str(args.max_pending)} if args.max_pending else {}),
        "PYTHONPATH": str(REPO),
    }
    log_file = open(args.log, "w") if args.log else subprocess.DEVNULL  # noqa: SIM115
    lab: object | None = None
    command = ["lab", "--listen", f"127.0.0.1:{args.port}", "--lab-port", str(args.lab_port)]
    if args.zone is not None:
        lab, lab_loop = start_lab(args.lab_port)
        command = [
            "serve",
            "--listen",
            f"127.0.0.1:{args.port}",
            "--root-hints",
            "zones/lab/root.hints",
            "--trust-anchors",
            "zones/lab/trust-anchor.ds",
            "--outbound-port",
            str(args.lab_port),
        ]
        env["ROOTWALK_OUTBOUND_ALLOW"] = "127.0.0.0/8"
        env["ROOTWALK_DNSSEC"] = "true"
        env["ROOTWALK_AGGRESSIVE_NSEC"] = "false" if args.no_aggressive_nsec else "true"
    server = subprocess.Popen(
        [sys.executable, "-m", "resolver", *command],
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        env=env,
        cwd=REPO,
    )
    rng = random.Random(args.seed)
    sent = replies = 0
    rcodes: dict[str, int] = {}
    samples: list[tuple[float, float]] = []
    probes_failed = 0
    probes = 0
    try:
        if lab is None:
            wait_for_banner(server)  # if it never says so, the probes below fail and say so
        else:
            wait_until_answering(args.port)
            probe(args.port, f"www.{args.zone}")  # the zone's keys fetched before the flood
            lab_before = lab_queries(lab)
        for name in ("www.example.lab.", "www.glueless.lab."):
            probe(args.port, name)  # cached before the flood; must stay answerable
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(("127.0.0.1", args.port))
        started = time.monotonic()
        next_sample = started
        interval = 1.0 / args.rate
        next_send = started
        while (now := time.monotonic()) < started + args.seconds:
            if server.poll() is not None:
                break
            while next_send <= now:
                name, rdtype = next_name(args.mode, rng, args.zone)
                try:
                    sock.send(query_wire(name, rdtype))
                    sent += 1
                except BlockingIOError:
                    pass
                next_send += interval
            readable, _, _ = select.select(
                [sock], [], [], max(0.0, min(next_send, next_sample) - time.monotonic())
            )
            if readable:
                while True:
                    try:
                        data = sock.recv(65535)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    replies += 1
                    code = (
                        dns.rcode.to_text(dns.rcode.Rcode(data[3] & 0xF)) if len(data) > 3 else "?"
                    )
                    rcodes[code] = rcodes.get(code, 0) + 1
            if time.monotonic() >= next_sample:
                samples.append((round(time.monotonic() - started, 1), round(rss_mb(server.pid), 1)))
                for name in ("www.example.lab.", "www.glueless.lab."):
                    probes += 1
                    probes_failed += 0 if probe(args.port, name) else 1
                next_sample += 0.5
        alive = server.poll() is None
        after = alive and all(
            probe(args.port, n)
            for n in ("www.example.lab.", "chain.example.lab.", "anything.wild.example.lab.")
        )
        upstream = lab_queries(lab) - lab_before if lab is not None else None
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
        if lab is not None:
            asyncio.run_coroutine_threadsafe(lab.close(), lab_loop).result(10)  # type: ignore[attr-defined]
    warm = [rss for at, rss in samples if at >= args.seconds / 3]
    growth = (max(warm) - min(warm)) if warm else 0.0
    return {
        "mode": args.mode,
        "seconds": args.seconds,
        "rate": args.rate,
        "sent": sent,
        "replies": replies,
        "rcodes": rcodes,
        "probes": probes,
        "probes_failed": probes_failed,
        "alive": alive,
        "answers_correct_after": after,
        "exit_status": server.returncode,
        "rss_mb_first": samples[0][1] if samples else None,
        "rss_mb_last": samples[-1][1] if samples else None,
        "rss_growth_after_warmup_mb": round(growth, 1),
        "cache_mb_each": args.cache_mb,
        **(
            {
                "zone": args.zone,
                "aggressive_nsec": not args.no_aggressive_nsec,
                "authority_queries": upstream,
                "authority_queries_per_flood_query": round(upstream / max(sent, 1), 4),
            }
            if upstream is not None
            else {}
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["flood", "soak"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=2000, help="queries per second (bounded)")
    parser.add_argument("--port", type=int, default=35700)
    parser.add_argument("--lab-port", type=int, default=30153)
    parser.add_argument(
        "--cache-mb", type=int, default=4, help="size of the answer and RRset caches"
    )
    parser.add_argument("--max-growth-mb", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", help="file for the resolver's log (default: discarded)")
    parser.add_argument(
        "--max-pending", type=int, help="max_pending_queries (default: the resolver's)"
    )
    parser.add_argument(
        "--zone",
        help="flood never-seen names under this signed lab zone (secure.lab., nsec3.lab.)",
    )
    parser.add_argument(
        "--no-aggressive-nsec", action="store_true", help="with --zone: aggressive_nsec off"
    )
    args = parser.parse_args()
    if args.zone is not None and not args.zone.endswith("."):
        args.zone += "."
    summary = run(args)
    print(json.dumps(summary, indent=2))
    ok = (
        summary["alive"]
        and summary["answers_correct_after"]
        and summary["probes_failed"] == 0
        and float(summary["rss_growth_after_warmup_mb"]) <= args.max_growth_mb  # type: ignore[arg-type]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
