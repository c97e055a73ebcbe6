"""Several worker processes behind one port (SO_REUSEPORT): queries spread and answered,
metrics summed on the one endpoint, flush reaching every worker, a killed worker restarted,
SIGTERM stopping them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import run_rootwalk
from tests.integration.conftest import LAB_PORT
from tests.integration.stack import Stack
from tests.ports import free_port
from tests.process import RELOADED, RootwalkProcess

PORT, METRICS, CONTROL = free_port(), free_port(), free_port()
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
def supervisor(stack: Stack) -> Iterator[RootwalkProcess]:
    process = RootwalkProcess(
        "serve", "--workers", "2", "--listen", f"127.0.0.1:{PORT}",
        "--metrics", f"127.0.0.1:{METRICS}", "--control", f"127.0.0.1:{CONTROL}",
        "--root-hints", str(REPO / "zones/lab/root.hints"), "--outbound-port", str(LAB_PORT),
        "--trust-anchors", str(REPO / "zones/lab/trust-anchor.ds"),
        "--outbound-allow", "127.0.0.0/8",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        # logged once every worker said it is ready and the control and metrics endpoints
        # listen
        process.wait_for("2 workers running")
        yield process
    finally:
        process.stop(timeout=15)


def test_workers_share_the_port_and_the_metrics_add_up(supervisor: RootwalkProcess) -> None:
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


def test_flush_reaches_every_worker(supervisor: RootwalkProcess) -> None:
    answered_by_many_sockets(16)
    flushed = rootwalk("cache", "flush", "--control", f"127.0.0.1:{CONTROL}")
    assert flushed.returncode == 0
    answer = stats()["answer"]
    assert isinstance(answer, dict) and answer["entries"] == 0


def test_a_killed_worker_is_restarted(supervisor: RootwalkProcess) -> None:
    workers = stats()["workers"]
    assert isinstance(workers, list)
    victim = workers[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    supervisor.wait_for(f"(pid {victim}) exited with status")
    supervisor.wait_for(" started (pid ", count=3)  # two at the start, then the new one
    now = stats()
    pids = {w["pid"] for w in now["workers"]}  # type: ignore[union-attr]
    assert now["worker_restarts"] == 1 and len(pids) == 2 and victim not in pids
    assert answered_by_many_sockets(16) == 16
    assert metric("rootwalk_worker_restarts_total") == 1


def test_sighup_reaches_every_worker_and_sigterm_stops_them(
    supervisor: RootwalkProcess,
) -> None:
    pids = [w["pid"] for w in stats()["workers"]]  # type: ignore[union-attr]
    supervisor.send_signal(signal.SIGHUP)
    supervisor.wait_for(RELOADED, count=2)  # each worker says so
    assert answered_by_many_sockets(8) == 8  # still answering after the reload
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(15) == 0
    assert supervisor.output().count(RELOADED) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
