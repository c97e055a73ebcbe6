"""Operating a running ``rootwalk serve``: SIGHUP reload (good and bad configs, caches kept)
and the ``rootwalk cache`` control commands, against the session's lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
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


def ask_dnssec(qname: str) -> dns.message.Message:
    """``qname`` A with DO and AD set (AD asks for the AD bit, RFC 6840 §5.7)."""
    query = dns.message.make_query(qname, "A", want_dnssec=True)
    query.flags |= dns.flags.AD
    return dns.query.udp(query, "127.0.0.1", port=PORT, timeout=3)


def reload(process: RootwalkProcess, config: Path, text: str, count: int) -> None:
    config.write_text(text)
    process.send_signal(signal.SIGHUP)
    process.wait_for("configuration reloaded", count=count)


def test_sighup_adds_and_removes_a_negative_trust_anchor(
    served: tuple[RootwalkProcess, Path],
) -> None:
    """An NTA added on reload turns a bogus zone's SERVFAIL into its (unvalidated) answer at
    once, though the bogus verdict is still kept (val_bogus_ttl_s); removed, SERVFAIL is
    back, though the answer was cached (RFC 7646 §2: the NTA's answers are not validated)."""
    process, config = served
    assert ask_dnssec("www.badsig.lab.").rcode() == dns.rcode.SERVFAIL
    reload(process, config, CONFIG + 'negative_trust_anchors = ["badsig.lab."]\n', 1)
    stats = json.loads(rootwalk("cache", "stats", "--control", f"127.0.0.1:{CONTROL_PORT}").stdout)
    assert stats["answer"]["entries"] == stats["rrset"]["entries"] == 0  # judged: flushed
    assert stats["servers"]["entries"] > 0  # facts about servers: kept
    answered = ask_dnssec("www.badsig.lab.")
    assert answered.rcode() == dns.rcode.NOERROR
    assert answered.answer[0][0].to_text() == "192.0.2.121"
    assert not answered.flags & dns.flags.AD
    assert ask_dnssec("www.secure.lab.").flags & dns.flags.AD  # the rest still validated
    reload(process, config, CONFIG, 2)
    assert ask_dnssec("www.badsig.lab.").rcode() == dns.rcode.SERVFAIL
    assert "caches flushed" in process.output()


def test_sighup_turning_dnssec_off_serves_no_cached_ad(
    served: tuple[RootwalkProcess, Path],
) -> None:
    """An answer validated before ``dnssec = false`` is not served with AD after it, nor
    is a bogus zone still SERVFAIL; turned on again, AD is back."""
    process, config = served
    assert ask_dnssec("www.secure.lab.").flags & dns.flags.AD
    assert ask_dnssec("www.badsig.lab.").rcode() == dns.rcode.SERVFAIL
    reload(process, config, CONFIG + "dnssec = false\n", 1)
    for _ in range(2):  # resolved, then from the answer cache
        plain = ask_dnssec("www.secure.lab.")
        assert plain.rcode() == dns.rcode.NOERROR
        assert not plain.flags & dns.flags.AD
        # as Unbound's iterator: a DO client still gets the RRSIGs, and a denial's NSECs
        assert {rrset.rdtype for rrset in plain.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}
        denial = ask_dnssec("nx.secure.lab.")
        assert denial.rcode() == dns.rcode.NXDOMAIN and not denial.flags & dns.flags.AD
        assert dns.rdatatype.NSEC in {rrset.rdtype for rrset in denial.authority}
    assert len(ask("www.secure.lab.").answer) == 1  # no DO: no RRSIG
    assert ask_dnssec("www.badsig.lab.").answer[0][0].to_text() == "192.0.2.121"
    reload(process, config, CONFIG, 2)
    assert ask_dnssec("www.secure.lab.").flags & dns.flags.AD


def test_sighup_with_a_bad_trust_anchor_file_keeps_the_old_settings(
    served: tuple[RootwalkProcess, Path], tmp_path: Path
) -> None:
    process, config = served
    assert ask_dnssec("www.secure.lab.").flags & dns.flags.AD
    anchors = tmp_path / "anchors.ds"
    anchors.write_text("; the lab's anchor, mistyped\nlab. IN DS 1 8 2 zz\n")
    bad = CONFIG.replace(f"{REPO}/zones/lab/trust-anchor.ds", str(anchors))
    bad += 'negative_trust_anchors = ["badsig.lab."]\n'
    config.write_text(bad)
    process.send_signal(signal.SIGHUP)
    process.wait_for("reload failed, keeping the running configuration")
    assert f"key 'trust_anchors': {anchors}: line 2: " in process.output()
    assert ask_dnssec("www.secure.lab.").flags & dns.flags.AD  # cache and anchors kept
    assert ask_dnssec("www.badsig.lab.").rcode() == dns.rcode.SERVFAIL  # nor the NTA taken
    assert "configuration reloaded" not in process.output()
