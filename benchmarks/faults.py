#!/usr/bin/env python3
"""Latency under faulty servers: one of example.lab.'s two servers misbehaves, and each
round forgets www.example.lab. and asks for it again; loopback only, in process.

    python3 benchmarks/faults.py [--rounds 20] [--fault "slow (0.5 s)"] [--json]

For each fault (all by default) starts the lab with that fault on 127.53.3.1 and a resolver
pointed at it (0.3 s upstream timeout, 3 s client deadline, as the test), then prints how
many rounds were answered, the mean and largest latency, and how many queries reached the
faulty server. ``tests/integration/test_faults.py`` checks the behaviour (every round is
answered, the faulty server is not asked again and again); this measures how long it takes.
Bounded: ``--rounds`` queries per fault, each waiting at most 5 s. Run it inside
``unshare --net`` with lo up, as the other benchmarks; it sends only to 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from typing import Any

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode

from resolver.config import Endpoint, Settings
from resolver.lab.description import load_lab_description
from resolver.lab.server import Lab
from resolver.paths import lab_description, lab_root_hints
from resolver.server import ResolverService

FAULTY = "127.53.3.1"
WWW = dns.name.from_text("www.example.lab.")
FAULTS: dict[str, dict[str, Any]] = {
    "drops half": {"drop": 0.5},
    "drops all": {"drop": 1.0},
    "slow (0.5 s)": {"delay_s": 0.5},
    "garbage": {"garbage": True},
    "wrong ID": {"wrong_id": True},
    "FORMERR to EDNS": {"formerr_edns": True},
    "truncates, TCP closed": {"truncate": True, "tcp": False},
    "SERVFAIL": {"rcode": dns.rcode.SERVFAIL},
}


async def measure(fault: str, rounds: int, port: int, lab_port: int) -> dict[str, object]:
    """One fault: ``rounds`` uncached lookups of www.example.lab. through the resolver."""
    description = load_lab_description(lab_description()).with_faults(FAULTY, **FAULTS[fault])
    lab = Lab(description, lab_port)
    settings = Settings(
        listen=(Endpoint("127.0.0.1", port),),
        root_hints=lab_root_hints(),
        outbound_allow=(ipaddress.ip_network("127.0.0.0/8"),),
        outbound_port=lab_port,
        upstream_timeout_s=0.3,
        client_deadline_s=3.0,
        metrics=None,
        control=None,
    )
    service = ResolverService(settings)
    latencies: list[float] = []
    answered = 0
    await lab.start()
    try:
        await service.start()
        try:
            for _ in range(rounds):
                service.flush(WWW)
                started = time.monotonic()
                reply = await dns.asyncquery.udp(
                    dns.message.make_query(WWW, "A"), "127.0.0.1", timeout=5, port=port
                )
                latencies.append(time.monotonic() - started)
                answered += bool(reply.answer and reply.answer[0][0].to_text() == "192.0.2.10")
        finally:
            await service.close()
    finally:
        await lab.close()
    return {
        "fault": fault,
        "answered": answered,
        "rounds": rounds,
        "mean_ms": round(sum(latencies) / len(latencies) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "faulty_server_queries": lab.authority(FAULTY).queries_received,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="lookups per fault (default 20)")
    parser.add_argument(
        "--fault", action="append", choices=list(FAULTS), help="only this fault (repeatable)"
    )
    parser.add_argument("--port", type=int, default=25399, help="the resolver's port")
    parser.add_argument("--lab-port", type=int, default=20099, help="the lab servers' port")
    parser.add_argument("--json", action="store_true", help="one JSON object per fault")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 1000:
        parser.error("--rounds: from 1 to 1000")
    for fault in args.fault or list(FAULTS):
        result = asyncio.run(measure(fault, args.rounds, args.port, args.lab_port))
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"fault {fault!r}: {result['answered']}/{result['rounds']} answered, latency "
                f"mean {result['mean_ms']} ms, max {result['max_ms']} ms, "
                f"{result['faulty_server_queries']} queries reached the faulty server",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
