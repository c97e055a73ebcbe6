"""The command line as a person runs it: ``rootwalk lab``, ``query``, ``serve``, bad configs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests.helpers import run_rootwalk
from tests.integration.conftest import LAB_PORT, RESOLVER_PORT
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port
from tests.process import LAB_READY, RELOADED, RootwalkProcess

CLI_LAB_PORT = lab_port()
CLI_PORT = free_port()
ENV = {
    **os.environ,
    "ROOTWALK_UPSTREAM_TIMEOUT_S": "0.3",
    "ROOTWALK_METRICS": "off",
    "ROOTWALK_CONTROL": "off",
    "PYTHONUNBUFFERED": "1",
}


def rootwalk(*args: str) -> subprocess.CompletedProcess[str]:
    return run_rootwalk(*args, env=ENV)


def serve_on_lab(port: int, env: dict[str, str]) -> RootwalkProcess:
    """``rootwalk serve`` as the README shows it, pointed at the session lab, with metrics
    and control ports of its own; returned once it listens (its log says so)."""
    return RootwalkProcess(
        "serve", "--listen", f"127.0.0.1:{port}", "--root-hints", "zones/lab/root.hints",
        "--trust-anchors", "zones/lab/trust-anchor.ds",
        "--outbound-allow", "127.0.0.0/8", "--outbound-port", str(LAB_PORT),
        "--metrics", f"127.0.0.1:{free_port()}", "--control", f"127.0.0.1:{free_port()}",
        env=env,
    ).wait_listening(f"127.0.0.1:{port}")  # fmt: skip


@pytest.fixture(scope="module")
def lab_process() -> Iterator[RootwalkProcess]:
    process = RootwalkProcess(
        "lab", "--listen", f"127.0.0.1:{CLI_PORT}", "--lab-port", str(CLI_LAB_PORT), env=ENV
    )
    try:
        process.wait_for(LAB_READY, stream="stdout")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def test_lab_command_answers_and_stops_cleanly_on_sigterm(
    lab_process: RootwalkProcess,
) -> None:
    reply = dns.query.udp(
        dns.message.make_query("www.glueless.lab.", "A"), "127.0.0.1", port=CLI_PORT, timeout=5
    )
    assert reply.answer[0][0].to_text() == "192.0.2.30"
    v6only = dns.query.udp(
        dns.message.make_query("www.v6only.lab.", "A"), "127.0.0.1", port=CLI_PORT, timeout=5
    )  # its only server is the lab's IPv6 one: `rootwalk lab` may send to ::1
    assert [r.to_text() for r in v6only.answer[0]] == ["192.0.2.84"]
    if shutil.which("dig"):
        out = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(CLI_PORT), "chain.example.lab", "+short"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        assert out.strip().splitlines()[-1] == "192.0.2.60"
    lab_process.send_signal(signal.SIGTERM)
    assert lab_process.wait(10) == 0
    banner = lab_process.output("stdout")
    assert f"dig @127.0.0.1 -p {CLI_PORT} www.example.lab A" in banner


def test_query_applies_the_search_list(stack: Stack) -> None:
    result = rootwalk(
        "query",
        "www",
        "--server",
        f"127.0.0.1:{RESOLVER_PORT}",
        "--search",
        "example.lab",
        "--ndots",
        "1",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(";; trying www.example.lab. A: NOERROR")
    assert "192.0.2.10" in result.stdout


def test_query_tries_every_candidate_then_gives_up(stack: Stack) -> None:
    result = rootwalk(
        "query",
        "nx",
        "AAAA",
        "--server",
        f"127.0.0.1:{RESOLVER_PORT}",
        "--search",
        "example.lab",
        "--search",
        "other.example.",
        "--tcp",
    )
    assert result.returncode == 1
    tried = [line.split()[2] for line in result.stdout.splitlines() if line.startswith(";; trying")]
    assert tried == ["nx.example.lab.", "nx.other.example.", "nx."]


def test_query_with_enough_dots_tries_as_is_first(stack: Stack) -> None:
    result = rootwalk(
        "query",
        "www.example.lab",
        "--server",
        f"127.0.0.1:{RESOLVER_PORT}",
        "--search",
        "other.example",
    )
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].startswith(";; trying www.example.lab. A: NOERROR")


def test_bad_config_file_exits_2_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('outbound_port = 10053\nmax_tcp_connections = "many"\n')
    result = rootwalk("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: line 2: key 'max_tcp_connections'" in result.stderr


def test_bad_flag_exits_2() -> None:
    result = rootwalk("serve", "--listen", "localhost:53")
    assert result.returncode == 2
    assert "--listen" in result.stderr


def test_check_config_prints_the_layered_settings(tmp_path: Path) -> None:
    config = tmp_path / "good.toml"
    config.write_text('outbound_port = 10053\nlisten = ["127.0.0.1:5353"]\n')
    result = rootwalk("check-config", "--config", str(config), "--listen", "[::1]:5354")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert 'listen = ["[::1]:5354"]  # flag --listen' in lines
    assert f"outbound_port = 10053  # {config}:1" in lines
    assert 'metrics = "off"  # environment ROOTWALK_METRICS' in lines
    assert "Endpoint(" not in result.stdout
    assert "IPv4Network(" not in result.stdout


def test_check_config_survives_a_closed_pipe() -> None:
    """Issue 14, item 7: ``rootwalk check-config | head -1``: status 0, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "resolver", "check-config"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything is written
    assert process.wait(30) == 0
    assert process.stderr.read() == ""
    if shutil.which("head"):
        piped = subprocess.run(
            f"{sys.executable} -m resolver check-config | head -1; echo ${{PIPESTATUS[0]}}",
            shell=True, executable="/bin/bash", capture_output=True, text=True, env=ENV,
            cwd=Path(__file__).parents[2], check=False,
        )  # fmt: skip
        assert piped.stdout.splitlines()[-1] == "0"
        assert "Traceback" not in piped.stderr


