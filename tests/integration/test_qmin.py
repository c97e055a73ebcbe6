"""QNAME minimisation (RFC 9156) over real sockets: what the lab's servers were asked, with
minimisation on (the session's resolver, the default) and off (``rootwalk serve`` with
ROOTWALK_QNAME_MINIMISATION=false), the fallbacks for broken servers, and SIGHUP."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.integration.conftest import LAB_PORT, RESOLVER_PORT
from tests.integration.stack import Stack
from tests.ports import free_port
from tests.process import RELOADED, RootwalkProcess

PORT = free_port()
REPO = Path(__file__).parents[2]
CONFIG = f"""
listen = ["127.0.0.1:{PORT}"]
root_hints = "{REPO}/zones/lab/root.hints"
trust_anchors = ["{REPO}/zones/lab/trust-anchor.ds"]
outbound_allow = ["127.0.0.0/8"]
outbound_port = {LAB_PORT}
control = "off"
metrics = "off"
upstream_timeout_s = 0.3
"""
ROOT_AND_TLD = ("127.53.0.1", "127.53.0.2", "127.53.1.1", "127.53.1.2")
DEEP = "a.b.c.d.e.f.g.h.qmin.lab."

# (qname, qtype, rcode, answer, what its zone's servers are asked with minimisation on)
CASES = [
    (DEEP, "A", "NOERROR", ["192.0.2.85"], {
        "127.53.22.1": ["h.qmin.lab. A", "g.h.qmin.lab. A", "f.g.h.qmin.lab. A"],
        "127.53.22.2": [
            "e.f.g.h.qmin.lab. A", "d.e.f.g.h.qmin.lab. A", "c.d.e.f.g.h.qmin.lab. A",
            "b.c.d.e.f.g.h.qmin.lab. A", f"{DEEP} A",
        ],
    }),
    ("www.a.b.entnx.lab.", "A", "NOERROR", ["192.0.2.81"],
     {"127.53.22.3": ["b.entnx.lab. A", "www.a.b.entnx.lab. A"]}),
    ("www.a.b.refuse.lab.", "A", "NOERROR", ["192.0.2.82"],
     {"127.53.22.4": ["b.refuse.lab. A", "www.a.b.refuse.lab. A"]}),
    ("www.a.b.dropmin.lab.", "A", "NOERROR", ["192.0.2.83"],
     {"127.53.22.5": ["b.dropmin.lab. A", "www.a.b.dropmin.lab. A"]}),
    ("x.alias.qmin.lab.", "A", "NXDOMAIN", [],
     {"127.53.22.1": ["alias.qmin.lab. A", "x.alias.qmin.lab. A"]}),
    ("x.y.nothing.qmin.lab.", "A", "NXDOMAIN", [],
     {"127.53.22.1": ["nothing.qmin.lab. A", "x.y.nothing.qmin.lab. A"]}),
    ("_25._tcp.mail.qmin.lab.", "TXT", "NOERROR", ['"v=underscore"'],
     {"127.53.22.1": ["mail.qmin.lab. A", "_25._tcp.mail.qmin.lab. TXT"]}),
]  # fmt: skip
IDS = [case[0] for case in CASES]


def ask(qname: str, qtype: str, port: int) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    return dns.query.udp(query, "127.0.0.1", timeout=5, port=port)


def values(reply: dns.message.Message, qtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(qtype)
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset)


def fresh(stack: Stack) -> None:
    """Forget what the session's resolver cached, and what the lab's servers were asked."""

    async def flush() -> int:
        return stack.service.flush()

    stack.run(flush())
    for authority in stack.lab_server.authorities:
        authority.questions.clear()


def seen(stack: Stack, *addresses: str) -> list[str]:
    """The questions these servers were asked, without the validator's DNSKEY and DS
    fetches (zone names, never minimised: they are not the walk to the name)."""
    return [
        f"{name} {qtype}"
        for address in addresses
        for name, qtype in stack.lab_server.authority(address).questions
        if qtype not in ("DNSKEY", "DS")
    ]


def answered_as_expected(
    stack: Stack, port: int, qname: str, qtype: str, rcode: str, answer: list[str]
) -> dns.message.Message:
    """Ask the resolver on ``port`` with the lab's question log cleared; check the reply."""
    fresh(stack)
    reply = ask(qname, qtype, port)
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert values(reply, qtype) == answer
    return reply


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answer", "asked"), CASES, ids=IDS)
def test_minimised_questions_and_fallbacks(
    stack: Stack,
    qname: str,
    qtype: str,
    rcode: str,
    answer: list[str],
    asked: dict[str, list[str]],
) -> None:
    reply = answered_as_expected(stack, RESOLVER_PORT, qname, qtype, rcode, answer)
    assert reply.answer == [] or all(r.name.to_text() == qname for r in reply.answer)
    tld = qname.split(".")[-3] + ".lab. A"
    assert sorted(seen(stack, *ROOT_AND_TLD)) == sorted(["lab. A", tld])  # one label each
    for address, questions in asked.items():
        assert seen(stack, address) == questions


@pytest.fixture(scope="module")
def unminimised(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``rootwalk serve`` with ROOTWALK_QNAME_MINIMISATION=false, against the session's lab."""
    config = tmp_path_factory.mktemp("qmin") / "rootwalk.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "ROOTWALK_QNAME_MINIMISATION": "false"}
    process = RootwalkProcess("serve", "--config", str(config), env=env)
    try:
        process.wait_listening(f"127.0.0.1:{PORT}")
        yield
    finally:
        process.stop()


@pytest.mark.parametrize(("qname", "qtype", "rcode", "answer", "asked"), CASES, ids=IDS)
def test_without_minimisation_every_server_is_asked_the_full_name(
    stack: Stack,
    unminimised: None,
    qname: str,
    qtype: str,
    rcode: str,
    answer: list[str],
    asked: dict[str, list[str]],
) -> None:
    answered_as_expected(stack, PORT, qname, qtype, rcode, answer)
    full = f"{qname} {qtype}"
    assert set(seen(stack, *ROOT_AND_TLD, *asked)) == {full}


def test_sighup_turns_minimisation_on(stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "rootwalk.toml"
    port = free_port()
    config.write_text(CONFIG.replace(str(PORT), str(port)) + "qname_minimisation = false\n")
    process = RootwalkProcess("serve", "--config", str(config), env=dict(os.environ))
    try:
        process.wait_listening(f"127.0.0.1:{port}")
        fresh(stack)
        assert values(ask("www.a.b.entnx.lab.", "A", port), "A") == ["192.0.2.81"]
        assert seen(stack, "127.53.22.3") == ["www.a.b.entnx.lab. A"]
        config.write_text(config.read_text().replace("= false", "= true"))
        process.send_signal(signal.SIGHUP)
        process.wait_for(RELOADED)
        ask("www.n1.refuse.lab.", "A", port)  # a new name: asked minimised now
        assert "n1.refuse.lab. A" in seen(stack, "127.53.22.4")
    finally:
        process.stop()
