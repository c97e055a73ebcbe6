"""Rootwalk and Unbound side by side on the lab, inside a private network namespace.

    sudo .venv/bin/python -m tests.peer.harness [--out DIR]

re-runs itself under ``unshare --net`` (only a loopback interface: nothing can leave), brings
``lo`` up, and there starts the lab's servers on port 53 (``rootwalk lab --lab-port 53``:
Unbound sends to name servers on port 53 only, whatever the hints say), two ``rootwalk
serve`` and two Debian ``unbound`` (``module-config: "iterator"``, no trust anchor,
``do-not-query-localhost: no``, the lab's root hints), one of each with QNAME minimisation on
and one with it off. Every question of :mod:`tests.peer.questions` is asked of all four,
over UDP with EDNS, UDP without EDNS and TCP, each twice (the second answer comes from the
cache); the first transport asked rotates from question to question, so cache misses are seen
over each. The four resolvers are asked in parallel, each its questions in the same order.
The replies go to ``DIR/results.json``; outside the namespace they are compared
(:mod:`tests.peer.compare`) against the allow-list and the differences printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.query

from resolver.lab.description import load_lab_description
from resolver.paths import lab_description, lab_root_hints, lab_trust_anchor
from tests.peer.compare import (
    TIMEOUT,
    TRANSPORTS,
    VALIDATING_MODES,
    Allowed,
    Asked,
    Reply,
    judge,
    load_allowed,
    reply_of,
    report,
)
from tests.peer.questions import PeerQuestion, derive_questions, random_zones, zone_of

REPO = Path(__file__).resolve().parents[2]
LAB_PORT = 53
"""Unbound asks every name server on port 53 (the hints' and glue's addresses carry no port),
so inside the namespace the lab listens there."""
LAB_RESOLVER_PORT = 5399
"""Where ``rootwalk lab``'s own resolver listens (unused here)."""
ROOTWALK_PORTS = {True: 5301, False: 5302}
UNBOUND_PORTS = {True: 5311, False: 5312}
FIRST_TIMEOUT_S = 5.0
"""The first asking of a question waits longer than Rootwalk's client deadline (4 s), so
Rootwalk's SERVFAIL is seen."""
CACHED_TIMEOUT_S = 1.5
"""The later askings come from the cache (or merge with a resolution still running)."""
ZONES_AT_ONCE = 6
"""Lab zones asked at the same time (each zone's questions in order)."""
READY_TIMEOUT_S = 30.0
"""Only guards a hang while a server starts (see ``wait_for_line``)."""
ASK_BUDGET_S = 75.0
"""The asking stops after this long (the test fails then), so the whole run stays under 2 min."""
EDNS_PAYLOAD = 1232
UNBOUND = "unbound"
QMIN_SETTING = "qname_minimisation"
QMIN_ENV = "ROOTWALK_QNAME_MINIMISATION"


def unbound_path() -> str | None:
    """Debian installs unbound in /usr/sbin, which a user's PATH may lack."""
    return shutil.which(UNBOUND) or shutil.which(UNBOUND, path="/usr/sbin:/usr/local/sbin")


