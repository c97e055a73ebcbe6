"""dnsdist in front of three Rootwalk processes on the lab (issue 13, point 1).

dnsdist runs the committed ``deploy/dnsdist/dnsdist.conf`` (``tests/deploy/front.py``), three
``rootwalk serve`` processes resolve on the lab. Which backend answered is read from each
backend's own metrics: the questions here are TXT questions, and dnsdist's health checks
ask ``localhost.`` A, so ``rootwalk_client_queries_total{qtype="TXT"}`` counts exactly the
test's queries a backend received. Skipped where dnsdist is not installed (``.ci/run``
installs Debian's package). Run it, as the rest of the suite, in a private network
namespace: ``unshare --net sh -c 'ip link set lo up; .venv/bin/pytest tests/deploy'``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.lab.server import Lab
from tests.deploy.front import CHECK_INTERVAL_S, CHECK_TIMEOUT_MS, DNSDIST, Backend, Dnsdist

pytestmark = pytest.mark.skipif(
    DNSDIST is None, reason="dnsdist is not installed (.ci/run installs Debian's package)"
)

NAMES = [f"name{index}.example.lab." for index in range(12)]
"""Twelve names: with three backends of 1000 ring points each, all twelve landing on one
backend has a chance of 3 / 3**12 (and the hash is fixed, so a run is repeatable)."""
REPEATS = 3
MOVED_WITHIN_S = CHECK_INTERVAL_S + CHECK_TIMEOUT_MS / 1000 + 3.0
"""One check interval and one check's timeout, plus room for a busy machine."""


@pytest.fixture(scope="module")
def backends(lab: Lab) -> Iterator[list[Backend]]:
    started: list[Backend] = []
    try:
        for _ in range(3):
            started.append(Backend(lab.port).start())
        yield started
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture(scope="module")
def dnsdist(backends: list[Backend], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsdist]:
    folder: Path = tmp_path_factory.mktemp("dnsdist")
    process = Dnsdist(folder, [backend.address for backend in backends])
    try:
        for backend in backends:  # each passed its first health check
            process.wait_marked(backend.address, "up")
        yield process
    finally:
        process.stop()


def ask(dnsdist: Dnsdist, qname: str, *, tcp: bool = False) -> int:
    """Ask dnsdist ``qname`` TXT; the reply's rcode (a timeout fails the test)."""
    query = dns.message.make_query(qname, "TXT")
    send = dns.query.tcp if tcp else dns.query.udp
    reply = send(query, "127.0.0.1", timeout=5, port=dnsdist.port)
    return reply.rcode()


def txt_counts(backends: list[Backend]) -> list[float]:
    return [b.metric("rootwalk_client_queries_total", qtype="TXT") for b in backends]


def owner(dnsdist: Dnsdist, backends: list[Backend], qname: str, *, tcp: bool = False) -> int:
    """Ask ``qname`` REPEATS times; the index of the one backend that got all of them."""
    before = txt_counts(backends)
    for _ in range(REPEATS):
        assert ask(dnsdist, qname, tcp=tcp) == dns.rcode.NXDOMAIN
    deltas = [after - was for after, was in zip(txt_counts(backends), before, strict=True)]
    reached = [index for index, delta in enumerate(deltas) if delta]
    assert len(reached) == 1 and deltas[reached[0]] == REPEATS, (qname, deltas)
    return reached[0]


def test_answers_over_udp_and_tcp(dnsdist: Dnsdist) -> None:
    for tcp in (False, True):
        query = dns.message.make_query("www.example.lab.", "A")
        send = dns.query.tcp if tcp else dns.query.udp
        reply = send(query, "127.0.0.1", timeout=5, port=dnsdist.port)
        assert reply.rcode() == dns.rcode.NOERROR
        assert [rr.to_text() for rr in reply.answer[0]] == ["192.0.2.10"]


def test_the_same_name_always_reaches_the_same_backend(
    dnsdist: Dnsdist, backends: list[Backend]
) -> None:
    owners = {qname: owner(dnsdist, backends, qname) for qname in NAMES}
    # Over TCP too, each name goes where it went over UDP.
    assert {qname: owner(dnsdist, backends, qname, tcp=True) for qname in NAMES} == owners
    assert len(set(owners.values())) > 1, owners  # the names are spread, not all on one


def test_a_killed_backend_s_names_move_and_come_back(
    dnsdist: Dnsdist, backends: list[Backend]
) -> None:
    owners = {qname: owner(dnsdist, backends, qname) for qname in NAMES}
    victim_index = owners[NAMES[0]]
    victim = backends[victim_index]
    its_names = [qname for qname, index in owners.items() if index == victim_index]
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.process.wait(10)
    dnsdist.wait_marked(victim.address, "down", timeout=30)
    assert time.monotonic() - killed_at < MOVED_WITHIN_S

    # From now on no query fails, and the victim's names are answered by the others; the
    # other names stay where they were (consistent hashing moves only the victim's share).
    survivors = [b for i, b in enumerate(backends) if i != victim_index]
    for qname in NAMES:
        for tcp in (False, True):
            moved_to = owner(dnsdist, survivors, qname, tcp=tcp)
            if qname not in its_names:
                assert survivors[moved_to] is backends[owners[qname]]

    # Restarted on its address, it passes a check and gets its share back.
    victim.start()
    dnsdist.wait_marked(victim.address, "up", count=2)
    for qname in NAMES:
        assert owner(dnsdist, backends, qname) == owners[qname]


def test_with_the_proxy_protocol_the_backend_sees_the_real_client(lab: Lab, tmp_path: Path) -> None:
    """``proxy_protocol = true`` in the dnsdist configuration and ``proxy_protocol_from`` on
    the backend: the backend's health checks pass (dnsdist sends them a LOCAL header), and
    its query log names the client (127.0.0.9 here), not dnsdist (127.0.0.1)."""
    backend = Backend(
        lab.port, env={"ROOTWALK_PROXY_PROTOCOL_FROM": "127.0.0.1/32", "ROOTWALK_QUERY_LOG": "true"}
    ).start()
    front = Dnsdist(tmp_path, [backend.address], proxy_protocol=True)
    try:
        front.wait_marked(backend.address, "up")
        for tcp in (False, True):
            query = dns.message.make_query("www.example.lab.", "A")
            if tcp:
                reply = dns.query.tcp(
                    query, "127.0.0.1", timeout=5, port=front.port, source="127.0.0.9"
                )
            else:
                reply = dns.query.udp(
                    query, "127.0.0.1", timeout=5, port=front.port, source="127.0.0.9"
                )
            assert reply.rcode() == dns.rcode.NOERROR and reply.answer
        assert backend.process is not None
        backend.process.wait_for("www.example.lab. A NOERROR udp from 127.0.0.9")
        backend.process.wait_for("www.example.lab. A NOERROR tcp from 127.0.0.9")
        lines = backend.process.output().splitlines()
        assert not [line for line in lines if "www.example.lab." in line and "127.0.0.1" in line]
        # dnsdist's health checks, with a LOCAL header: from dnsdist itself.
        assert any("localhost. A NOERROR udp from 127.0.0.1" in line for line in lines)
    finally:
        front.stop()
        backend.stop()
