"""Byte-level helpers: whole, cut short byte by byte, and with trailing junk."""

import dns.message
import dns.name
import dns.rcode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolver.access import LOOPBACK_RULES, AccessList
from resolver.model import ClientQuery
from resolver.screen import screen_query
from resolver.wire import (
    FLAG_QR,
    FLAG_RD,
    HEADER_LENGTH,
    KEY_RD,
    error_reply,
    is_cacheable_question,
    question_end,
    read_fast_query,
    read_header,
    set_id,
)

QUERY = dns.message.make_query("www.Example.lab.", "A", id=0x1234).to_wire()


def test_header_fields() -> None:
    header = read_header(QUERY)
    assert header is not None
    assert header.id == 0x1234
    assert header.qdcount == 1
    assert header.wants_recursion
    assert not header.is_response
    assert header.opcode == 0


def test_header_cut_short_is_none() -> None:
    for length in range(HEADER_LENGTH):
        assert read_header(QUERY[:length]) is None


def test_question_end_whole_and_with_trailing_junk() -> None:
    end = question_end(QUERY)
    assert end == len(QUERY)
    assert question_end(QUERY + b"\x00junk") == end


def test_question_end_cut_short_byte_by_byte() -> None:
    for length in range(len(QUERY)):
        assert question_end(QUERY[:length]) is None


def test_question_end_refuses_pointers() -> None:
    pointer = QUERY[:HEADER_LENGTH] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    assert question_end(pointer) is None


def test_error_reply_copies_id_opcode_rd_and_sets_rcode() -> None:
    reply = error_reply(QUERY, dns.rcode.FORMERR)
    header = read_header(reply)
    assert header is not None
    assert header.id == 0x1234
    assert header.flags & FLAG_QR
    assert header.flags & FLAG_RD
    assert header.flags & 0xF == dns.rcode.FORMERR
    assert (header.qdcount, header.ancount, header.nscount, header.arcount) == (0, 0, 0, 0)
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR


@given(st.integers(0, 0xFFFF))
def test_set_id_round_trips(message_id: int) -> None:
    patched = set_id(QUERY, message_id)
    assert dns.message.from_wire(patched).id == message_id
    assert patched[2:] == QUERY[2:]


@given(st.binary(max_size=64))
def test_random_bytes_never_raise(data: bytes) -> None:
    read_header(data)
    question_end(data)


def test_0x20_randomises_letters_only_and_replies_must_echo_the_case() -> None:
    from resolver.wire import build_query, randomize_case, reply_matches  # noqa: PLC0415

    name = dns.name.from_text("www-1.example.lab.").to_wire()
    assert name is not None
    mixed = randomize_case(name, 0b101)
    assert mixed.lower() == name.lower()
    assert mixed != name
    assert randomize_case(name, 0) == name
    query = build_query(7, mixed, 1, 1232)
    echo = bytearray(query)
    echo[2] |= 0x80  # QR
    assert reply_matches(bytes(echo), query, exact_case=True)
    lowered = bytes(echo[:12]) + bytes(echo[12:]).lower()
    assert reply_matches(lowered, query)  # case-insensitive by default
    assert not reply_matches(lowered, query, exact_case=True)  # a forger who guessed the ID only


def _query_with_name(name_wire: bytes) -> bytes:
    """A plain recursive query (RD=1, one question, type A, class IN) for raw name bytes."""
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name_wire + b"\x00\x01\x00\x01"


def test_fast_key_lowers_only_the_name_and_is_cacheable_for_plain_names() -> None:
    wire = _query_with_name(b"\x03WwW\x07Example\x03lab\x00")
    fast = read_fast_query(wire)
    assert fast is not None
    assert fast.key == b"\x03www\x07example\x03lab\x00\x00\x01\x00\x01" + bytes((KEY_RD,))
    assert fast.question_end == len(wire) and is_cacheable_question(wire, fast)
    https = _query_with_name(b"\x01a\x00")[:-4] + b"\x00\x41\x00\x01"  # type 65 stays 65
    fast_https = read_fast_query(https)
    assert fast_https is not None and fast_https.key[-5:-3] == b"\x00\x41"