def why_not_runnable() -> str | None:
    """Why the differential test cannot run here, or None when it can."""
    if unbound_path() is None:
        return "unbound is not installed (apt-get install unbound)"
    if shutil.which("ip") is None:
        return "ip is not installed (apt-get install iproute2)"
    try:
        probe = subprocess.run(
            ["unshare", "--net", "true"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --net cannot run: {exc}"
    if probe.returncode != 0:
        return f"unshare --net is not permitted: {probe.stderr.strip()}"
    return None


def rootwalk_knows_qmin() -> bool:
    """Whether this Rootwalk has the ``qname_minimisation`` setting (``check-config`` lists
    every setting), so the harness passes it only when it exists."""
    result = subprocess.run(
        [sys.executable, "-m", "resolver", "check-config"],
        capture_output=True, text=True, cwd=REPO, timeout=30, check=False,
    )  # fmt: skip
    return any(line.startswith(f"{QMIN_SETTING} =") for line in result.stdout.splitlines())


def unbound_config(
    folder: Path, port: int, qmin: bool, zones: list[str], validating: bool = False
) -> Path:
    """Unbound as Debian ships it, but iterator only (no validator, no trust anchor), the
    lab's hints, loopback name servers allowed, one thread, and QNAME minimisation as asked.
    Unbound's built-in local zones (RFC 6761 names, test-net reverse zones) are switched off
    for the lab's zones (``nodefault``), so a lab zone is always resolved, never answered
    locally. With ``validating``: the validator too, the lab's trust anchor and Extended DNS
    Errors (``ede: yes``; Unbound 1.17 sends none without it)."""
    nodefault = "".join(f'  local-zone: "{zone}" nodefault\n' for zone in zones if zone != ".")
    modules = (
        '  module-config: "validator iterator"\n'
        f"  trust-anchor-file: {lab_trust_anchor()}\n  ede: yes\n  val-log-level: 2\n"
        if validating
        else '  module-config: "iterator"\n'
    )
    path = folder / f"unbound-{port}.conf"
    path.write_text(
        "server:\n"
        f"  interface: 127.0.0.1@{port}\n"
        f"{modules}"
        f"  root-hints: {lab_root_hints()}\n"
        "  do-not-query-localhost: no\n"
        f"  qname-minimisation: {'yes' if qmin else 'no'}\n"
        "  access-control: 127.0.0.0/8 allow\n"
        '  username: ""\n  chroot: ""\n  pidfile: ""\n'
        f"  directory: {folder}\n"
        f"  logfile: {folder}/unbound-{port}.log\n"
        "  use-syslog: no\n  verbosity: 1\n  log-servfail: yes\n"
        "  num-threads: 1\n  so-reuseport: no\n"
        # several zones are asked at once: room for their TCP askings (the default is 10)
        "  incoming-num-tcp: 100\n"
        f"{nodefault}"
        "remote-control:\n  control-enable: no\n"
    )
    return path


async def ask(port: int, name: str, rdtype: str, transport: str, timeout_s: float) -> Reply:
    """One question to the resolver on 127.0.0.1:``port``; no reply in time is TIMEOUT.
    ``transport`` is one of :data:`TRANSPORTS` or, in the validating run, of
    :data:`VALIDATING_MODES` (all over UDP with EDNS)."""
    validating = transport in VALIDATING_MODES
    if transport == "udp-edns" or validating:
        query = dns.message.make_query(
            name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=transport != "plain"
        )
        if transport == "cd":
            query.flags |= dns.flags.CD
    else:
        query = dns.message.make_query(name, rdtype)
    try:
        if transport == "tcp":
            message = await dns.asyncquery.tcp(query, "127.0.0.1", timeout_s, port)
        else:
            message = await dns.asyncquery.udp(query, "127.0.0.1", timeout_s, port)
    except (dns.exception.Timeout, EOFError, ConnectionResetError):
        return Reply(TIMEOUT)  # a TCP connection closed without a reply is no reply too
    except (dns.exception.DNSException, OSError) as exc:
        return Reply(f"ERROR {type(exc).__name__}")
    return reply_of(message, validating)


async def ask_all(
    port: int, qmin: bool, questions: list[PeerQuestion], until: float
) -> list[dict[str, Any]]:
    """Every question, each over the three transports twice; the questions of one lab zone
    in order, ``ZONES_AT_ONCE`` zones at a time (a zone whose servers stay silent then costs
    its own time only). The first asking (over a transport that rotates from question to
    question, so that each is seen missing the cache) is answered before the five others are
    asked, together: those come from the cache, so they get a short timeout. Stops at
    ``until`` (monotonic): the test then fails naming the questions left unasked."""
    by_zone: dict[str, list[tuple[int, PeerQuestion]]] = {}
    for index, question in enumerate(questions):
        by_zone.setdefault(question.zone, []).append((index, question))
    at_once = asyncio.Semaphore(ZONES_AT_ONCE)

    async def one(
        question: PeerQuestion, transport: str, attempt: int, timeout_s: float
    ) -> dict[str, Any]:
        sent_at = time.monotonic()
        reply = await ask(port, question.name, question.type, transport, timeout_s)
        asked = Asked(question.name, question.type, transport, qmin, attempt)
        seconds = round(time.monotonic() - sent_at, 3)
        return {"asked": asked_json(asked), "reply": reply.to_json(), "s": seconds}

    async def zone(items: list[tuple[int, PeerQuestion]]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async with at_once:
            for index, question in items:
                if time.monotonic() > until:
                    break
                order = [TRANSPORTS[(index + step) % len(TRANSPORTS)] for step in range(3)]
                askings = [(transport, attempt) for transport in order for attempt in (1, 2)]
                rows.append(await one(question, *askings[0], FIRST_TIMEOUT_S))
                rows.extend(
                    await asyncio.gather(
                        *(one(question, t, a, CACHED_TIMEOUT_S) for t, a in askings[1:])
                    )
                )
        return rows

    per_zone = await asyncio.gather(*(zone(items) for items in by_zone.values()))
    return [row for rows in per_zone for row in rows]


def asked_json(asked: Asked) -> list[Any]:
    return [asked.name, asked.type, asked.transport, asked.qmin, asked.attempt]


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    """Until the log ``process`` writes holds ``text``, the line it prints once it listens
    (``rootwalk lab``'s banner, ``listening on ...``, Unbound's ``start of service``). A log
    file has no wake-up in the standard library, so it is read again every 10 ms; the 30 s
    limit only guards a hang, and a process that exits first fails at once."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (log.exists() and text in log.read_text(errors="replace")):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} never wrote {text!r} to {log}")
        time.sleep(0.01)


@contextmanager
def started(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env=env
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def rootwalk_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "resolver", "serve", "--listen", f"127.0.0.1:{port}",
        "--root-hints", str(lab_root_hints()), "--outbound-allow", "127.0.0.0/8",
        "--trust-anchors", str(lab_trust_anchor()),
        "--outbound-allow", "::1/128",
        "--outbound-port", str(LAB_PORT), "--metrics", "off", "--control", "off",
        "--log-level", "INFO",  # its "listening on" line says it is ready
    ]  # fmt: skip


def lab_resolver_command() -> list[str]:
    """``rootwalk lab``: the lab's servers on port LAB_PORT of their addresses and its
    resolver on LAB_RESOLVER_PORT (the peer runs' common start)."""
    return [
        sys.executable, "-m", "resolver", "lab", "--lab-port", str(LAB_PORT),
        "--listen", f"127.0.0.1:{LAB_RESOLVER_PORT}", "--metrics", "off", "--control", "off",
        "--log-level", "WARNING",
    ]  # fmt: skip


def inside(out: Path) -> int:
    """The namespace side: start everything, ask, write ``results.json``."""
    description = load_lab_description(lab_description())
    zones = [zone.to_text() for zone in description.zone_files]
    skipped = random_zones(description)
    questions = [q for q in derive_questions(description) if zone_of(q, zones) not in skipped]
    qmin_known = rootwalk_knows_qmin()
    unbound = unbound_path()
    assert unbound is not None
    lab_command = lab_resolver_command()
    started_at = time.monotonic()
    with started(lab_command, out / "lab.log") as lab:
        wait_for_line(out / "lab.log", "rootwalk lab: resolver on", lab)
        processes = []
        with (
            started(rootwalk_command(ROOTWALK_PORTS[True]), out / "rootwalk-qmin-on.log",
                    {**os.environ, QMIN_ENV: "true"} if qmin_known else None) as rw_on,
            started(rootwalk_command(ROOTWALK_PORTS[False]), out / "rootwalk-qmin-off.log",
                    {**os.environ, QMIN_ENV: "false"} if qmin_known else None) as rw_off,
            started([unbound, "-d", "-c", str(unbound_config(out, UNBOUND_PORTS[True], True, zones))],
                    out / "unbound-qmin-on.out") as ub_on,
            started([unbound, "-d", "-c", str(unbound_config(out, UNBOUND_PORTS[False], False, zones))],
                    out / "unbound-qmin-off.out") as ub_off,
        ):  # fmt: skip
            processes = [
                (ROOTWALK_PORTS[True], rw_on),
                (ROOTWALK_PORTS[False], rw_off),
                (UNBOUND_PORTS[True], ub_on),
                (UNBOUND_PORTS[False], ub_off),
            ]
            for log, text, (_, process) in zip(
                [out / "rootwalk-qmin-on.log", out / "rootwalk-qmin-off.log",
                 out / f"unbound-{UNBOUND_PORTS[True]}.log",
                 out / f"unbound-{UNBOUND_PORTS[False]}.log"],
                [f"listening on 127.0.0.1:{ROOTWALK_PORTS[True]} ",
                 f"listening on 127.0.0.1:{ROOTWALK_PORTS[False]} ",
                 "start of service", "start of service"],
                processes, strict=True,
            ):  # fmt: skip
                wait_for_line(log, text, process)
            ready_at = time.monotonic()

            until = ready_at + ASK_BUDGET_S

            async def run_all() -> tuple[list[dict[str, Any]], ...]:
                return await asyncio.gather(
                    ask_all(ROOTWALK_PORTS[True], True, questions, until),
                    ask_all(ROOTWALK_PORTS[False], False, questions, until),
                    ask_all(UNBOUND_PORTS[True], True, questions, until),
                    ask_all(UNBOUND_PORTS[False], False, questions, until),
                )

            rw_on_rows, rw_off_rows, ub_on_rows, ub_off_rows = asyncio.run(run_all())
    results = {
        "questions": [[q.name, q.type, q.zone] for q in questions],
        "skipped": skipped,
        "rootwalk_qmin_setting": qmin_known,
        "rootwalk": rw_on_rows + rw_off_rows,
        "unbound": ub_on_rows + ub_off_rows,
        "seconds": {"start": ready_at - started_at, "ask": time.monotonic() - ready_at},
    }
    (out / "results.json").write_text(json.dumps(results))
    return 0


def run_in_namespace(
    out: Path,
    timeout_s: float = 110.0,
    *,
    module: str = "tests.peer.harness",
    what: str = "the harness",
) -> tuple[int, str]:
    """Run ``module``'s ``--inside`` under ``unshare --net`` with ``lo`` up, in a process group
    of its own, so that a run that overruns is ended with everything it started."""
    command = f"ip link set lo up && exec {sys.executable} -m {module} --inside --out {out}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(QMIN_ENV, None)  # each Rootwalk is given its own setting
    process = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return -1, f"{what} ran over {timeout_s} s and was ended\n{output}"
    return process.returncode, output


def replies(rows: list[dict[str, Any]]) -> dict[Asked, Reply]:
    return {Asked(*row["asked"]): Reply.from_json(row["reply"]) for row in rows}


def load_results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def command_line(
    inside_run: Callable[[Path], int],
    run: Callable[[Path], tuple[int, str]],
    *,
    prefix: str,
    allowed: list[Allowed],
    description: str | None = __doc__,
) -> int:
    """The command line of a differential run: ``--inside`` runs it in this namespace, else it
    runs under ``unshare --net`` and the verdict is printed (exit 1 on differences)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="folder for logs and results (default: temp)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside_run(args.out)
    reason = why_not_runnable()
    if reason is not None:
        print(f"peer: cannot run: {reason}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix=prefix))
    out.mkdir(parents=True, exist_ok=True)
    returncode, output = run(out)
    if returncode != 0:
        print(output, file=sys.stderr)
        return 2
    data = load_results(out)
    verdict = judge(replies(data["rootwalk"]), replies(data["unbound"]), allowed)
    print(report(verdict, len(data["questions"]), data["skipped"]))
    print(f"(logs and results.json in {out}; times {data['seconds']})")
    return 1 if verdict.failed else 0


def main() -> int:
    return command_line(inside, run_in_namespace, prefix="rootwalk-peer-", allowed=load_allowed())


if __name__ == "__main__":
    raise SystemExit(main())
