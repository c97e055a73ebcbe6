"""DNAME over real sockets (RFC 6672): the answer carries the DNAME, the synthesised CNAME
with the DNAME's TTL and the chase; the cached answer is the same; a cached DNAME answers
other names below it without asking its zone; YXDOMAIN past 255 octets; liars ignored."""

from __future__ import annotations

import shutil
import subprocess

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.integration.conftest import RESOLVER_PORT
from tests.integration.stack import Stack

SERVER = "127.0.0.1"
DNAME_SERVER = "127.53.21.1"
TARGET_SERVER = "127.53.21.2"
LONG = "x" * 63
N = dns.name.from_text


def ask(qname: str, qtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    return dns.query.udp(query, SERVER, timeout=5, port=RESOLVER_PORT)


def records(reply: dns.message.Message) -> list[tuple[str, str, list[str]]]:
    """The answer section in order, TTLs left out."""
    return [
        (
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            sorted(r.to_text().lower() for r in rrset),
        )
        for rrset in reply.answer
    ]


def fresh(stack: Stack) -> None:
    """Forget what the DNAME zones taught, so the next question is a miss."""
    for name in ("dname.lab.", "new.example.", "liar.lab.", "rfc2672.lab."):
        stack.service.flush(N(name), subtree=True)


def queries_at(stack: Stack, address: str) -> int:
    return stack.lab_server.authority(address).queries_received


def test_the_first_answer_and_the_cached_answer_are_the_same(stack: Stack) -> None:
    fresh(stack)
    dname_before = queries_at(stack, DNAME_SERVER)
    first = ask("www.moved.dname.lab.")
    # moved.dname.lab. A (minimised, RFC 9156: the DNAME's owner has an address), then the name
    assert queries_at(stack, DNAME_SERVER) == dname_before + 2
    assert first.rcode() == dns.rcode.NOERROR
    assert records(first) == [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("www.moved.dname.lab.", "CNAME", ["www.new.example."]),
        ("www.new.example.", "A", ["192.0.2.82"]),
    ]
    dname_ttl, cname_ttl, _ = (r.ttl for r in first.answer)
    assert cname_ttl == dname_ttl and 590 <= dname_ttl <= 600
    total = stack.lab_server.total_queries()
    again = ask("www.moved.dname.lab.")
    assert stack.lab_server.total_queries() == total
    assert records(again) == records(first)
    assert again.answer[0].ttl == again.answer[1].ttl


def test_a_second_name_below_a_cached_dname_asks_nothing_upstream(stack: Stack) -> None:
    fresh(stack)
    ask("www.moved.dname.lab.")  # caches the DNAME
    ask("a.b.new.example.")  # caches the second name's target
    total = stack.lab_server.total_queries()
    reply = ask("a.b.moved.dname.lab.")
    assert stack.lab_server.total_queries() == total  # no upstream query at all
    assert records(reply) == [
        ("moved.dname.lab.", "DNAME", ["new.example."]),
        ("a.b.moved.dname.lab.", "CNAME", ["a.b.new.example."]),
        ("a.b.new.example.", "A", ["192.0.2.83"]),
    ]
    cname = ask("ftp.moved.dname.lab.", "CNAME")  # answered by the DNAME alone
    assert stack.lab_server.total_queries() == total
    assert records(cname)[1] == ("ftp.moved.dname.lab.", "CNAME", ["ftp.new.example."])
    # a name whose target is not cached asks the target's zone only
    dname_before, target_before = queries_at(stack, DNAME_SERVER), queries_at(stack, TARGET_SERVER)
    nx = ask("nx.moved.dname.lab.")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert [r.rdtype for r in nx.answer] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]
    assert [r.name for r in nx.authority] == [N("new.example.")]
    assert queries_at(stack, DNAME_SERVER) == dname_before
    assert queries_at(stack, TARGET_SERVER) == target_before + 1


def test_a_rewrite_past_255_octets_answers_yxdomain_from_the_cache_too(stack: Stack) -> None:
    fresh(stack)
    first = ask(f"{LONG}.long.dname.lab.")
    assert first.rcode() == dns.rcode.YXDOMAIN
    assert records(first)[0][:2] == ("long.dname.lab.", "DNAME")
    assert len(first.answer) == 1
    total = stack.lab_server.total_queries()
    again = ask(f"{LONG}.long.dname.lab.")  # the answer cache keeps YXDOMAIN
    assert again.rcode() == dns.rcode.YXDOMAIN and records(again) == records(first)
    other = ask(f"{LONG}.{'y' * 10}.long.dname.lab.")  # made from the cached DNAME
    assert other.rcode() == dns.rcode.YXDOMAIN and records(other) == records(first)
    assert stack.lab_server.total_queries() == total


def test_a_liars_cname_is_replaced_by_the_dnames(stack: Stack) -> None:
    fresh(stack)
    reply = ask("www.moved.liar.lab.")
    assert records(reply) == [
        ("moved.liar.lab.", "DNAME", ["new.example."]),
        ("www.moved.liar.lab.", "CNAME", ["www.new.example."]),
        ("www.new.example.", "A", ["192.0.2.82"]),
    ]
    assert records(ask("www.moved.liar.lab.")) == records(reply)


def test_an_rfc2672_servers_ttl_0_cname_gets_the_dnames_ttl(stack: Stack) -> None:
    fresh(stack)
    reply = ask("www.moved.rfc2672.lab.")
    assert [r.rdtype for r in reply.answer][:2] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME]
    assert reply.answer[1].ttl == reply.answer[0].ttl > 0
    again = ask("www.moved.rfc2672.lab.")
    assert records(again) == records(reply)


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig is not installed")
def test_dig_shows_the_dname_and_its_cname(stack: Stack) -> None:
    args = ["dig", f"@{SERVER}", "-p", str(RESOLVER_PORT), "a.b.moved.dname.lab.", "A"]
    out = subprocess.run(
        [*args, "+noall", "+answer", "+tries=1", "+time=5"],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert [(f[0], f[3]) for f in lines] == [
        ("moved.dname.lab.", "DNAME"),
        ("a.b.moved.dname.lab.", "CNAME"),
        ("a.b.new.example.", "A"),
    ]
    assert lines[0][1] == lines[1][1]  # the CNAME's TTL is the DNAME's
