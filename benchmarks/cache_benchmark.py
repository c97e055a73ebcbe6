#!/usr/bin/env python3
"""Cache-hit and cold-resolution benchmark: Rootwalk against Unbound, both pointed at a lab
of generated zones served by NSD, all inside a private network namespace.

    sudo python3 benchmarks/cache_benchmark.py [--zones 100000] [--seconds 10] [--out DIR]

What it does (nothing leaves the namespace: it has only a loopback interface):
1. re-runs itself under ``unshare --net`` and brings ``lo`` up;
2. writes a root zone, a TLD ``bench.`` delegating N zones ``zI.bench.`` (with glue), and one
   zone file every child zone shares; serves each level with its own NSD (127.54.0.1 root,
   127.54.1.1 TLD, 127.54.2.1 the N zones), so the resolvers really follow referrals;
3. starts Rootwalk (and Unbound when installed: one thread, iterator only, same hints), each
   pinned to CPU 1, with dnsperf and the NSDs pinned to CPU 0;
4. (a) cache hits: warms 100 names, then runs dnsperf for --seconds over them;
   (b) cold: 100,000 never-seen names (``www.zI.bench.``), each asked once;
5. prints qps, queries per server CPU-second, latency, upstream queries per name (counted by
   NSD itself), resident memory after the cold run, and the Rootwalk/Unbound ratios; writes
   results.json and a PNG chart (when matplotlib is installed).

``--signed``: every zone signed (``signed_lab.py``), Unbound with ``validator iterator`` and
Rootwalk with validation on, both with the lab root's trust anchor; both must give AD for a
sample name first, or the run stops without figures. Rootwalk also reports its signature
verifications per never-seen name and their share of its CPU (``count_verify.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from signed_lab import (
    nsd_zones_config,
    require_ad,
    signal_verifications,
    wait_served,
    write_signed_zones,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROOTWALK_PORT = 5300
UNBOUND_PORT = 5301
WARM_NAMES = 100


def start_profile(output: str | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` into ``output`` (raw stacks), when asked for."""
    if not output:
        return None
    command = ["py-spy", "record", "--pid", str(pid), "-r", "250", "--format", "raw", "-o", output]
    if os.environ.get("ROOTWALK_BENCH_PROFILE_NATIVE"):
        command.append("--native")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


# --- the generated lab -------------------------------------------------------------------------

SOA = "@ 3600 IN SOA ns.{origin} hostmaster.{origin} 1 3600 900 604800 300\n"


def write_lab(folder: Path, zones: int, signed: bool = False) -> None:
    (folder / "root.hints").write_text(
        ". 3600000 NS a.root.bench.\na.root.bench. 3600000 A 127.54.0.1\n"
    )
    (folder / "root.zone").write_text(
        "$ORIGIN .\n"
        + SOA.format(origin="root.bench.")
        + "@ 86400 IN NS a.root.bench.\na.root.bench. 86400 IN A 127.54.0.1\n"
        + "bench. 172800 IN NS ns.tld.bench.\nns.tld.bench. 172800 IN A 127.54.1.1\n"
    )
    with (folder / "bench.zone").open("w") as tld:
        tld.write(
            "$ORIGIN bench.\n" + SOA.format(origin="tld.bench.") + "@ 86400 IN NS ns.tld.bench.\n"
        )
        tld.write("ns.tld 86400 IN A 127.54.1.1\na.root 86400 IN A 127.54.0.1\n")
        for index in range(zones):
            tld.write(f"z{index} 86400 IN NS ns.z{index}\nns.z{index} 86400 IN A 127.54.2.1\n")
    # One file for every child zone: names are relative to each zone's own origin.
    (folder / "child.zone").write_text(
        "@ 3600 IN SOA ns hostmaster 1 3600 900 604800 300\n@ 3600 IN NS ns\nns 3600 IN A 127.54.2.1\n"
        "www 3600 IN A 192.0.2.80\n"
    )
    common = 'server:\n  port: 53\n  server-count: 1\n  verbosity: 0\n  hide-version: yes\n  zonelistfile: ""\n  xfrdfile: ""\n  database: ""\n'
    tag = "-signed" if signed else ""  # signed_lab.py's files, kept apart for reuse
    for level, address, body in [
        ("root", "127.54.0.1", f'zone:\n  name: "."\n  zonefile: "{{d}}/root{tag}.zone"\n'),
        ("tld", "127.54.1.1", f'zone:\n  name: "bench."\n  zonefile: "{{d}}/bench{tag}.zone"\n'),
    ]:
        (folder / f"nsd-{level}.conf").write_text(
            common
            + f'  ip-address: {address}\n  pidfile: "{folder}/nsd-{level}.pid"\n  username: ""\n'
            f"remote-control:\n  control-enable: yes\n  control-interface: {folder}/nsd-{level}.ctl\n"
            + body.format(d=folder)
        )
    with (folder / "nsd-zones.conf").open("w") as conf:
        conf.write(
            common
            + f'  ip-address: 127.54.2.1\n  pidfile: "{folder}/nsd-zones.pid"\n  username: ""\n'
            f"remote-control:\n  control-enable: yes\n  control-interface: {folder}/nsd-zones.ctl\n"
            f'pattern:\n  name: child\n  zonefile: "{folder}/child.zone"\n'
        )
        if signed:  # one signed file per zone (the signatures name their zone)
            conf.write(nsd_zones_config(folder, zones))
            return
        for index in range(zones):
            conf.write(f"zone:\n  name: z{index}.bench.\n  include-pattern: child\n")


