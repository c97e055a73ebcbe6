"""Graceful shutdown over real sockets: on SIGTERM ``rootwalk serve`` stops taking queries,
lets those in flight finish within ``shutdown_grace_s``, then exits 0 (issue 14, item 2)."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import dns.message
import dns.query
import dns.rcode

from tests.integration.stack import Stack
from tests.integration.test_cli import ENV, serve_on_lab
from tests.ports import free_port

SLOW_SERVER = "127.53.9.1"  # ns1.slow.lab.: delays every answer by 0.5 s
GRACE_S = 2.0
MARGIN_S = 3.0


def _wait_for_queries(stack: Stack, count: int, process: subprocess.Popen[str]) -> None:
    """Until the slow lab server has received ``count`` more queries: they are in flight."""
    authority = stack.lab_server.authority(SLOW_SERVER)
    deadline = time.monotonic() + 10
    while authority.queries_received < count:
        assert process.poll() is None
        assert time.monotonic() < deadline, "the queries never reached the slow server"
        time.sleep(0.005)


def test_sigterm_answers_the_queries_in_flight_then_exits_0(stack: Stack) -> None:
    port = free_port()
    # The upstream timeout outlasts the slow server's 0.5 s delay (ENV shrinks it to 0.3 s).
    env = {**ENV, "ROOTWALK_SHUTDOWN_GRACE_S": str(GRACE_S), "ROOTWALK_UPSTREAM_TIMEOUT_S": "1.5"}
    process = serve_on_lab(port, env)
    try:
        before = stack.lab_server.authority(SLOW_SERVER).queries_received
        with ThreadPoolExecutor(2) as pool:
            over_udp = pool.submit(
                dns.query.udp,
                dns.message.make_query("www.slow.lab.", "A"), "127.0.0.1", timeout=5, port=port,
            )  # fmt: skip
            over_tcp = pool.submit(
                dns.query.tcp,
                dns.message.make_query("www.slow.lab.", "AAAA"), "127.0.0.1", timeout=5, port=port,
            )  # fmt: skip
            _wait_for_queries(stack, before + 2, process)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            udp_reply, tcp_reply = over_udp.result(10), over_tcp.result(10)
        assert process.wait(GRACE_S + MARGIN_S) == 0
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert udp_reply.rcode() == dns.rcode.NOERROR
    assert udp_reply.answer[0][0].to_text() == "192.0.2.42"
    assert tcp_reply.rcode() == dns.rcode.NOERROR  # NODATA or an address: answered either way
    assert took < GRACE_S + MARGIN_S
    assert "waiting up to 2 s for 2 queries in flight" in process.output()


def test_sigterm_with_nothing_in_flight_exits_at_once(stack: Stack) -> None:
    port = free_port()
    process = serve_on_lab(port, {**ENV, "ROOTWALK_SHUTDOWN_GRACE_S": "30"})
    try:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0  # not the 30 s grace: nothing was left to answer
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
