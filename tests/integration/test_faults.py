"""Faulty servers: one of example.lab.'s two servers misbehaves; resolution still succeeds
through the other, and later queries do not wait on the bad one again (server facts).
How long the answers take under each fault is measured by ``benchmarks/faults.py``."""

from __future__ import annotations

from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest

from tests.helpers import lab_with
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port

NS1 = "127.53.3.1"
ROUNDS = 20
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


@pytest.mark.parametrize("fault", list(FAULTS))
def test_one_good_server_is_enough(fault: str) -> None:
    port, faulty_lab_port = free_port(), lab_port()
    lab = lab_with().with_faults(NS1, **FAULTS[fault])
    settings = lab_settings(
        port, outbound_port=faulty_lab_port, upstream_timeout_s=0.3, client_deadline_s=3.0
    )
    running = Stack(settings, lab, faulty_lab_port).start()
    www = dns.name.from_text("www.example.lab.")
    successes = 0
    try:
        for _ in range(ROUNDS):
            running.service.flush(www)
            reply = dns.query.udp(
                dns.message.make_query(www, "A"), "127.0.0.1", timeout=5, port=port
            )
            if reply.answer and reply.answer[0][0].to_text() == "192.0.2.10":
                successes += 1
        bad = running.lab_server.authority(NS1).queries_received
    finally:
        running.stop()
    assert successes == ROUNDS
    if fault != "FORMERR to EDNS":  # that server answers fine without EDNS and stays in use
        assert bad <= 6, "the faulty server was asked again and again"