def test_serve_with_lab_hints_and_loopback_allow_list(stack: Stack, tmp_path: Path) -> None:
    """``serve`` as the README shows it, pointed at the session lab."""
    port = free_port()
    process = serve_on_lab(port, ENV)
    try:
        reply = dns.query.udp(
            dns.message.make_query("alias.example.lab.", "A"), "127.0.0.1", port=port, timeout=5
        )
        assert reply.answer[-1][0].to_text() == "192.0.2.20"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def trace_on_lab(name: str) -> subprocess.CompletedProcess[str]:
    hints = str(Path(__file__).parents[2] / "zones/lab/root.hints")
    return rootwalk(
        "trace",
        name,
        "--root-hints",
        hints,
        "--trust-anchors",
        str(Path(__file__).parents[2] / "zones/lab/trust-anchor.ds"),
        "--outbound-port",
        str(LAB_PORT),
        "--outbound-allow",
        "127.0.0.0/8",
    )


def test_trace_shows_a_glueless_delegation_step_by_step(stack: Stack) -> None:
    result = trace_on_lab("www.glueless.lab")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("referral to glueless.lab.: nsg.other.example. (no glue)" in line for line in lines)
    sub = [line for line in lines if line.startswith("  [") and "nsg.other.example. A" in line]
    assert sub, "no indented sub-resolution for the name server's address"
    assert any(line.strip().startswith("cached: nsg.other.example. A 127.53.6.1") for line in lines)
    assert lines[-1] == "www.glueless.lab. 300 IN A 192.0.2.30"


def test_trace_shows_the_dnssec_steps_and_the_verdict(stack: Stack) -> None:
    result = trace_on_lab("www.secure.lab")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [line for line in lines if "(DNSSEC: the zone's keys" in line]
    assert any("secure.lab. DNSKEY" in line for line in steps), lines
    # secure.lab.'s DS came signed with lab.'s referral (RFC 4035 §3.1.4): not asked again.
    assert not any("secure.lab. DS" in line for line in steps), lines
    assert ";; DNSSEC: secure" in lines
    insecure = trace_on_lab("www.example.lab")
    insecure_steps = [
        line for line in insecure.stdout.splitlines() if "(DNSSEC: the zone's keys" in line
    ]
    # An unsigned delegation's referral has no DS: the DS question fetches the no-DS proof.
    assert any("example.lab. DS" in line for line in insecure_steps), insecure.stdout
    assert ";; DNSSEC: insecure" in insecure.stdout.splitlines()
    bogus = trace_on_lab("www.expired.lab")
    assert ";; DNSSEC: bogus" in bogus.stdout.splitlines()
    assert "expired" in bogus.stdout


