"""Faulty servers: one of example.lab.'s two servers misbehaves; resolution still succeeds
through the other, and later queries do not wait on the bad one again (server facts).
Success rate and latency per fault are printed for the report (pytest -s)."""

from __future__ import annotations

import time

import dns.message
import dns.name
import dns.query
import pytest

from tests.helpers import lab_with
from tests.integration.conftest import LAB_PORT, RESOLVER_PORT, lab_settings
from tests.integration.stack import Stack

NS1 = 'address = "127.53.3.1"\nzones = ["example.lab."]\n'
ROUNDS = 20
FAULTS = {
    "drops half": "drop = 0.5",
    "drops all": "drop = 1.0",
    "slow (0.5 s)": "delay_s = 0.5",
    "garbage": "garbage = true",
    "wrong ID": "wrong_id = true",
    "FORMERR to EDNS": "formerr_edns = true",
    "truncates, TCP closed": "truncate = true, tcp = false",
    "SERVFAIL": 'rcode = "SERVFAIL"',
}


@pytest.mark.parametrize(("index", "fault"), list(enumerate(FAULTS)), ids=list(FAULTS))
def test_one_good_server_is_enough(index: int, fault: str) -> None:
    port, lab_port = RESOLVER_PORT + 70 + index, LAB_PORT + 20 + index
    lab = lab_with(replace={NS1: NS1 + f"faults = {{ {FAULTS[fault]} }}\n"})
    settings = lab_settings(
        port, outbound_port=lab_port, upstream_timeout_s=0.3, client_deadline_s=3.0
    )
    running = Stack(settings, lab, lab_port).start()
    www = dns.name.from_text("www.example.lab.")
    latencies = []
    successes = 0
    try:
        for _ in range(ROUNDS):
            running.service.flush(www)
            started = time.monotonic()
            reply = dns.query.udp(
                dns.message.make_query(www, "A"), "127.0.0.1", timeout=5, port=port
            )
            latencies.append(time.monotonic() - started)
            if reply.answer and reply.answer[0][0].to_text() == "192.0.2.10":
                successes += 1
        bad = running.lab_server.authority("127.53.3.1").queries_received
    finally:
        running.stop()
    print(
        f"\nfault {fault!r}: {successes}/{ROUNDS} answered, latency mean {sum(latencies) / ROUNDS * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms, {bad} queries reached the faulty server"
    )
    assert successes == ROUNDS
    if fault != "FORMERR to EDNS":  # that server answers fine without EDNS and stays in use
        assert bad <= 6, "the faulty server was asked again and again"
