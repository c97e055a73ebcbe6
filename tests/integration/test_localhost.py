"""Do not query localhost by default (issue 10, item 9), over real sockets: localns.lab.'s
name servers are at 127.0.0.1 and ::1. A resolver whose allow-list names only the lab's
addresses (127.53.0.0/16) skips them, counts it, and says so in the EDE text."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.config import Endpoint
from tests.integration.conftest import lab_settings
from tests.integration.stack import Stack
from tests.integration.test_metrics import sample, scrape
from tests.ports import free_port

PORT = free_port()


@pytest.fixture
def narrow(stack: Stack) -> Iterator[Stack]:
    """A resolver on the session's lab that may send only to 127.53.0.0/16."""
    settings = lab_settings(
        PORT,
        outbound_allow=(ipaddress.ip_network("127.53.0.0/16"),),
        metrics=Endpoint("127.0.0.1", 0),
    )
    running = Stack(settings).start()
    yield running
    running.stop()


def test_a_zone_served_from_localhost_is_skipped_and_said(narrow: Stack, stack: Stack) -> None:
    before = scrape(narrow)
    reply = dns.query.udp(
        dns.message.make_query("www.localns.lab.", "A", use_edns=0),
        "127.0.0.1",
        timeout=5,
        port=PORT,
    )
    after = scrape(narrow)
    assert reply.rcode() == dns.rcode.SERVFAIL
    (ede,) = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.code == dns.edns.EDECode.NO_REACHABLE_AUTHORITY
    assert ede.text is not None
    assert "localns.lab." in ede.text and "local address" in ede.text, ede.text
    skipped = sample(after, "rootwalk_outbound_local_skipped_total") - sample(
        before, "rootwalk_outbound_local_skipped_total"
    )
    assert skipped >= 2  # 127.0.0.1 and ::1
    assert sample(after, "rootwalk_upstream_queries_total", outcome="local_address") >= 2
    assert sample(after, "rootwalk_outbound_refused_total") == 0
    # The rest of the lab, named by the allow-list, still resolves.
    ok = dns.query.udp(
        dns.message.make_query("www.example.lab.", "A"), "127.0.0.1", timeout=5, port=PORT
    )
    assert ok.rcode() == dns.rcode.NOERROR and ok.answer