@pytest.mark.parametrize(
    "name_wire",
    [
        b"\x05a\x00bcd\x03lab\x00",  # a zero byte inside a label
        b"\x40" + b"a" * 64 + b"\x00",  # a label longer than 63
        b"\x01a\xc0\x0c",  # a compression pointer, then the type's zero byte
    ],
)
def test_names_the_fast_reader_cuts_short_are_never_cached(name_wire: bytes) -> None:
    wire = _query_with_name(name_wire)
    fast = read_fast_query(wire)
    if fast is not None:
        assert not is_cacheable_question(wire, fast)
    outcome = screen_query(wire, AccessList(LOOPBACK_RULES).decide("127.0.0.1"), fast)
    assert not isinstance(outcome, ClientQuery) or outcome.cache_key is None


def test_a_reply_differing_only_in_letter_case_is_told_apart_from_other_mismatches() -> None:
    """The classifier behind the 0x20 TCP fallback: only a reply with our ID and our
    question, in another letter case, qualifies; anything else stays a plain mismatch."""
    from resolver.wire import build_query, differs_only_in_case, randomize_case  # noqa: PLC0415

    name = dns.name.from_text("www.case.awk.example.lab.").to_wire()
    assert name is not None
    query = build_query(0x1234, randomize_case(name, 0b1011_0110), 1, 1232)
    end = 12 + len(name) + 4
    echo = bytearray(query)
    echo[2] |= 0x80  # QR
    swapped = bytes(echo[:12]) + bytes(echo[12 : end - 4]).swapcase() + bytes(echo[end - 4 :])
    assert differs_only_in_case(swapped, query, end)
    assert not differs_only_in_case(bytes(echo), query, end)  # the exact echo: a match
    other_id = b"\x43\x21" + swapped[2:]
    assert not differs_only_in_case(other_id, query, end)
    not_a_reply = swapped[:2] + bytes((swapped[2] & 0x7F,)) + swapped[3:]
    assert not differs_only_in_case(not_a_reply, query, end)
    other_name = swapped[:13] + b"X" + swapped[14:]  # "w" -> "X": another name, not a case
    assert not differs_only_in_case(other_name, query, end)
    # Type 65 (HTTPS) asked, 97 answered: 0x41 and 0x61 differ only by 0x20 yet are no letters.
    https = build_query(0x1234, name, 65, 1232)
    https_echo = bytearray(https)
    https_echo[2] |= 0x80
    https_echo[end - 3] = 97
    assert not differs_only_in_case(bytes(https_echo), https, end)
    assert not differs_only_in_case(swapped[: end - 1], query, end)  # cut short
    no_question = swapped[:4] + b"\x00\x00" + swapped[6:]
    assert not differs_only_in_case(no_question, query, end)


def test_a_reply_for_another_type_whose_number_differs_by_0x20_does_not_match() -> None:
    """Without 0x20 the name is compared without case, but the type and class are numbers:
    type 65 (HTTPS, 0x41) asked and 97 (0x61) answered is another question, not a case."""
    from resolver.wire import build_query, reply_matches  # noqa: PLC0415

    name = dns.name.from_text("www.example.lab.").to_wire()
    assert name is not None
    query = build_query(0x1234, name, 65, 1232)
    reply = bytearray(query)
    reply[2] |= 0x80
    assert reply_matches(bytes(reply), query)
    end = 12 + len(name) + 4
    reply[end - 3] = 97
    assert not reply_matches(bytes(reply), query)
    shouted = bytearray(query)
    shouted[2] |= 0x80
    shouted[12 : end - 4] = bytes(shouted[12 : end - 4]).upper()
    assert reply_matches(bytes(shouted), query)  # the name's case still does not matter