def nsd_queries(folder: Path) -> int:
    """Queries the three NSDs have received, by their own statistics."""
    total = 0
    for level in ("root", "tld", "zones"):
        out = run("nsd-control", "-c", str(folder / f"nsd-{level}.conf"), "stats_noreset").stdout
        match = re.search(r"^num\.queries=(\d+)", out, re.M)
        total += int(match.group(1)) if match else 0
    return total


def start_nsds(folder: Path) -> list[subprocess.Popen[bytes]]:
    """The three NSDs of the lab ``write_lab`` wrote (pinned to CPU 0), once each answers
    its control channel."""
    nsds = [
        subprocess.Popen(
            ["taskset", "-c", "0", "nsd", "-d", "-c", str(folder / f"nsd-{level}.conf")],
            stderr=subprocess.DEVNULL,
        )
        for level in ("root", "tld", "zones")
    ]
    for level in ("root", "tld", "zones"):
        for _ in range(600):
            if (
                subprocess.run(
                    ["nsd-control", "-c", str(folder / f"nsd-{level}.conf"), "status"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ):
                break
            time.sleep(0.1)
    return nsds


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        process.wait(10)


# --- measuring a server -----------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children that are running (workers under a supervisor)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
    total = 0
    for each in pids:
        try:
            fields = _stat(each)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:  # the process itself (with workers: the supervisor only)
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


@dataclass
class Run:
    qps: float
    per_cpu_second: float
    latency_avg_ms: float
    latency_p99_ms: float
    completed: int
    lost: int

    @property
    def cpu_seconds(self) -> float:
        return self.completed / self.per_cpu_second


def dnsperf(port: int, names: Path, pid: int, *extra: str) -> Run:
    before = cpu_seconds(pid)
    out = run(
        "taskset",
        "-c",
        "0",
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(names),
        "-c",
        "4",
        "-v",
        *extra,
        timeout=900,
    ).stdout
    cpu = cpu_seconds(pid) - before
    completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    avg = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000  # type: ignore[union-attr]
    latencies = sorted(float(m) for m in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M))
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return Run(qps, completed / cpu if cpu > 0 else float("nan"), avg, p99, completed, lost)


def wait_answering(port: int) -> None:
    for _ in range(200):
        result = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), "localhost.", "+time=1", "+tries=1", "+short"],
            capture_output=True,
            text=True,
            check=False,
        )
        # The address alone on a line: dig +short also prints its errors on stdout, and
        # ";; communications error to 127.0.0.1#5301: connection refused" names the address.
        if "127.0.0.1" in result.stdout.splitlines():
            return
        time.sleep(0.1)  # a benchmark, not a test: waiting for a process to come up
    raise RuntimeError(f"nothing answers on port {port}")


@dataclass
class Result:
    name: str
    hits: Run
    cold: Run
    upstream_per_name: float
    rss_start_mb: float
    rss_after_cold_mb: float
    bytes_per_cached_name: float
    verifications_per_name: float = float("nan")  # --signed, Rootwalk only
    verify_cpu_share: float = float("nan")


