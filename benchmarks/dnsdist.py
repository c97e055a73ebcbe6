#!/usr/bin/env python3
"""dnsdist in front of 1, 2 and 3 Rootwalk processes; consistent hashing against round robin.

    sudo .venv/bin/python benchmarks/dnsdist.py [--zones 3000] [--seconds 10] [--out DIR]

Inside a private network namespace (``unshare --net``, loopback only), on the generated lab of
``cache_benchmark.py`` (its NSDs, its helpers): dnsdist runs the committed
``deploy/dnsdist/dnsdist.conf`` (a wrapper sets its knobs, the ``rootwalk`` table, and ``dofile``s it, as the tests do).

1. **Queries per second through dnsdist** with 1, 2 and 3 backends (``chashed``): the hot
   names warmed, then dnsperf (CPU 0) for ``--seconds`` over them against dnsdist.
2. **Upstream queries, chashed against roundrobin**: fresh backends (3, cold caches) for each
   policy, and the same stream: ``--zones`` names ``www.zI.bench. A``, each asked
   ``--repeats`` times, shuffled with a fixed seed. The upstream queries are read from the
   backends' own metrics (``rootwalk_upstream_queries_total``, and the NSDs' count as a
   cross-check), with the answer caches' hits and misses. With ``chashed`` each name is
   resolved by one backend; with ``roundrobin`` by up to all three.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from cache_benchmark import (
    REPO,
    WARM_NAMES,
    dnsperf,
    nsd_queries,
    run,
    start_nsds,
    stop_all,
    wait_answering,
    write_lab,
)

CONFIG = REPO / "deploy" / "dnsdist" / "dnsdist.conf"
DNSDIST_PORT = 5300
FIRST_BACKEND_PORT = 5301
FIRST_METRICS_PORT = 9301


def metric_sum(port: int, name: str) -> float:
    """The sum of all samples of ``name`` on the metrics endpoint at ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in "{ "
    )


