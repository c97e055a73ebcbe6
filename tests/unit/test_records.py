"""The wire reader of upstream replies (RFC 1035 §4.1, §4.1.4; RFC 3597 §4; RFC 6891 §6.1.3):
each case whole, cut short, and against dnspython's reading of the same bytes."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.records import Reply, WireRRset, _read_reply, read_name, read_reply

N = dns.name.from_text


def reply_with(*sections: list[dns.rrset.RRset], rcode: int = 0) -> dns.message.Message:
    message = dns.message.make_response(dns.message.make_query("www.example.lab.", "A"))
    message.set_rcode(dns.rcode.Rcode.make(rcode))
    for section, rrsets in zip(
        (message.answer, message.authority, message.additional), sections, strict=False
    ):
        section.extend(rrsets)
    return message


def rr(name: str, rdtype: str, *values: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *values)


def same_view(ours: Reply, theirs: Reply) -> None:
    assert ours.flags == theirs.flags and ours.rcode == theirs.rcode
    for mine, other in zip(ours[2:5], theirs[2:5], strict=True):
        assert len(mine) == len(other)
        for a, b in zip(mine, other, strict=True):
            assert a == b and a.ttl == b.ttl and a.name.to_text() == b.name.to_text()


def test_compressed_names_in_records_are_expanded() -> None:
    message = reply_with(
        [rr("www.example.lab.", "CNAME", "host.example.lab.")],
        [
            rr("example.lab.", "NS", "ns1.example.lab.", "ns2.example.lab."),
            rr("example.lab.", "SOA", "ns1.example.lab. hm.example.lab. 1 2 3 4 60"),
            rr("example.lab.", "MX", "10 mail.example.lab."),
        ],
        [rr("ns1.example.lab.", "A", "127.53.3.1"), rr("_s._tcp.example.lab.", "SRV", "1 2 53 ns1.example.lab.")],
    )  # fmt: skip
    wire = message.to_wire()
    assert b"\xc0" in wire[40:]  # dnspython compressed the records' names
    reply = _read_reply(wire)
    same_view(reply, Reply.from_message(dns.message.from_wire(wire)))
    (cname,) = reply.answer
    assert cname.target() == N("host.example.lab.")
    ns = reply.authority[0]
    assert ns.target_keys() == {b"\x03ns1\x07example\x03lab\x00", b"\x03ns2\x07example\x03lab\x00"}
    assert all(b"\xc0" not in rdata for rr_ in reply.authority for rdata in rr_.rdatas)
    assert reply.authority[1].soa_minimum() == 60
    assert reply.additional[0].addresses() == ["127.53.3.1"]


def test_letter_case_of_owners_is_kept_and_records_of_one_rrset_are_merged() -> None:
    message = reply_with(
        [
            rr("Mail.example.lab.", "A", "192.0.2.1", ttl=300),
            rr("www.example.lab.", "AAAA", "2001:db8::1"),
        ]
    )
    wire = bytearray(message.to_wire())
    reply = _read_reply(bytes(wire))
    assert reply.answer[0].name.to_text() == "Mail.example.lab."
    # Two A records split apart by another RRset, with different TTLs: one RRset, min TTL.
    split = reply_with(
        [
            rr("a.example.lab.", "A", "192.0.2.1", ttl=300),
            rr("b.example.lab.", "A", "192.0.2.9"),
            rr("a.example.lab.", "A", "192.0.2.2", ttl=100),
            rr("a.example.lab.", "A", "192.0.2.1", ttl=300),  # a duplicate
        ]
    )
    merged = _read_reply(split.to_wire())
    first = merged.answer[0]
    assert first.name == N("a.example.lab.") and first.ttl == 100
    assert first.addresses() == ["192.0.2.1", "192.0.2.2"]


def test_opt_extends_the_rcode_and_is_not_an_rrset() -> None:
    message = reply_with([])
    message.use_edns(0, payload=1232)
    message.set_rcode(dns.rcode.BADVERS)
    reply = _read_reply(message.to_wire())
    assert reply.edns and reply.rcode == dns.rcode.BADVERS and reply.additional == []


def test_ttl_with_the_top_bit_set_reads_as_zero_rfc2181() -> None:
    wire = bytearray(reply_with([rr("www.example.lab.", "A", "192.0.2.1")]).to_wire())
    ttl_at = len(wire) - 4 - 2 - 4
    wire[ttl_at : ttl_at + 4] = b"\x80\x00\x00\x01"
    assert _read_reply(bytes(wire)).answer[0].ttl == 0


def test_other_classes_are_dropped() -> None:
    message = reply_with([dns.rrset.from_text("www.example.lab.", 300, "CH", "TXT", '"x"')])
    assert _read_reply(message.to_wire()).answer == []


def test_types_left_to_dnspython_fall_back_and_read_the_same() -> None:
    message = reply_with([rr("www.example.lab.", "NAPTR", '100 10 "U" "E2U+sip" "" example.lab.')])
    wire = message.to_wire()
    with pytest.raises(ValueError):
        _read_reply(wire)
    reply = read_reply(wire)
    assert reply.answer[0].rdtype == dns.rdatatype.NAPTR
    assert reply.answer[0].to_text().startswith("www.example.lab. 300 IN NAPTR")


def test_pointer_loops_and_forward_pointers_are_refused() -> None:
    looping = b"\x00" * 12 + b"\xc0\x0c"
    with pytest.raises(ValueError):
        read_name(looping, 12)
    forward = b"\x00" * 12 + b"\xc0\x10\x00\x00\x03abc\x00"
    with pytest.raises(ValueError):
        read_name(forward, 12)
    assert read_name(b"\x03abc\x00\xc0\x00", 5) == (b"\x03abc\x00", 7)


@pytest.mark.parametrize("cut", range(1, 60))
def test_every_cut_short_reply_is_refused_not_misread(cut: int) -> None:
    wire = reply_with(
        [rr("www.example.lab.", "A", "192.0.2.1")],
        [rr("example.lab.", "NS", "ns1.example.lab.")],
    ).to_wire()
    assert cut < len(wire)
    with pytest.raises(ValueError):
        read_reply(wire[:-cut])


def test_an_address_of_the_wrong_length_is_malformed() -> None:
    wire = bytearray(reply_with([rr("www.example.lab.", "A", "192.0.2.1")]).to_wire())
    wire[-6:-4] = b"\x00\x03"  # RDLENGTH 3
    with pytest.raises(ValueError):
        read_reply(bytes(wire[:-1]))


_LABEL = st.text(alphabet="abcXYZ019-", min_size=1, max_size=8)
_NAME = st.lists(_LABEL, min_size=0, max_size=3).map(
    lambda labels: ".".join([*labels, "example.lab."])
)
_RECORD = st.one_of(
    st.tuples(_NAME, st.just("A"), st.ip_addresses(v=4).map(str)),
    st.tuples(_NAME, st.just("AAAA"), st.ip_addresses(v=6).map(str)),
    st.tuples(_NAME, st.just("NS"), _NAME),
    st.tuples(_NAME, st.just("CNAME"), _NAME),
    st.tuples(_NAME, st.just("MX"), _NAME.map(lambda n: f"10 {n}")),
    st.tuples(_NAME, st.just("TXT"), _LABEL.map(lambda t: f'"{t}"')),
    st.tuples(_NAME, st.just("SOA"), st.tuples(_NAME, _NAME).map(lambda p: f"{p[0]} {p[1]} 1 2 3 4 5")),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    sections=st.lists(
        st.lists(st.tuples(_RECORD, st.integers(0, 100_000)), max_size=5), min_size=3, max_size=3
    ),
    aa=st.booleans(),
    edns=st.booleans(),
)
def test_the_reader_sees_what_dnspython_sees(
    sections: list[list[tuple[tuple[str, str, str], int]]], aa: bool, edns: bool
) -> None:
    message = reply_with(
        *[
            [
                dns.rrset.from_text(name, ttl, "IN", rdtype, value)
                for (name, rdtype, value), ttl in rrs
            ]
            for rrs in sections
        ]
    )
    if aa:
        message.flags |= dns.flags.AA
    if edns:
        message.use_edns(0)
    wire = message.to_wire()
    same_view(_read_reply(wire), Reply.from_message(dns.message.from_wire(wire)))


def test_wire_rrset_round_trips_through_dnspython() -> None:
    rrset = rr("www.example.lab.", "MX", "10 mail.example.lab.", "20 mx2.example.lab.")
    wire_rrset = WireRRset.from_rrset(rrset)
    assert wire_rrset.to_rrset() == rrset
    assert wire_rrset == WireRRset.from_rrset(rrset).with_ttl(5)
    assert len(wire_rrset) == 2
