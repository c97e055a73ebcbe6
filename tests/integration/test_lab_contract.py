"""Every row of the lab contract, over UDP and TCP, with dnspython and dig, real sockets."""

from __future__ import annotations

import shutil
import subprocess

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.model import Transport
from tests.integration.conftest import RESOLVER_PORT
from tests.integration.stack import Stack

SERVER = "127.0.0.1"

# (qname, qtype, rcode, the final records of the answer as text, CNAMEs in the answer)
CONTRACT = [
    ("www.example.lab.", "A", "NOERROR", ["192.0.2.10"], 0),
    ("www.example.lab.", "AAAA", "NOERROR", ["2001:db8::10"], 0),
    ("alias.example.lab.", "A", "NOERROR", ["192.0.2.20"], 1),
    ("chain.example.lab.", "A", "NOERROR", ["192.0.2.60"], 3),
    ("nx.example.lab.", "A", "NXDOMAIN", [], 0),
    ("www.example.lab.", "MX", "NOERROR", [], 0),
    ("www.glueless.lab.", "A", "NOERROR", ["192.0.2.30"], 0),
    ("anything.wild.example.lab.", "A", "NOERROR", ["192.0.2.50"], 0),
    ("www.deadns.lab.", "A", "NOERROR", ["192.0.2.40"], 0),
    ("www.lame.lab.", "A", "SERVFAIL", [], 0),
    ("loop.example.lab.", "A", "SERVFAIL", [], 0),
    ("www.v6glue.lab.", "A", "NOERROR", ["192.0.2.83"], 0),
    ("www.v6only.lab.", "A", "NOERROR", ["192.0.2.84"], 0),
    ("www.cyca.lab.", "A", "SERVFAIL", [], 0),
    ("www.fca.lab.", "A", "NOERROR", ["192.0.2.81"], 0),
    ("ns1.fca.lab.", "A", "NOERROR", ["127.53.23.2"], 0),
    ("www.cnns.lab.", "A", "NOERROR", ["192.0.2.85"], 0),
    ("www.nxns.lab.", "A", "NOERROR", ["192.0.2.86"], 0),
    ("www.allnx.lab.", "A", "SERVFAIL", [], 0),
    ("www.inz.lab.", "A", "SERVFAIL", [], 0),
    ("ns1.pc.lab.", "A", "NOERROR", ["127.53.24.1", "127.53.24.3"], 0),
    ("ns2.pc.lab.", "A", "NXDOMAIN", [], 0),
    ("pc.lab.", "NS", "NOERROR", ["ns1.pc.lab.", "ns3.pc.lab."], 0),
    ("pc.lab.", "DS", "NOERROR", [], 0),
    ("www2.fb.lab.", "A", "NOERROR", ["192.0.2.73"], 0),
    ("www.moved.dname.lab.", "A", "NOERROR", ["192.0.2.82"], 1),
    ("moved.dname.lab.", "A", "NOERROR", ["192.0.2.81"], 0),
    ("a.b.moved.dname.lab.", "A", "NOERROR", ["192.0.2.83"], 1),
    ("nx.moved.dname.lab.", "A", "NXDOMAIN", [], 1),
    (f"{'x' * 63}.long.dname.lab.", "A", "YXDOMAIN", [], 0),
    ("www.here.dname.lab.", "A", "NOERROR", ["192.0.2.84"], 1),
    ("anything.wild.dname.lab.", "A", "NOERROR", ["192.0.2.85"], 1),
    ("www.moved.liar.lab.", "A", "NOERROR", ["192.0.2.82"], 1),
    ("www.moved.rfc2672.lab.", "A", "NOERROR", ["192.0.2.82"], 1),
    ("www.perslow.lab.", "A", "NOERROR", ["192.0.2.80"], 0),
    ("slow1.perslow.lab.", "A", "NOERROR", ["192.0.2.85"], 0),
    ("slow2.perslow.lab.", "A", "NOERROR", ["192.0.2.86"], 0),
    ("www.localns.lab.", "A", "SERVFAIL", [], 0),
    ("a.b.c.d.e.f.g.h.qmin.lab.", "A", "NOERROR", ["192.0.2.85"], 0),
    ("x.alias.qmin.lab.", "A", "NXDOMAIN", [], 0),
    ("_25._tcp.mail.qmin.lab.", "TXT", "NOERROR", ['"v=underscore"'], 0),
    ("www.a.b.entnx.lab.", "A", "NOERROR", ["192.0.2.81"], 0),
    ("www.a.b.refuse.lab.", "A", "NOERROR", ["192.0.2.82"], 0),
    ("www.a.b.dropmin.lab.", "A", "NOERROR", ["192.0.2.83"], 0),
    # The signed lab (issue 12): rows whose answer stays the same once the resolver validates.
    ("www.secure.lab.", "A", "NOERROR", ["192.0.2.100"], 0),
    ("anything.wild.secure.lab.", "A", "NOERROR", ["192.0.2.99"], 0),
    ("nx.secure.lab.", "A", "NXDOMAIN", [], 0),
    ("www.secure.lab.", "MX", "NOERROR", [], 0),
    ("www.nsec3.lab.", "A", "NOERROR", ["192.0.2.101"], 0),
    ("nx.nsec3.lab.", "A", "NXDOMAIN", [], 0),
    ("www.insecure.optout.lab.", "A", "NOERROR", ["192.0.2.103"], 0),
    ("www.alg8.lab.", "A", "NOERROR", ["192.0.2.108"], 0),
    ("www.alg16.lab.", "A", "NOERROR", ["192.0.2.116"], 0),
    ("www.unsupported.lab.", "A", "NOERROR", ["192.0.2.127"], 0),
    ("www.nsec3iter.lab.", "A", "NOERROR", ["192.0.2.128"], 0),
]