def test_trace_survives_a_closed_pipe(stack: Stack) -> None:
    """``rootwalk trace ... | head``: the trace's lines are written from the event loop's
    callbacks, where a closed pipe used to print asyncio's traceback; now no traceback, and
    the status is still the answer's."""
    root = Path(__file__).parents[2]
    command = (
        f"{sys.executable} -m resolver trace www.glueless.lab"
        f" --root-hints {root / 'zones/lab/root.hints'}"
        f" --trust-anchors {root / 'zones/lab/trust-anchor.ds'}"
        f" --outbound-port {LAB_PORT} --outbound-allow 127.0.0.0/8 | head -2;"
        " echo ${PIPESTATUS[0]}"
    )
    piped = subprocess.run(
        command, shell=True, executable="/bin/bash", capture_output=True, text=True, env=ENV,
        cwd=root, check=False,
    )  # fmt: skip
    assert piped.stdout.splitlines()[-1] == "0", piped.stdout + piped.stderr
    assert "Traceback" not in piped.stderr, piped.stderr
    assert "Broken pipe" not in piped.stderr, piped.stderr


def test_trace_of_a_lame_zone_says_why(stack: Stack) -> None:
    result = trace_on_lab("www.lame.lab.")
    assert result.returncode == 2
    assert ";; SERVFAIL: all servers for lame.lab. answered REFUSED" in result.stdout


def test_json_logs_and_the_query_log(stack: Stack) -> None:
    import json  # noqa: PLC0415

    port = free_port()
    env = {**ENV, "ROOTWALK_LOG_FORMAT": "json", "ROOTWALK_QUERY_LOG": "true"}
    process = serve_on_lab(port, env)
    try:
        for _ in range(2):
            dns.query.udp(
                dns.message.make_query("www.example.lab.", "A"), "127.0.0.1", port=port, timeout=5
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    entries = [json.loads(line) for line in process.output().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    queries = [
        e for e in entries if e["logger"] == "rootwalk.query" and e["qname"] == "www.example.lab."
    ]
    assert [(q["qtype"], q["rcode"], q["transport"], q["cached"]) for q in queries] == [
        ("A", "NOERROR", "udp", False),
        ("A", "NOERROR", "udp", True),
    ]


def test_lab_survives_sighup(stack: Stack) -> None:
    port = free_port()
    process = RootwalkProcess(
        "lab", "--listen", f"127.0.0.1:{port}", "--lab-port", str(lab_port()), env=ENV
    )
    try:
        process.wait_for(LAB_READY, stream="stdout")
        process.send_signal(signal.SIGHUP)
        process.wait_for(RELOADED)  # still there after the reload
        reply = dns.query.udp(
            dns.message.make_query("www.example.lab.", "A"), "127.0.0.1", port=port, timeout=5
        )
        assert reply.answer[0][0].to_text() == "192.0.2.10"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert RELOADED in process.output()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def test_a_taken_port_names_the_setting_and_the_flag() -> None:
    """Issue 14, item 4: a bind error says which setting and how to change it, exit 1."""
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_rootwalk(
            "serve", "--listen", f"127.0.0.1:{free_port()}", "--root-hints",
            "zones/lab/root.hints", "--trust-anchors", "zones/lab/trust-anchor.ds",
            "--metrics", "off", "--control", f"127.0.0.1:{port}",
            env={k: v for k, v in ENV.items() if k != "ROOTWALK_CONTROL"},
        )  # fmt: skip
    assert result.returncode == 1
    assert f"rootwalk: control = 127.0.0.1:{port}: address already in use" in result.stderr, (
        result.stderr
    )
    assert "use --control ADDR:PORT or --control off" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_53_without_privilege_says_what_to_do() -> None:
    import errno  # noqa: PLC0415

    from resolver.binding import bind_error  # noqa: PLC0415
    from resolver.config import Endpoint  # noqa: PLC0415

    denied = OSError(errno.EACCES, "Permission denied")
    text = str(bind_error("listen", Endpoint("127.0.0.1", 53), denied, can_be_off=False))
    assert "listen = 127.0.0.1:53: permission denied" in text
    assert "root or the CAP_NET_BIND_SERVICE capability" in text
    assert "use --listen ADDR:PORT with a port of 1024 or more" in text


def test_version_and_the_type_after_options(stack: Stack) -> None:
    """Issue 14, item 6: --version; `query NAME --server X AAAA`; "1 answer record"."""
    version = rootwalk("--version")
    assert version.returncode == 0 and version.stdout.startswith("rootwalk "), version
    result = rootwalk("query", "www.example.lab.", "--server", f"127.0.0.1:{RESOLVER_PORT}", "AAAA")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        ";; trying www.example.lab. AAAA: NOERROR, 1 answer record"
    )
    assert "2001:db8::10" in result.stdout


def test_trace_lab_without_a_lab_says_to_start_one() -> None:
    """Issue 14, item 5: nothing answers on the lab's port: one line saying what to do, 2."""
    nothing = lab_port()
    result = rootwalk("trace", "www.example.lab", "--lab", "--lab-port", str(nothing))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"rootwalk trace: no lab answers on port {nothing}; start it first with "
        "`rootwalk lab` (in another terminal)"
    ]


