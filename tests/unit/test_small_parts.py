"""Local answers (RFC 6761), TCP framing (RFC 7766), hints, composing responses."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.core.compose import client_udp_limit, render_result
from resolver.core.hints import HintsError, root_cut_from_hints
from resolver.core.local import local_answer
from resolver.model import ClientQuery, ExtendedError, Question, Result, join_reasons, servfail
from resolver.records import WireRRset
from resolver.screen import read_plain_query
from resolver.transport.batch import EndOfTurn
from resolver.transport.framing import frame, split_frames
from resolver.transport.upstream import is_allowed
from resolver.wire import read_fast_query


def q(name: str, rdtype: str) -> Question:
    return Question(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))


def test_localhost_and_loopback_reverse_are_local() -> None:
    a = local_answer(q("localhost.", "A"))
    assert a is not None and a.answer[0][0].to_text() == "127.0.0.1"
    aaaa = local_answer(q("www.localhost.", "AAAA"))
    assert aaaa is not None and aaaa.answer[0][0].to_text() == "::1"
    mx = local_answer(q("localhost.", "MX"))
    assert mx is not None and mx.rcode == dns.rcode.NOERROR and mx.answer == ()
    ptr = local_answer(q("1.0.0.127.in-addr.arpa.", "PTR"))
    assert ptr is not None and ptr.answer[0][0].to_text() == "localhost."
    v6 = local_answer(
        q("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "PTR")
    )
    assert v6 is not None and v6.answer
    too_deep = local_answer(q("9.1.0.0.127.in-addr.arpa.", "PTR"))
    assert too_deep is not None and too_deep.rcode == dns.rcode.NXDOMAIN
    assert local_answer(q("www.example.lab.", "A")) is None


def test_framing_splits_complete_messages_only() -> None:
    buffer = bytearray(frame(b"one") + frame(b"three") + frame(b"partial")[:4])
    assert split_frames(buffer) == [b"one", b"three"]
    assert len(buffer) == 4
    with pytest.raises(ValueError):
        split_frames(bytearray(b"\x00\x00"))


def test_hints_parse_and_reject_empty() -> None:
    cut = root_cut_from_hints(". 3600 NS a.root.lab.\na.root.lab. 3600 A 127.53.0.1\n")
    assert cut.zone == dns.name.root
    assert cut.addresses() == ["127.53.0.1"]
    with pytest.raises(HintsError, match="no addresses"):
        root_cut_from_hints(". 3600 NS a.root.lab.\n")
    with pytest.raises(HintsError, match="no NS"):
        root_cut_from_hints("a.root.lab. 3600 A 127.53.0.1\n")


def test_servfail_carries_extended_error_only_with_edns() -> None:
    failure = servfail(
        "all servers for lame.lab. answered REFUSED", ExtendedError.NO_REACHABLE_AUTHORITY
    )
    edns_query = client_query(dns.message.make_query("www.lame.lab.", "A", use_edns=0))
    with_edns = dns.message.from_wire(render_result(edns_query, failure, 512))
    assert with_edns.rcode() == dns.rcode.SERVFAIL
    (option,) = with_edns.options
    assert isinstance(option, dns.edns.EDEOption)
    assert option.code == 22
    assert option.text == "all servers for lame.lab. answered REFUSED"
    plain_query = client_query(dns.message.make_query("www.lame.lab.", "A"))
    without = dns.message.from_wire(render_result(plain_query, failure, 512))
    assert without.edns < 0 and without.rcode() == dns.rcode.SERVFAIL


def test_response_keeps_the_question_case_and_truncates_to_the_client_size() -> None:
    query = dns.message.make_query("WwW.Example.LAB.", "TXT")
    rrset = dns.rrset.from_text(
        "www.example.lab.", 300, "IN", "TXT", *[f'"{i:03d}{"x" * 100}"' for i in range(10)]
    )
    result = Result(dns.rcode.NOERROR, (WireRRset.from_rrset(rrset),))
    accepted = client_query(query)
    small_wire = render_result(accepted, result, client_udp_limit(query))
    small = dns.message.from_wire(small_wire)
    assert small.flags & 0x0200  # TC
    assert len(small_wire) <= 512 and small.answer == []
    full_wire = render_result(accepted, result, 65535)
    assert b"\x03WwW\x07Example\x03LAB\x00" in full_wire
    full = dns.message.from_wire(full_wire)
    assert full.flags & dns.flags.RA and full.flags & dns.flags.RD and not full.flags & 0x0200
    assert full.answer[0] == rrset and full.question[0].name.to_text() == "WwW.Example.LAB."


def test_rendered_response_copies_cd_and_do_and_compresses_owners_and_targets() -> None:
    query = dns.message.make_query("www.example.lab.", "CNAME", want_dnssec=True)
    query.flags |= dns.flags.CD
    chain = (
        WireRRset.from_rrset(dns.rrset.from_text("www.example.lab.", 60, "IN", "CNAME", "a.example.lab.")),
        WireRRset.from_rrset(dns.rrset.from_text("a.example.lab.", 60, "IN", "A", "192.0.2.1", "192.0.2.2")),
    )  # fmt: skip
    wire = render_result(client_query(query), Result(dns.rcode.NOERROR, chain), 4096)
    response = dns.message.from_wire(wire)
    assert response.flags & dns.flags.CD and response.ednsflags & dns.flags.DO
    assert response.payload == 1232
    assert [r.to_text() for r in response.answer] == [r.to_text() for r in chain]
    # the CNAME target is written once (its suffix a pointer to the question's), the A
    # owner a pointer to it (RFC 1035 §4.1.4)
    assert wire.count(b"\x07example") == 1 and wire.count(b"\x01a") == 1


def client_query(message: dns.message.Message) -> ClientQuery:
    wire = message.to_wire()
    fast = read_fast_query(wire)
    assert fast is not None
    return read_plain_query(wire, fast)


def test_client_udp_limit() -> None:
    assert client_udp_limit(dns.message.make_query("a.", "A")) == 512
    assert client_udp_limit(dns.message.make_query("a.", "A", use_edns=0, payload=100)) == 512
    assert client_udp_limit(dns.message.make_query("a.", "A", use_edns=0, payload=1232)) == 1232
    assert client_udp_limit(dns.message.make_query("a.", "A", use_edns=0, payload=65000)) == 4096


def test_outbound_allow_list() -> None:
    loopback = [ipaddress.ip_network("127.0.0.0/8")]
    assert is_allowed("127.53.0.1", loopback)
    assert not is_allowed("192.0.2.1", loopback)
    assert not is_allowed("::1", loopback)


def test_the_real_root_hints_parse_but_the_lab_hints_are_loopback_only() -> None:
    from resolver.files import load_root_hints  # noqa: PLC0415
    from resolver.paths import lab_root_hints, real_root_hints  # noqa: PLC0415

    real = load_root_hints(real_root_hints())
    assert len(real.nameservers) == 13
    assert len(real.addresses()) == 26
    lab = load_root_hints(lab_root_hints())
    assert all(ipaddress.ip_address(a).is_loopback for a in lab.addresses())


def test_end_of_turn_hands_over_each_turns_items_together_in_order() -> None:
    batches: list[list[int]] = []

    async def turns() -> None:
        batch: EndOfTurn[int] = EndOfTurn(asyncio.get_running_loop(), batches.append)
        for item in (1, 2, 3):
            batch.add(item)
        assert batches == []  # nothing sent before the turn ends
        await asyncio.sleep(0)
        batch.add(4)
        await asyncio.sleep(0)

    asyncio.run(turns())
    assert batches == [[1, 2, 3], [4]]


def test_join_reasons_cuts_at_a_reason_boundary_and_says_how_many_more() -> None:
    reasons = [f"1 no address for ns{i}.victim.example." for i in range(30)]
    text = join_reasons(reasons, 120)
    assert len(text) <= 120
    kept, tail = text.split(" … ")
    assert kept.split(", ") == reasons[: len(kept.split(", "))]  # whole reasons only
    assert tail == f"and {30 - len(kept.split(', '))} more"
    assert join_reasons(reasons[:2], 200) == ", ".join(reasons[:2])  # fits: unchanged
    assert join_reasons(["x" * 50], 10) == "x" * 10  # one reason too long: cut as a last resort
    assert join_reasons([], 10) == ""
