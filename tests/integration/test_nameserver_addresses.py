"""Name server addresses over real sockets (issue 10, item 6): a zone served only over IPv6
(the lab's server on ::1), dependency cycles, and NS targets that are CNAMEs, missing or
inside their zone without glue."""

from __future__ import annotations

import shutil
import subprocess
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.integration.conftest import RESOLVER_PORT
from tests.integration.stack import Stack

SERVER = "127.0.0.1"


def ask(qname: str, qtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    return dns.query.udp(query, SERVER, timeout=5, port=RESOLVER_PORT)


def values(reply: dns.message.Message, qtype: str = "A") -> list[str]:
    wanted = dns.rdatatype.from_text(qtype)
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset)


def ede_text(reply: dns.message.Message) -> str:
    (ede,) = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.code == dns.edns.EDECode.NO_REACHABLE_AUTHORITY
    return ede.text or ""


def test_a_zone_served_only_over_ipv6_resolves(stack: Stack) -> None:
    assert values(ask("www.v6glue.lab.")) == ["192.0.2.83"]  # AAAA glue
    assert values(ask("www.v6only.lab.")) == ["192.0.2.84"]  # glueless, AAAA only
    v6 = stack.lab_server.authority("::1")
    before = v6.queries_received  # names no other test asks: each is one query to ::1
    assert ask("nx.v6glue.lab.").rcode() == dns.rcode.NXDOMAIN
    assert ask("nx.v6only.lab.").rcode() == dns.rcode.NXDOMAIN
    assert v6.queries_received == before + 2


def test_a_true_cycle_fails_quickly_and_says_so(stack: Stack) -> None:
    started = time.monotonic()
    reply = ask("www.cyca.lab.")
    assert time.monotonic() - started < 1.0  # no timeout: nothing was sent to a server
    assert reply.rcode() == dns.rcode.SERVFAIL
    text = "dependency cycle through ns1.cycb.lab.: no other server of cyca.lab. is reachable"
    assert ede_text(reply) == text
    assert ede_text(ask("www.cyca.lab.")) == text  # again, not "(cached failure)"


def test_a_cycle_with_a_way_out_answers(stack: Stack) -> None:
    assert values(ask("www.fca.lab.")) == ["192.0.2.81"]
    assert values(ask("ns1.fca.lab.")) == ["127.53.23.2"]
    assert values(ask("www.fcb.lab.")) == ["192.0.2.82"]


def test_ns_targets_that_are_cnames_or_missing(stack: Stack) -> None:
    assert values(ask("www.cnns.lab.")) == ["192.0.2.85"]
    assert values(ask("www.nxns.lab.")) == ["192.0.2.86"]
    reply = ask("www.allnx.lab.")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert ede_text(reply).startswith(  # a cached failure, when the contract asked it first
        "all name servers of allnx.lab. are missing (NXDOMAIN): "
        "missing1.nsh.lab., missing2.nsh.lab."
    )


def test_a_server_inside_its_zone_without_glue_is_a_cycle(stack: Stack) -> None:
    reply = ask("www.inz.lab.")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert ede_text(reply) == (
        "dependency cycle: the name servers of inz.lab. (ns1.inz.lab.) are inside it "
        "and have no glue"
    )


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")
def test_dig_over_ipv6_to_the_resolver_reaches_the_ipv6_only_zone(stack: Stack) -> None:
    out = subprocess.run(
        ["dig", "@::1", "-p", str(RESOLVER_PORT), "+short", "+tries=1", "+time=5",
         "www.v6only.lab.", "A"],
        capture_output=True, text=True, timeout=15, check=True,
    ).stdout  # fmt: skip
    assert out.split() == ["192.0.2.84"]