@pytest.mark.parametrize(
    ("name", "qtype", "status"),
    [
        ("www.example.lab.", "A", 0),
        ("alias.example.lab.", "A", 0),
        ("nx.example.lab.", "A", 1),
        ("www.example.lab.", "MX", 1),
        ("www.lame.lab.", "A", 2),
    ],
)
def test_trace_and_query_exit_statuses_agree(
    stack: Stack, name: str, qtype: str, status: int
) -> None:
    """Issue 14, item 5: 0 for an answer, 1 for NXDOMAIN or NODATA, 2 for SERVFAIL."""
    traced = rootwalk("trace", name, qtype, "--lab", "--lab-port", str(LAB_PORT))
    asked = rootwalk("query", name, qtype, "--server", f"127.0.0.1:{RESOLVER_PORT}")
    assert (traced.returncode, asked.returncode) == (status, status), (traced, asked)


def test_query_shows_the_servfail_reason(stack: Stack) -> None:
    """Issue 14, item 6: a SERVFAIL's Extended DNS Error (RFC 8914) is shown with it."""
    result = rootwalk("query", "www.lame.lab.", "--server", f"127.0.0.1:{RESOLVER_PORT}")
    first = result.stdout.splitlines()[0]
    assert first.startswith(";; trying www.lame.lab. A: SERVFAIL, 0 answer records (EDE 22 "), first
    assert "REFUSED" in first


def help_options(capsys: pytest.CaptureFixture[str], *command: str) -> set[str]:
    """The ``--options`` a subcommand's ``--help`` offers."""
    import re  # noqa: PLC0415

    from resolver.cli import main  # noqa: PLC0415

    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", capsys.readouterr().out))


def test_each_subcommand_offers_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14, item 6: ``trace`` neither listens nor serves clients nor has endpoints."""
    serving = {"--listen", "--allow-clients", "--metrics", "--control"}
    walking = {"--config", "--root-hints", "--trust-anchors", "--outbound-allow", "--outbound-port"}
    walking.add("--log-level")
    assert help_options(capsys, "trace") == {"--help"} | walking | {"--lab", "--lab-port"}
    assert help_options(capsys, "serve") == {"--help", "--workers"} | serving | walking
    assert help_options(capsys, "lab") == {"--help", "--lab-port"} | serving | walking
    assert help_options(capsys, "query") == {
        "--help", "--server", "--search", "--ndots", "--tcp", "--timeout"
    }  # fmt: skip
    assert help_options(capsys, "cache", "stats") == {"--help", "--control"}
    result = rootwalk("trace", "www.example.lab", "--listen", "127.0.0.1:53")
    assert result.returncode == 2
    assert "unrecognized arguments: --listen" in result.stderr
