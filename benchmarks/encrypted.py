#!/usr/bin/env python3
"""Cost per cached answer over DoT (RFC 7858) and DoH (RFC 8484) against plain TCP, in one
run: server CPU-seconds per answer, from /proc, as ``cache_benchmark.py`` measures them.

    python3 benchmarks/encrypted.py [--seconds 10] [--window 64] [--out DIR]

What it does (nothing leaves the namespace: it has only a loopback interface):
1. re-runs itself under ``unshare --net`` and brings ``lo`` up;
2. makes a self-signed certificate, starts ``rootwalk lab`` with TCP, DoT and DoH listeners
   (pinned to CPU 1 when there are two, the client to CPU 0), and caches one answer;
3. for each transport, one client connection keeps ``--window`` queries outstanding for
   ``--seconds`` (TCP and DoT: pipelined frames; DoH: HTTP/2 POST streams), every query the
   same cached question with its own ID;
4. prints answers per second, answers per server CPU-second and microseconds of server CPU
   per answer, with each transport's cost as a multiple of TCP's; writes results.json.

The client is one Python process too, so the answers per second are the client's as much as
the server's; the CPU per answer is the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import dns.message
import h2.config
import h2.connection
import h2.events
from cache_benchmark import cpu_seconds

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the certificate maker in tests/
from tests.tls import make_certificate  # noqa: E402

SERVER = "127.0.0.1"
NAME = "rootwalk.lab"
PORT, DOT_PORT, DOH_PORT, LAB_PORT = 5400, 5401, 5402, 5403
QUESTION = ("www.example.lab.", "A")


@dataclass
class Measured:
    transport: str
    answers: int
    seconds: float
    server_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.answers / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.answers / self.server_cpu_s if self.server_cpu_s else float("nan")

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.answers * 1e6 if self.answers else float("nan")


def query_wire(message_id: int) -> bytes:
    message = dns.message.make_query(*QUESTION)
    message.id = message_id
    return message.to_wire()


def client_context(cert: Path, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


async def keep_window(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    seconds: float,
    window: int,
    requests: Callable[[int, int], bytes],
    complete: Callable[[bytearray], int],
) -> int:
    """Send ``window`` requests (``requests(first, count)`` makes them), then one more for
    each reply, for ``seconds``; ``complete`` removes the whole replies at the front of the
    buffer and counts them. Returns the replies received."""
    writer.write(requests(0, window))
    sent, answered, buffer = window, 0, bytearray()
    end = time.monotonic() + seconds
    while answered < sent:
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        buffer += data
        done = complete(buffer)
        answered += done
        if done and time.monotonic() < end:
            writer.write(requests(sent, done))
            sent += done
    writer.close()
    return answered


def complete_frames(buffer: bytearray) -> int:
    """Whole length-prefixed DNS messages (RFC 1035 §4.2.2) at the front of ``buffer``."""
    done = 0
    while len(buffer) >= 2:
        (length,) = struct.unpack_from("!H", buffer)
        if len(buffer) < 2 + length:
            break
        del buffer[: 2 + length]
        done += 1
    return done


async def stream_client(port: int, tls: ssl.SSLContext | None, seconds: float, window: int) -> int:
    """TCP or DoT: ``window`` length-prefixed queries outstanding on one connection;
    returns the answers received in ``seconds``."""
    reader, writer = await asyncio.open_connection(
        SERVER, port, ssl=tls, server_hostname=NAME if tls else None
    )
    frames = [struct.pack("!H", len(w)) + w for w in (query_wire(i) for i in range(65536))]

    def requests(first: int, count: int) -> bytes:
        return b"".join(frames[(first + i) % 65536] for i in range(count))

    return await keep_window(reader, writer, seconds, window, requests, complete_frames)


async def doh_client(port: int, tls: ssl.SSLContext, seconds: float, window: int) -> int:
    """DoH: ``window`` HTTP/2 POST streams outstanding on one connection."""
    reader, writer = await asyncio.open_connection(SERVER, port, ssl=tls, server_hostname=NAME)
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    connection.initiate_connection()
    body = query_wire(0)  # RFC 8484 §4.1: ID 0
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", NAME.encode()),
        (b":path", b"/dns-query"),
        (b"content-type", b"application/dns-message"),
        (b"accept", b"application/dns-message"),
        (b"content-length", str(len(body)).encode()),
    ]

    def ask() -> None:
        stream_id = connection.get_next_available_stream_id()
        connection.send_headers(stream_id, headers)
        connection.send_data(stream_id, body, end_stream=True)

    for _ in range(window):
        ask()
    writer.write(connection.data_to_send())
    sent, answered = window, 0
    end = time.monotonic() + seconds
    while answered < sent:
        data = await reader.read(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                answered += 1
                if time.monotonic() < end:
                    ask()
                    sent += 1
        writer.write(connection.data_to_send())
    writer.close()
    return answered


def measure(name: str, pid: int, client: Callable[[], int]) -> Measured:
    before, started = cpu_seconds(pid), time.monotonic()
    answers = client()
    return Measured(name, answers, time.monotonic() - started, cpu_seconds(pid) - before)


def wait_answering(port: int) -> None:
    for _ in range(300):
        try:
            with socket.create_connection((SERVER, port), timeout=1) as sock:
                wire = query_wire(1)
                sock.sendall(struct.pack("!H", len(wire)) + wire)
                if sock.recv(2):
                    return
        except OSError:
            pass
        time.sleep(0.1)  # a benchmark, not a test: waiting for a process to come up
    raise RuntimeError(f"nothing answers on port {port}")


def pin(cpu: int) -> list[str]:
    """``taskset -c CPU`` when this machine has more than one CPU."""
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) > 1 else []


def inside(args: argparse.Namespace) -> int:
    folder = Path(args.out or tempfile.mkdtemp(prefix="rootwalk-encrypted-"))
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(folder, NAME)
    config = folder / "rootwalk.toml"
    config.write_text(
        f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
        f'dot_listen = "{SERVER}:{DOT_PORT}"\ndoh_listen = "{SERVER}:{DOH_PORT}"\n'
        'metrics = "off"\ncontrol = "off"\nlog_level = "WARNING"\n'
    )
    command = [*pin(1), sys.executable, "-m", "resolver", "lab", "--config", str(config)]
    command += ["--listen", f"{SERVER}:{PORT}", "--lab-port", str(LAB_PORT)]
    log = (folder / "rootwalk.log").open("w")
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_answering(PORT)
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {0})
        plain = client_context(cert)
        h2_tls = client_context(cert, ["h2"])
        runs = [
            ("tcp", lambda: stream_client(PORT, None, args.seconds, args.window)),
            ("dot", lambda: stream_client(DOT_PORT, plain, args.seconds, args.window)),
            ("doh", lambda: doh_client(DOH_PORT, h2_tls, args.seconds, args.window)),
        ]
        results = [
            measure(name, server.pid, lambda run=run: asyncio.run(run())) for name, run in runs
        ]
    finally:
        server.terminate()
        server.wait(10)
    tcp = results[0].cpu_us
    print(
        f"{'transport':<10} {'answers/s':>10} {'answers/CPU-s':>14} {'CPU us/answer':>14} {'x TCP':>6}"
    )
    for result in results:
        print(
            f"{result.transport:<10} {result.per_second:>10,.0f} {result.per_cpu_second:>14,.0f} "
            f"{result.cpu_us:>14.1f} {result.cpu_us / tcp:>6.2f}"
        )
    (folder / "results.json").write_text(
        json.dumps([asdict(r) | {"cpu_us": r.cpu_us} for r in results], indent=2)
    )
    print(f"results in {folder}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=64, help="queries outstanding (<= 100)")
    parser.add_argument("--out", help="folder for the certificate, log and results")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    command = [sys.executable, str(Path(__file__).resolve()), "--inside"]
    command += ["--seconds", str(args.seconds), "--window", str(args.window)]
    if args.out:
        command += ["--out", args.out]
    script = 'ip link set lo up && exec "$@"'
    return subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", script, "sh", *command],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        check=False,
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