class Front:
    """``count`` Rootwalk backends and dnsdist (``policy``) in front of them."""

    def __init__(self, folder: Path, count: int, policy: str) -> None:
        self.folder = folder
        self.count = count
        self.policy = policy
        self.processes: list[subprocess.Popen[bytes]] = []
        self.dnsdist_pid = 0

    def metrics(self, name: str) -> float:
        return sum(metric_sum(FIRST_METRICS_PORT + i, name) for i in range(self.count))

    def __enter__(self) -> Front:
        backends = []
        for index in range(self.count):
            port = FIRST_BACKEND_PORT + index
            backends.append(f'"127.0.0.1:{port}"')
            command = [
                sys.executable, "-m", "resolver", "serve", "--listen", f"127.0.0.1:{port}",
                "--root-hints", str(self.folder / "root.hints"), "--outbound-allow",
                "127.0.0.0/8", "--outbound-port", "53", "--log-level", "WARNING",
                "--metrics", f"127.0.0.1:{FIRST_METRICS_PORT + index}", "--control", "off",
            ]  # fmt: skip
            log = (self.folder / f"rootwalk-{self.policy}-{self.count}-{index}.log").open("w")
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
            )
            wait_answering(port)
        wrapper = self.folder / f"dnsdist-{self.policy}-{self.count}.conf"
        wrapper.write_text(
            'setSecurityPollSuffix("")\n'
            f'rootwalk = {{ listen = {{"127.0.0.1:{DNSDIST_PORT}"}},\n'
            f'  backends = {{{", ".join(backends)}}}, policy = "{self.policy}" }}\n'
            f'dofile("{CONFIG}")\n'
        )
        log = (self.folder / f"dnsdist-{self.policy}-{self.count}.log").open("w")
        dnsdist = subprocess.Popen(
            [shutil.which("dnsdist") or "dnsdist", "--supervised", "--disable-syslog", "-C",
             str(wrapper)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(dnsdist)
        self.dnsdist_pid = dnsdist.pid
        wait_answering(DNSDIST_PORT)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_all(self.processes)


@dataclass
class Throughput:
    backends: int
    qps: float
    latency_avg_ms: float
    latency_p99_ms: float
    lost: int


@dataclass
class Upstream:
    policy: str
    names: int
    queries: int
    upstream_queries: float
    nsd_queries: int
    cache_hits: float
    cache_misses: float
    lost: int


def throughput(folder: Path, count: int, warm: Path, seconds: int) -> Throughput:
    with Front(folder, count, "chashed") as front:
        run("dnsperf", "-s", "127.0.0.1", "-p", str(DNSDIST_PORT), "-d", str(warm), "-n", "1")
        result = dnsperf(DNSDIST_PORT, warm, front.dnsdist_pid, "-l", str(seconds), "-q", "200")
    return Throughput(count, result.qps, result.latency_avg_ms, result.latency_p99_ms, result.lost)


def upstream(folder: Path, policy: str, stream: Path, names: int, queries: int) -> Upstream:
    with Front(folder, 3, policy) as front:
        nsd_before = nsd_queries(folder)
        result = dnsperf(DNSDIST_PORT, stream, front.dnsdist_pid, "-n", "1", "-q", "100")
        return Upstream(
            policy,
            names,
            queries,
            front.metrics("rootwalk_upstream_queries_total"),
            nsd_queries(folder) - nsd_before,
            front.metrics("rootwalk_cache_hits_total"),
            front.metrics("rootwalk_cache_misses_total"),
            result.lost,
        )


def inside(args: argparse.Namespace) -> int:
    run("ip", "link", "set", "lo", "up")
    folder = Path(args.out or tempfile.mkdtemp(prefix="rootwalk-dnsdist-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"lab of {args.zones} zones in {folder}", flush=True)
    write_lab(folder, args.zones)
    nsds = start_nsds(folder)
    try:
        warm = folder / "warm.txt"
        warm.write_text("".join(f"www.z{i}.bench. A\n" for i in range(WARM_NAMES)))
        names = [f"www.z{i}.bench. A\n" for i in range(args.zones)] * args.repeats
        random.Random(53).shuffle(names)
        stream = folder / "stream.txt"
        stream.write_text("".join(names))
        rates = [throughput(folder, count, warm, args.seconds) for count in (1, 2, 3)]
        for rate in rates:
            print(f"{rate.backends} backend(s): {rate.qps:9.0f} qps through dnsdist", flush=True)
        counts = [
            upstream(folder, policy, stream, args.zones, len(names))
            for policy in ("chashed", "roundrobin")
        ]
    finally:
        stop_all(nsds)
    print(f"{'backends':>8} {'qps':>9} {'avg ms':>7} {'p99 ms':>7} {'lost':>5}")
    for rate in rates:
        print(
            f"{rate.backends:8d} {rate.qps:9.0f} {rate.latency_avg_ms:7.3f} "
            f"{rate.latency_p99_ms:7.3f} {rate.lost:5d}"
        )
    print(f"{'policy':>10} {'queries':>8} {'upstream':>9} {'nsd':>7} {'hits':>7} {'misses':>7}")
    for count in counts:
        print(
            f"{count.policy:>10} {count.queries:8d} {count.upstream_queries:9.0f} "
            f"{count.nsd_queries:7d} {count.cache_hits:7.0f} {count.cache_misses:7.0f}"
        )
    chashed, roundrobin = counts
    print(
        f"upstream queries chashed/roundrobin: "
        f"{chashed.upstream_queries / max(roundrobin.upstream_queries, 1):.2f}"
    )
    results = {"throughput": [asdict(r) for r in rates], "upstream": [asdict(c) for c in counts]}
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zones", type=int, default=3000, help="names in the upstream stream")
    parser.add_argument("--repeats", type=int, default=3, help="times each name is asked")
    parser.add_argument("--seconds", type=int, default=10, help="each throughput run")
    parser.add_argument("--out", help="folder for the lab, logs and results (default: a temp dir)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    for tool in ("unshare", "nsd", "nsd-control", "dnsperf", "dig", "taskset", "dnsdist"):
        if shutil.which(tool) is None:
            print(
                f"needs {tool}: apt-get install nsd dnsperf bind9-dnsutils util-linux dnsdist",
                file=sys.stderr,
            )
            return 2
    command = [sys.executable, str(Path(__file__).resolve()), "--inside"]
    command += ["--zones", str(args.zones), "--repeats", str(args.repeats)]
    command += ["--seconds", str(args.seconds)]
    if args.out:
        command += ["--out", args.out]
    # As in cache_benchmark.py: unsigned zones, so validation is off.
    env = {**os.environ, "PYTHONPATH": str(REPO), "ROOTWALK_DNSSEC": "false"}
    return subprocess.run(
        ["unshare", "--net", "--", *command], env=env, cwd=REPO, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