def ask(
    qname: str, qtype: str, transport: Transport, port: int = RESOLVER_PORT
) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    if transport is Transport.TCP:
        return dns.query.tcp(query, SERVER, timeout=5, port=port)
    return dns.query.udp(query, SERVER, timeout=5, port=port)


def final_values(reply: dns.message.Message, qtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(qtype)
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == wanted for r in rrset)


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP], ids=["udp", "tcp"])
@pytest.mark.parametrize(("qname", "qtype", "rcode", "values", "cnames"), CONTRACT)
def test_contract_row(
    stack: Stack,
    transport: Transport,
    qname: str,
    qtype: str,
    rcode: str,
    values: list[str],
    cnames: int,
) -> None:
    reply = ask(qname, qtype, transport)
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert final_values(reply, qtype) == values
    assert sum(1 for r in reply.answer if r.rdtype == dns.rdatatype.CNAME) == cnames
    assert reply.flags & dns.flags.RA
    if rcode in ("NXDOMAIN",) or (rcode == "NOERROR" and not values):
        assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]


def test_big_answer_is_fetched_over_tcp_upstream_and_truncated_for_small_udp_clients(
    stack: Stack,
) -> None:
    example = [stack.lab_server.authority(a) for a in ("127.53.3.1", "127.53.3.2")]
    tcp_before = sum(a.queries_by_transport[Transport.TCP] for a in example)
    udp = ask("big.example.lab.", "TXT", Transport.UDP)
    assert udp.flags & dns.flags.TC
    assert sum(a.queries_by_transport[Transport.TCP] for a in example) > tcp_before
    tcp = ask("big.example.lab.", "TXT", Transport.TCP)
    assert tcp.rcode() == dns.rcode.NOERROR
    assert len(tcp.answer[0]) == 16
    assert not tcp.flags & dns.flags.TC
    reply, used_tcp = dns.query.udp_with_fallback(
        dns.message.make_query("big.example.lab.", "TXT"), SERVER, timeout=5, port=RESOLVER_PORT
    )
    assert used_tcp
    assert len(reply.answer[0]) == 16
    large = dns.query.udp(
        dns.message.make_query("big.example.lab.", "TXT", use_edns=0, payload=4096),
        SERVER,
        timeout=5,
        port=RESOLVER_PORT,
    )
    assert not large.flags & dns.flags.TC
    assert len(large.answer[0]) == 16


def test_lame_zone_fails_without_waiting_on_a_timeout(stack: Stack) -> None:
    upstream = stack.service.upstream
    assert upstream is not None
    stack.service.flush()
    timeouts = upstream.counters.timeouts
    lame = [stack.lab_server.authority(a) for a in ("127.53.8.1", "127.53.8.2")]
    asked = sum(a.queries_received for a in lame)
    reply = ask("www.lame.lab.", "A", Transport.UDP)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert upstream.counters.timeouts == timeouts
    (ede,) = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.text == "all servers for lame.lab. answered REFUSED"
    assert sum(a.queries_received for a in lame) == asked + 2
    # RFC 9520: the failure is remembered, so a retry does not hammer the broken zone.
    again = ask("www.lame.lab.", "A", Transport.UDP)
    assert again.rcode() == dns.rcode.SERVFAIL
    assert sum(a.queries_received for a in lame) == asked + 2
    (ede,) = [o for o in again.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.text == "all servers for lame.lab. answered REFUSED (cached failure)"


def test_loop_says_where(stack: Stack) -> None:
    reply = ask("loop.example.lab.", "A", Transport.UDP)
    (ede,) = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    assert ede.text == "CNAME loop at loop.example.lab."


def test_the_dead_server_was_really_asked(stack: Stack) -> None:
    dead = stack.lab_server.authority("127.53.7.1")
    alive = stack.lab_server.authority("127.53.7.2")
    before = dead.queries_received
    for _ in range(16):
        stack.service.flush()
        assert final_values(ask("www.deadns.lab.", "A", Transport.UDP), "A") == ["192.0.2.40"]
    assert alive.queries_received >= 16
    assert dead.queries_received > before  # random selection picks it sometimes (seeded lab)


def test_question_letter_case_is_kept(stack: Stack) -> None:
    reply = ask("WwW.ExAmple.LAB.", "A", Transport.UDP)
    assert reply.question[0].name.to_text() == "WwW.ExAmple.LAB."
    assert final_values(reply, "A") == ["192.0.2.10"]


def test_localhost_is_answered_locally(stack: Stack) -> None:
    before = stack.lab_server.total_queries()
    reply = ask("localhost.", "A", Transport.UDP)
    assert final_values(reply, "A") == ["127.0.0.1"]
    assert stack.lab_server.total_queries() == before


def test_ipv6_listener(stack: Stack) -> None:
    query = dns.message.make_query("www.example.lab.", "A")
    reply = dns.query.udp(query, "::1", timeout=5, port=RESOLVER_PORT)
    assert final_values(reply, "A") == ["192.0.2.10"]


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_dig_gets_every_row(stack: Stack, tcp: bool) -> None:
    for qname, qtype, rcode, values, _ in CONTRACT:
        args = ["dig", f"@{SERVER}", "-p", str(RESOLVER_PORT), qname, qtype, "+tries=1", "+time=5"]
        out = subprocess.run(
            [*args, *(["+tcp"] if tcp else [])],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
        assert f"status: {rcode}" in out, out
        for value in values:
            assert value in out
    big = subprocess.run(
        ["dig", f"@{SERVER}", "-p", str(RESOLVER_PORT), "big.example.lab.", "TXT", "+short"],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    assert big.count("big-") == 16
