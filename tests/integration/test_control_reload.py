"""Operating a running ``rootwalk serve``: SIGHUP reload (good and bad configs, caches kept)
and the ``rootwalk cache`` control commands, against the session's lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.helpers import run_rootwalk
from tests.integration.conftest import LAB_PORT
from tests.integration.stack import Stack
from tests.ports import free_port
from tests.process import RELOADED, RootwalkProcess

PORT = free_port()
CONTROL_PORT = free_port()
REPO = Path(__file__).parents[2]
ENV = {**os.environ, "ROOTWALK_METRICS": "off", "PYTHONUNBUFFERED": "1"}

CONFIG = f"""
listen = ["127.0.0.1:{PORT}"]
root_hints = "{REPO}/zones/lab/root.hints"
trust_anchors = ["{REPO}/zones/lab/trust-anchor.ds"]
outbound_allow = ["127.0.0.0/8"]
outbound_port = {LAB_PORT}
control = "127.0.0.1:{CONTROL_PORT}"
upstream_timeout_s = 0.3
"""


def ask(qname: str = "www.example.lab.") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=PORT, timeout=3)


def rootwalk(*args: str) -> subprocess.CompletedProcess[str]:
    return run_rootwalk(*args, env=ENV)


@pytest.fixture
def served(stack: Stack, tmp_path: Path) -> Iterator[tuple[RootwalkProcess, Path]]:
    config = tmp_path / "rootwalk.toml"
    config.write_text(CONFIG)
    process = RootwalkProcess("serve", "--config", str(config), env=ENV)
    try:
        process.wait_listening(f"127.0.0.1:{PORT}")
        process.wait_for(f"control endpoint on 127.0.0.1:{CONTROL_PORT}")
        yield process, config
    finally:
        process.stop()


def test_sighup_applies_a_good_config_and_keeps_the_cache(
    served: tuple[RootwalkProcess, Path], stack: Stack
) -> None:
    process, config = served
    example = [stack.lab_server.authority(a) for a in ("127.53.3.1", "127.53.3.2")]
    assert ask().answer[0][0].to_text() == "192.0.2.10"
    asked = sum(a.queries_received for a in example)
    config.write_text(CONFIG + 'allow_clients = ["127.0.0.0/8 refuse"]\n')
    process.send_signal(signal.SIGHUP)
    process.wait_for(RELOADED)
    assert ask().rcode() == dns.rcode.REFUSED
    config.write_text(CONFIG)
    process.send_signal(signal.SIGHUP)
    process.wait_for(RELOADED, count=2)
    assert ask().rcode() == dns.rcode.NOERROR
    assert sum(a.queries_received for a in example) == asked  # answered from the kept cache


def test_sighup_with_a_bad_config_keeps_the_old_one(
    served: tuple[RootwalkProcess, Path],
) -> None:
    process, config = served
    config.write_text(CONFIG + 'max_tcp_connections = "lots"\n')
    process.send_signal(signal.SIGHUP)
    process.wait_for("reload failed, keeping the running configuration")
    assert ask().rcode() == dns.rcode.NOERROR
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    log = process.output()
    assert f"{config}: line 9: key 'max_tcp_connections'" in log


def test_cache_flush_and_stats_commands(served: tuple[RootwalkProcess, Path], stack: Stack) -> None:
    ask()
    ask("alias.example.lab.")
    stats = rootwalk("cache", "stats", "--control", f"127.0.0.1:{CONTROL_PORT}")
    assert stats.returncode == 0, stats.stderr
    numbers = json.loads(stats.stdout)
    assert numbers["answer"]["entries"] >= 2
    assert numbers["rrset"]["entries"] > 0
    one = rootwalk("cache", "flush", "www.example.lab", "--control", f"127.0.0.1:{CONTROL_PORT}")
    assert one.returncode == 0
    assert one.stdout.startswith("flushed ")
    assert int(one.stdout.split()[1]) >= 2  # the answer and its A RRset
    example = [stack.lab_server.authority(a) for a in ("127.53.3.1", "127.53.3.2")]
    asked = sum(a.queries_received for a in example)
    assert ask().answer[0][0].to_text() == "192.0.2.10"
    assert sum(a.queries_received for a in example) == asked + 1  # asked again after the flush
    subtree = rootwalk(
        "cache", "flush", "example.lab.", "--subtree", "--control", f"127.0.0.1:{CONTROL_PORT}"
    )
    assert subtree.returncode == 0
    everything = rootwalk("cache", "flush", "--control", f"127.0.0.1:{CONTROL_PORT}")
    assert everything.returncode == 0
    after = json.loads(rootwalk("cache", "stats", "--control", f"127.0.0.1:{CONTROL_PORT}").stdout)
    assert after["answer"]["entries"] == 0
    assert after["rrset"]["entries"] == 0
    bad = rootwalk("cache", "flush", "a..b", "--control", f"127.0.0.1:{CONTROL_PORT}")
    assert bad.returncode == 2
    assert "not a domain name" in bad.stderr


def test_control_endpoint_must_be_loopback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('control = "192.0.2.1:9154"\n')
    result = rootwalk("check-config", "--config", str(config))
    assert result.returncode == 2
    assert "key 'control': the control endpoint must be on loopback" in result.stderr
