"""Several worker processes behind one port (SO_REUSEPORT): queries spread and answered,
metrics summed on the one endpoint, flush reaching every worker, a killed worker restarted,
SIGTERM stopping them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import run_rootwalk
from tests.integration.conftest import LAB_PORT
from tests.integration.stack import Stack

PORT, METRICS, CONTROL = 27600, 27601, 27602
REPO = Path(__file__).parents[2]


rootwalk = run_rootwalk


def stats() -> dict[str, object]:
    result = rootwalk("cache", "stats", "--control", f"127.0.0.1:{CONTROL}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def metric(name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def answered_by_many_sockets(count: int) -> int:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for index, sock in enumerate(sockets):
            sock.settimeout(5)
            sock.sendto(
                dns.message.make_query("www.example.lab.", "A", id=index).to_wire(),
                ("127.0.0.1", PORT),
            )
        replies = [dns.message.from_wire(sock.recvfrom(4096)[0]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return sum(1 for r in replies if r.answer and r.answer[0][0].to_text() == "192.0.2.10")


@pytest.fixture
def supervisor(stack: Stack) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resolver",
            "serve",
            "--workers",
            "2",
            "--listen",
            f"127.0.0.1:{PORT}",
            "--metrics",
            f"127.0.0.1:{METRICS}",
            "--control",
            f"127.0.0.1:{CONTROL}",
            "--root-hints",
            str(REPO / "zones/lab/root.hints"),
            "--outbound-port",
            str(LAB_PORT),
            "--outbound-allow",
            "127.0.0.0/8",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        for _ in range(100):
            try:
                dns.query.udp(
                    dns.message.make_query("localhost.", "AAAA"),
                    "127.0.0.1",
                    port=PORT,
                    timeout=0.2,
                )
                break
            except dns.exception.Timeout:
                continue
        for _ in range(100):  # the control endpoint comes up after the workers
            if rootwalk("cache", "stats", "--control", f"127.0.0.1:{CONTROL}").returncode == 0:
                break
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


def test_workers_share_the_port_and_the_metrics_add_up(supervisor: subprocess.Popen[str]) -> None:
    assert answered_by_many_sockets(24) == 24
    assert metric("rootwalk_workers") == 2
    assert (
        metric("rootwalk_client_queries_total", transport="udp", qtype="A", rcode="NOERROR") == 24
    )
    numbers = stats()
    workers = numbers["workers"]
    assert isinstance(workers, list) and len(workers) == 2
    answer = numbers["answer"]
    assert isinstance(answer, dict)
    assert answer["hits"] + answer["misses"] >= 24
    # SO_REUSEPORT spreads clients by address and port: both workers were asked.
    assert all(w["answer_lookups"] > 0 for w in workers), workers


def test_flush_reaches_every_worker(supervisor: subprocess.Popen[str]) -> None:
    answered_by_many_sockets(16)
    flushed = rootwalk("cache", "flush", "--control", f"127.0.0.1:{CONTROL}")
    assert flushed.returncode == 0
    answer = stats()["answer"]
    assert isinstance(answer, dict) and answer["entries"] == 0


def test_a_killed_worker_is_restarted(supervisor: subprocess.Popen[str]) -> None:
    workers = stats()["workers"]
    assert isinstance(workers, list)
    victim = workers[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    for _ in range(200):
        now = stats()
        pids = {w["pid"] for w in now["workers"]}  # type: ignore[union-attr]
        if now["worker_restarts"] == 1 and len(pids) == 2 and victim not in pids:
            break
    else:
        raise AssertionError("the worker was not restarted")
    assert answered_by_many_sockets(16) == 16
    assert metric("rootwalk_worker_restarts_total") == 1


def test_sighup_reaches_every_worker_and_sigterm_stops_them(
    supervisor: subprocess.Popen[str],
) -> None:
    pids = [w["pid"] for w in stats()["workers"]]  # type: ignore[union-attr]
    supervisor.send_signal(signal.SIGHUP)
    answered_by_many_sockets(8)  # still answering after the reload
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0
    assert supervisor.stderr is not None
    assert supervisor.stderr.read().count("configuration reloaded; caches kept") == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