def measure(
    name: str,
    command: list[str],
    port: int,
    folder: Path,
    warm: Path,
    cold: Path,
    seconds: int,
    zones: int,
    signed: bool = False,
) -> Result:
    with (folder / f"{name}.log").open("w") as log_file:
        # One process: CPU 1, dnsperf on CPU 0. Several workers: both CPUs (shared with dnsperf).
        cpus = "0,1" if "--workers" in command else "1"
        process = subprocess.Popen(
            ["taskset", "-c", cpus, *command], stdout=subprocess.DEVNULL, stderr=log_file
        )
    try:
        wait_answering(port)
        if signed:
            require_ad("127.0.0.1", port, "www.z0.bench.", folder / f"{name}.log")
        run(
            "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(warm), "-n", "1"
        )  # warm the 100 names
        profile = os.environ.get("ROOTWALK_BENCH_PROFILE")  # py-spy raw stacks of one run
        phase = os.environ.get("ROOTWALK_BENCH_PROFILE_PHASE", "cold")  # or "hits"
        spy = (
            start_profile(profile, process.pid) if name == "rootwalk" and phase == "hits" else None
        )
        hits = dnsperf(port, warm, process.pid, "-l", str(seconds), "-q", "200")
        stop_profile(spy)
        upstream_before = nsd_queries(folder)
        rss_start = rss_bytes(process.pid)  # growth over the cold run alone
        counted = signed and name == "rootwalk" and "--workers" not in command
        verify_file = folder / "verifications.txt"
        verified = signal_verifications(process.pid, verify_file) if counted else (0, 0.0)
        spy = (
            start_profile(profile, process.pid) if name == "rootwalk" and phase == "cold" else None
        )
        cold_run = dnsperf(port, cold, process.pid, "-n", "1", "-q", "500", "-t", "5")
        stop_profile(spy)
        upstream = nsd_queries(folder) - upstream_before
        rss_after = rss_bytes(process.pid)
        if counted:
            count, spent = signal_verifications(process.pid, verify_file)
            verified = (count - verified[0], spent - verified[1])
    finally:
        process.terminate()
        process.wait(10)
    return Result(
        name,
        hits,
        cold_run,
        upstream / max(cold_run.completed, 1),
        rss_start / 2**20,
        rss_after / 2**20,
        (rss_after - rss_start) / max(zones, 1),
        verified[0] / max(cold_run.completed, 1) if counted else float("nan"),
        verified[1] / cold_run.cpu_seconds if counted else float("nan"),
    )


def unbound_command(folder: Path, signed: bool = False) -> list[str] | None:
    if shutil.which("unbound") is None:
        return None
    conf = folder / "unbound.conf"
    modules = (
        f'"validator iterator"\n  trust-anchor-file: {folder}/trust-anchor.ds\n  val-log-level: 2'
        if signed
        else '"iterator"'
    )
    conf.write_text(
        "server:\n"
        f"  interface: 127.0.0.1@{UNBOUND_PORT}\n  do-not-query-localhost: no\n"
        f"  root-hints: {folder}/root.hints\n  module-config: {modules}\n  num-threads: 1\n"
        '  access-control: 127.0.0.0/8 allow\n  username: ""\n  chroot: ""\n  pidfile: ""\n'
        "  use-syslog: no\n  verbosity: 0\n  msg-cache-size: 128m\n  rrset-cache-size: 256m\n"
        "  so-reuseport: no\n  do-ip6: no\n"
    )
    return ["unbound", "-d", "-c", str(conf)]


def chart(results: list[Result], path: Path) -> None:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("(matplotlib not installed: no chart)")
        return
    figure, axes = plt.subplots(1, 3, figsize=(12, 4))
    names = [r.name for r in results]
    axes[0].bar(names, [r.hits.per_cpu_second for r in results])
    axes[0].set_title("cache hits / server CPU-second")
    axes[1].bar(names, [r.cold.per_cpu_second for r in results])
    axes[1].set_title("never-seen names / server CPU-second")
    axes[2].bar(names, [r.bytes_per_cached_name for r in results])
    axes[2].set_title("resident bytes per cached name")
    figure.tight_layout()
    figure.savefig(path)
    print(f"chart: {path}")


