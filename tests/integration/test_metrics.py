"""Prometheus metrics checked against the traffic sent, over the real HTTP endpoint."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resolver.config import Endpoint
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port

PORT = free_port()
SERVER = "127.0.0.1"


@pytest.fixture
def measured(stack: Stack) -> Iterator[Stack]:
    running = Stack(lab_settings(PORT, metrics=Endpoint("127.0.0.1", 0))).start()
    yield running
    running.stop()


def scrape(running: Stack) -> str:
    metrics = running.service.metrics
    assert metrics is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics", timeout=5) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def test_counters_follow_the_traffic(measured: Stack) -> None:
    before = scrape(measured)
    for _ in range(7):
        reply = dns.query.udp(
            dns.message.make_query("www.example.lab.", "A"), SERVER, timeout=5, port=PORT
        )
        assert reply.answer
    dns.query.tcp(dns.message.make_query("nx.example.lab.", "AAAA"), SERVER, timeout=5, port=PORT)
    dns.query.udp(dns.message.make_query("www.example.lab.", 65280), SERVER, timeout=5, port=PORT)
    after = scrape(measured)

    def rise(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert rise("rootwalk_client_queries_total", transport="udp", qtype="A", rcode="NOERROR") == 7
    assert (
        rise("rootwalk_client_queries_total", transport="tcp", qtype="AAAA", rcode="NXDOMAIN") == 1
    )
    assert (
        rise("rootwalk_client_queries_total", transport="udp", qtype="other", rcode="NOERROR") == 1
    )
    assert rise("rootwalk_cache_hits_total") == 6
    assert rise("rootwalk_upstream_queries_total", outcome="answer") >= 1
    assert rise("rootwalk_upstream_queries_total", outcome="nxdomain") == 1
    assert rise("rootwalk_client_answer_seconds_count") == 9
    assert sample(after, "rootwalk_cache_entries", cache="answer") >= 3
    assert sample(after, "rootwalk_inflight_resolutions") == 0


def test_refusals_and_malformed_packets_are_counted(measured: Stack) -> None:
    import socket  # noqa: PLC0415

    before = scrape(measured)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        bad = dns.message.make_query("www.example.lab.", "A").to_wire()[:15]
        sock.sendto(bad, (SERVER, PORT))
        sock.recvfrom(512)
    after = scrape(measured)
    assert (
        sample(after, "rootwalk_client_rejected_total", reason="malformed")
        - sample(before, "rootwalk_client_rejected_total", reason="malformed")
        == 1
    )
    assert (
        sample(
            after, "rootwalk_client_queries_total", transport="udp", qtype="other", rcode="FORMERR"
        )
        >= 1
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_exposition(measured: Stack) -> None:
    dns.query.udp(dns.message.make_query("www.example.lab.", "A"), SERVER, timeout=5, port=PORT)
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=scrape(measured),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_a_real_prometheus_scrapes_the_endpoint(measured: Stack, tmp_path: object) -> None:
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    metrics = measured.service.metrics
    assert metrics is not None
    for _ in range(5):
        dns.query.udp(dns.message.make_query("www.example.lab.", "A"), SERVER, timeout=5, port=PORT)
    folder = Path(str(tmp_path))
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rootwalk\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{metrics.port}']\n"
    )
    web = f"127.0.0.1:{free_port()}"
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address={web}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = urllib.parse.urlencode(
        {"query": 'sum(rootwalk_client_queries_total{qtype="A",rcode="NOERROR"})'}
    )
    value = None
    try:
        deadline = time.monotonic() + 30
        while value is None and time.monotonic() < deadline:
            # Prometheus scrapes on its own timer: wait for that external process (bounded).
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(
                    f"http://{web}/api/v1/query?{query}", timeout=2
                ) as response:
                    result = json.loads(response.read())["data"]["result"]
            except OSError:
                continue
            if result:
                value = float(result[0]["value"][1])
    finally:
        prometheus.terminate()
        prometheus.wait(10)
    assert value is not None, "Prometheus never stored a sample"
    assert value >= 5


def test_error_rcodes_upstream_are_counted_by_name(measured: Stack) -> None:
    before = scrape(measured)
    measured.service.flush()
    dns.query.udp(dns.message.make_query("www.lame.lab.", "A"), SERVER, timeout=5, port=PORT)
    after = scrape(measured)
    rise = sample(after, "rootwalk_upstream_queries_total", outcome="rcode_REFUSED") - sample(
        before, "rootwalk_upstream_queries_total", outcome="rcode_REFUSED"
    )
    assert rise == 2  # both of lame.lab.'s servers


def test_sub_questions_and_dependency_cycles_are_counted(measured: Stack) -> None:
    before = scrape(measured)
    measured.service.flush()
    glueless = dns.query.udp(
        dns.message.make_query("www.glueless.lab.", "A"), SERVER, timeout=5, port=PORT
    )
    assert glueless.answer  # its server's address was a sub-question
    cycle = dns.query.udp(
        dns.message.make_query("www.cyca.lab.", "A"), SERVER, timeout=5, port=PORT
    )
    assert cycle.rcode() == dns.rcode.SERVFAIL
    after = scrape(measured)

    def rise(name: str) -> float:
        return sample(after, name) - sample(before, name)

    assert rise("rootwalk_subqueries_total") >= 1
    assert rise("rootwalk_dependency_cycles_total") >= 1
    assert rise("rootwalk_resolutions_started_total") == 2  # the two client questions
    assert rise("rootwalk_internal_errors_total") == 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_every_transport_and_qtype_is_counted_where_it_was_asked(
    measured: Stack, transport: str
) -> None:
    """Each query, a miss and then a hit, counts once under the transport it came on and
    never under the other (issue 14: an ANY "over UDP" counted as tcp was dig's doing: dig
    9.18 sends ANY over TCP unless told +notcp, see the next test)."""
    other = "tcp" if transport == "udp" else "udp"
    send = dns.query.udp if transport == "udp" else dns.query.tcp
    qtypes = {
        "A": "NOERROR",
        "AAAA": "NOERROR",
        "MX": "NOERROR",
        "TXT": "NOERROR",
        "ANY": "NOERROR",
    }
    before = scrape(measured)
    for qtype in qtypes:
        for _ in range(2):
            query = dns.message.make_query("www.example.lab.", qtype, use_edns=0, payload=4096)
            send(query, SERVER, timeout=5, port=PORT)
    after = scrape(measured)
    for qtype, rcode in qtypes.items():
        labels = {"qtype": qtype, "rcode": rcode}
        name = "rootwalk_client_queries_total"
        asked = sample(after, name, transport=transport, **labels)
        assert asked - sample(before, name, transport=transport, **labels) == 2, qtype
        assert sample(after, name, transport=other, **labels) == sample(
            before, name, transport=other, **labels
        ), qtype


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")
def test_dig_sends_any_over_tcp_unless_told_notcp(measured: Stack) -> None:
    """Why `dig ... ANY` shows up as transport="tcp": dig (BIND 9.18) asks ANY over TCP from
    the start (its reply says "(TCP)" with an 88-byte answer, nothing truncated); with
    +notcp the same query is counted as udp."""
    name = "rootwalk_client_queries_total"
    labels = {"qtype": "ANY", "rcode": "NOERROR"}
    for flags, transport in (([], "tcp"), (["+notcp"], "udp")):
        before = scrape(measured)
        out = subprocess.run(
            ["dig", f"@{SERVER}", "-p", str(PORT), "www.example.lab.", "ANY", "+time=5", *flags],
            check=True, capture_output=True, text=True, timeout=10,
        ).stdout  # fmt: skip
        assert f"({transport.upper()})" in out, out
        after = scrape(measured)
        assert (
            sample(after, name, transport=transport, **labels)
            - sample(before, name, transport=transport, **labels)
            == 1
        )