def inside(args: argparse.Namespace) -> int:
    run("ip", "link", "set", "lo", "up")
    folder = Path(args.out or tempfile.mkdtemp(prefix="rootwalk-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"lab of {args.zones} zones in {folder}", flush=True)
    write_lab(folder, args.zones, args.signed)
    if args.signed:
        took = write_signed_zones(folder, args.zones)
        done = f"in {took:.1f} s" if took else "earlier (reused)"
        print(f"signed {args.zones + 2} zones {done}", flush=True)
    nsds = start_nsds(folder)
    try:
        if args.signed:
            wait_served(args.zones)
        warm = folder / "warm.txt"
        warm.write_text("".join(f"www.z{i}.bench. A\n" for i in range(WARM_NAMES)))
        cold = folder / "cold.txt"
        cold.write_text("".join(f"www.z{i}.bench. A\n" for i in range(WARM_NAMES, args.zones)))
        rootwalk = [
            sys.executable,
            "-m",
            "resolver",
            "serve",
            "--listen",
            f"127.0.0.1:{ROOTWALK_PORT}",
            "--root-hints",
            str(folder / "root.hints"),
            "--outbound-allow",
            "127.0.0.0/8",
            "--outbound-port",
            "53",
            "--log-level",
            "WARNING",
        ]
        if args.workers > 1:
            rootwalk += ["--workers", str(args.workers)]
        if args.signed:  # count_verify.py runs `-m resolver` with verifications counted
            rootwalk[1:3] = [str(HERE / "count_verify.py"), str(folder / "verifications.txt")]
            rootwalk += ["--trust-anchors", str(folder / "trust-anchor.ds")]
        results = [
            measure(
                "rootwalk",
                rootwalk,
                ROOTWALK_PORT,
                folder,
                warm,
                cold,
                args.seconds,
                args.zones - WARM_NAMES,
                args.signed,
            )
        ]
        unbound = (
            unbound_command(folder, args.signed)
            if not os.environ.get("ROOTWALK_BENCH_ONLY")
            else None
        )
        if unbound is not None:
            results.append(
                measure(
                    "unbound",
                    unbound,
                    UNBOUND_PORT,
                    folder,
                    warm,
                    cold,
                    args.seconds,
                    args.zones - WARM_NAMES,
                    args.signed,
                )
            )
    finally:
        stop_all(nsds)
    report(results, folder)
    return 0


def report(results: list[Result], folder: Path) -> None:
    header = f"{'server':10} {'hit qps':>9} {'hits/cpu-s':>10} {'hit avg ms':>10} {'hit p99 ms':>10} {'cold qps':>9} {'cold/cpu-s':>10} {'cold p99 ms':>11} {'lost':>5} {'upstream/name':>13} {'RSS MB':>7} {'B/name':>7}"
    print(header)
    for r in results:
        print(
            f"{r.name:10} {r.hits.qps:9.0f} {r.hits.per_cpu_second:10.0f} {r.hits.latency_avg_ms:10.3f} {r.hits.latency_p99_ms:10.3f} {r.cold.qps:9.0f} {r.cold.per_cpu_second:10.0f} {r.cold.latency_p99_ms:11.3f} {r.cold.lost:5d} {r.upstream_per_name:13.2f} {r.rss_after_cold_mb:7.1f} {r.bytes_per_cached_name:7.0f}"
        )
    if len(results) == 2:
        ours, peer = results
        print(
            f"ratios rootwalk/unbound: hits per CPU-second {ours.hits.per_cpu_second / peer.hits.per_cpu_second:.2f}, "
            f"cold names per CPU-second {ours.cold.per_cpu_second / peer.cold.per_cpu_second:.2f}, "
            f"upstream queries per name {ours.upstream_per_name / peer.upstream_per_name:.2f}, "
            f"bytes per cached name {ours.bytes_per_cached_name / max(peer.bytes_per_cached_name, 1):.2f}"
        )
    if results and results[0].verifications_per_name == results[0].verifications_per_name:
        first = results[0]
        print(
            f"rootwalk cold run: {first.verifications_per_name:.2f} signature verifications per "
            f"name, {first.verify_cpu_share:.0%} of its CPU time in them"
        )
    (folder / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    chart(results, folder / "cache_benchmark.png")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zones", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", help="folder for the lab, logs and results (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=1, help="rootwalk serve --workers N")
    parser.add_argument(
        "--signed", action="store_true", help="every zone signed, both resolvers validating"
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    for tool in ("unshare", "nsd", "nsd-control", "dnsperf", "dig", "taskset"):
        if shutil.which(tool) is None:
            print(
                f"needs {tool}: apt-get install nsd dnsperf bind9-dnsutils util-linux",
                file=sys.stderr,
            )
            return 2
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--inside",
        "--zones",
        str(args.zones),
        "--seconds",
        str(args.seconds),
        "--workers",
        str(args.workers),
    ]
    if args.out:
        command += ["--out", args.out]
    if args.signed:
        command.append("--signed")
    # dnsperf keeps 500 queries outstanding in the cold run; Unbound's queue takes 1024, so
    # Rootwalk's is raised to match (its default of 100 is set for floods: flood.py).
    # The benchmark's zones are unsigned and Unbound runs iterator-only, so Rootwalk's
    # validation is off too (with the IANA anchors every answer of this fake root is bogus).
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ROOTWALK_MAX_PENDING_QUERIES": "1024",
        "ROOTWALK_DNSSEC": "true" if args.signed else os.environ.get("ROOTWALK_DNSSEC", "false"),
    }
    return subprocess.run(
        ["unshare", "--net", "--", *command], env=env, cwd=REPO, check=False
    ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
