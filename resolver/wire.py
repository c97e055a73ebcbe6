"""Pure byte-level helpers for DNS messages (RFC 1035 §4.1).

Every function takes bytes, checks bounds, and never builds a dnspython object, so the
listeners can reject junk cheaply and answer errors even when a message cannot be parsed.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER_LENGTH = 12
"""RFC 1035 §4.1.1: the fixed header is 12 bytes."""

FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
OPCODE_MASK = 0x7800
OPCODE_SHIFT = 11

_HEADER = struct.Struct("!HHHHHH")


class Header(NamedTuple):
    """The six fields of a DNS header (RFC 1035 §4.1.1)."""

    id: int
    flags: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> OPCODE_SHIFT

    @property
    def wants_recursion(self) -> bool:
        return bool(self.flags & FLAG_RD)


def read_header(wire: bytes) -> Header | None:
    """The header of ``wire``, or None when fewer than 12 bytes arrived."""
    if len(wire) < HEADER_LENGTH:
        return None
    return Header(*_HEADER.unpack_from(wire))


def error_reply(query_wire: bytes, rcode: int) -> bytes:
    """A header-only reply to a query that will not be answered (RFC 1035 §4.1.1).

    The ID, opcode and RD bit are copied, QR is set, every count is zero. Used for FORMERR
    when the question cannot be parsed, and for NOTIMP/REFUSED before parsing.
    Raises ValueError when ``query_wire`` has no complete header.
    """
    header = read_header(query_wire)
    if header is None:
        raise ValueError("no DNS header")
    flags = FLAG_QR | (header.flags & (OPCODE_MASK | FLAG_RD)) | (rcode & 0xF)
    return _HEADER.pack(header.id, flags, 0, 0, 0, 0)


def question_end(wire: bytes) -> int | None:
    """Offset just past the first question (RFC 1035 §4.1.2), or None if it is cut short.

    Compression pointers are not allowed in a question name of a query (nothing precedes it
    to point to), so a pointer makes the question unreadable here.
    """
    offset = HEADER_LENGTH
    end = len(wire)
    name_length = 0
    while True:
        if offset >= end:
            return None
        label_length = wire[offset]
        if label_length & 0xC0:
            return None
        offset += 1 + label_length
        name_length += 1 + label_length
        if name_length > 255:
            return None
        if label_length == 0:
            break
    offset += 4  # QTYPE and QCLASS
    return offset if offset <= end else None


def set_id(wire: bytes, message_id: int) -> bytes:
    """``wire`` with its ID replaced (RFC 1035 §4.1.1)."""
    return struct.pack("!H", message_id & 0xFFFF) + wire[2:]


TYPE_OPT = 41
RR_FIXED = struct.Struct("!HHIH")  # TYPE, CLASS, TTL, RDLENGTH (RFC 1035 §4.1.3)

MAX_UDP_REPLY = 4096
"""The largest UDP reply we send, whatever a client advertises (Unbound's
``max-udp-size`` default), so an answer never amplifies beyond that."""
_TTL = struct.Struct("!I")

KEY_RD = 0x01
KEY_CD = 0x02
KEY_DO = 0x04
KEY_EDNS = 0x08
KEY_AD = 0x10
"""The client set AD (RFC 6840 §5.7): a secure answer to it carries AD even without DO."""


class FastQuery(NamedTuple):
    """What the cache-hit path needs from a plain query, read without dnspython (a tuple,
    because it is built once per query on the hot path)."""

    key: bytes
    """Question name lower-cased + QTYPE + QCLASS as sent + one byte of answer-changing
    flags (RD, CD, AD, DO, EDNS present)."""
    question_end: int
    udp_limit: int
    """The client's UDP size: its EDNS payload (at least 512, at most :data:`MAX_UDP_REPLY`),
    or 512 without EDNS."""


_COUNTS_PLAIN = b"\x00\x01\x00\x00\x00\x00\x00\x00"
_COUNTS_WITH_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"
_FLAG_BYTE = [bytes((value,)) for value in range(32)]
_KEY_FLAGS_OF = [
    KEY_RD | (KEY_CD if bits & 0x10 else 0) | (KEY_AD if bits & 0x20 else 0) for bits in range(0x31)
]
"""The key flags for the query's fourth header byte masked to AD and CD (0x30): one list
index on the hot path instead of a test per flag."""


def read_fast_query(wire: bytes) -> FastQuery | None:
    """Read a plain recursive query: QUERY opcode, RD=1, one question, no answer or authority
    records, at most an OPT record of version 0 (RFC 6891 §6.1.2). Anything else is None
    and takes the slow path, which knows how to answer it.

    The question's name is taken to end at the first zero byte, without walking its labels
    (a C search instead of a Python loop, on the hot path). That is exact for every name
    whose labels hold no zero byte; for any other, the key is a string that no stored key
    can equal unless the question's bytes are the same, because answers are stored only for
    queries whose labels :func:`question_end` walked to the same end (see
    :func:`is_cacheable_question`). Only the name's ASCII letters are lower-cased (RFC 4343
    §3); lowering the whole question would turn type 65 into 97.
    """
    size = len(wire)
    if size < 17 or wire[2] & 0xFB != 0x01:  # QR=0, opcode 0, TC=0, RD=1 (AA ignored)
        return None
    counts = wire[4:12]
    with_opt = counts == _COUNTS_WITH_OPT
    if not with_opt and counts != _COUNTS_PLAIN:
        return None
    root = wire.find(0, HEADER_LENGTH)
    if root < 0 or root > 267:  # a name of at most 255 bytes
        return None
    end = root + 5
    if end > size:
        return None
    key_flags = _KEY_FLAGS_OF[wire[3] & 0x30]
    udp_limit = 512
    if with_opt:
        if end + 11 > size or wire[end] != 0:
            return None
        rtype, payload, ttl, rdlength = RR_FIXED.unpack_from(wire, end + 1)
        if rtype != TYPE_OPT or ttl & 0xFF0000 or end + 11 + rdlength > size:
            return None  # not OPT, or EDNS version > 0 (BADVERS on the slow path)
        key_flags |= KEY_EDNS | KEY_DO if ttl & 0x8000 else KEY_EDNS
        if payload > 512:
            udp_limit = payload if payload < MAX_UDP_REPLY else MAX_UDP_REPLY
    key = wire[HEADER_LENGTH:root].lower() + wire[root:end] + _FLAG_BYTE[key_flags]
    return FastQuery(key, end, udp_limit)


def is_cacheable_question(wire: bytes, query: FastQuery) -> bool:
    """True when the question's labels, walked one by one, end where
    :func:`read_fast_query` assumed (no zero byte inside a label, no compression pointer,
    no label longer than 63): only then is an answer stored under its key."""
    return question_end(wire) == query.question_end


def _skip_name(wire: bytes, offset: int) -> int:
    """Offset just past a possibly compressed name (RFC 1035 §4.1.4); ValueError if cut."""
    while True:
        if offset >= len(wire):
            raise ValueError("name runs past the end")
        length = wire[offset]
        if length & 0xC0 == 0xC0:
            if offset + 2 > len(wire):
                raise ValueError("pointer cut short")
            return offset + 2
        if length & 0xC0:
            raise ValueError("unknown label type")
        offset += 1 + length
        if length == 0:
            return offset


def ttl_offsets(wire: bytes) -> list[tuple[int, int]] | None:
    """(offset, TTL) of every resource record's TTL field in a response, OPT excluded
    (its TTL field holds EDNS flags, RFC 6891 §6.1.3). None when the message is cut short.
    """
    header = read_header(wire)
    if header is None:
        return None
    try:
        offset = HEADER_LENGTH
        for _ in range(header.qdcount):
            offset = _skip_name(wire, offset) + 4
        found: list[tuple[int, int]] = []
        for _ in range(header.ancount + header.nscount + header.arcount):
            offset = _skip_name(wire, offset)
            if offset + 10 > len(wire):
                return None
            rtype, _class, ttl, rdlength = RR_FIXED.unpack_from(wire, offset)
            if rtype != TYPE_OPT:
                found.append((offset + 4, ttl))
            offset += 10 + rdlength
            if offset > len(wire):
                return None
    except ValueError:
        return None
    return found


_OFFSET = struct.Struct("!HI")  # a TTL field's offset and the TTL stored there


def pack_ttl_offsets(offsets: list[tuple[int, int]]) -> bytes:
    """(offset, TTL) pairs from :func:`ttl_offsets`, packed six bytes each."""
    return b"".join(_OFFSET.pack(offset, ttl) for offset, ttl in offsets)


def age_ttls(reply: bytearray, packed_offsets: bytes, age: int) -> None:
    """Count every TTL down by ``age`` seconds, never below zero (RFC 1035 §3.2.1)."""
    pack_ttl = _TTL.pack_into
    for offset, ttl in _OFFSET.iter_unpack(packed_offsets):
        pack_ttl(reply, offset, ttl - age if ttl > age else 0)


def set_ttls(reply: bytearray, packed_offsets: bytes, ttl: int) -> None:
    """Set every TTL to ``ttl`` (stale answers, RFC 8767 §4)."""
    for offset, _stored in _OFFSET.iter_unpack(packed_offsets):
        _TTL.pack_into(reply, offset, ttl)


def answer_for(stored: bytes | memoryview, query_wire: bytes, question_end: int) -> bytearray:
    """A stored reply made the answer to ``query_wire``: its ID and its question as asked
    (letter case kept; the same name, so the same length)."""
    reply = bytearray(stored)
    reply[0:2] = query_wire[0:2]
    reply[HEADER_LENGTH:question_end] = query_wire[HEADER_LENGTH:question_end]
    return reply


def truncated_reply(wire: bytes, question_end: int) -> bytes:
    """Header with TC set, the question, and the OPT record if there is one: what a client
    whose buffer is too small gets (RFC 2181 §9, RFC 6891 §7)."""
    header = read_header(wire)
    assert header is not None
    opt = _find_opt(wire, question_end, header) if header.arcount else b""
    counts = (1, 0, 0, 1 if opt else 0)
    return (
        _HEADER.pack(header.id, header.flags | FLAG_TC, *counts)
        + wire[HEADER_LENGTH:question_end]
        + opt
    )


def _find_opt(wire: bytes, offset: int, header: Header) -> bytes:
    for _ in range(header.ancount + header.nscount + header.arcount):
        start = offset
        offset = _skip_name(wire, offset)
        rtype, _class, _ttl, rdlength = RR_FIXED.unpack_from(wire, offset)
        offset += 10 + rdlength
        if rtype == TYPE_OPT:
            return wire[start:offset]
    return b""


def build_query(
    message_id: int,
    qname_wire: bytes,
    qtype: int,
    edns_payload: int | None,
    *,
    dnssec_ok: bool = False,
) -> bytes:
    """An iterative query (RD=0, RFC 1034 §5.3.1) with an OPT record when ``edns_payload``
    is given (RFC 6891 §6.1.2: root owner, type 41, class = payload, TTL 0, no options),
    its DO bit set with ``dnssec_ok`` (RFC 3225 §3)."""
    arcount = 1 if edns_payload is not None else 0
    header = _HEADER.pack(message_id, 0, 1, 0, 0, arcount)
    question = qname_wire + struct.pack("!HH", qtype, 1)
    if edns_payload is None:
        return header + question
    flags = 0x8000 if dnssec_ok else 0
    return header + question + b"\x00" + RR_FIXED.pack(TYPE_OPT, edns_payload, flags, 0)


def reply_matches(
    reply: bytes, query: bytes, *, exact_case: bool = False, query_question_end: int | None = None
) -> bool:
    """True when ``reply`` answers ``query``: same ID, QR set, and the same question (RFC 5452
    §9.1; the question is echoed, RFC 1035 §4.1.1). Letters are compared without case, or
    exactly with ``exact_case`` (0x20 randomisation, draft-vixie-dnsext-dns0x20). A caller
    that knows where its query's question ends passes ``query_question_end``."""
    if len(reply) < HEADER_LENGTH or reply[0:2] != query[0:2] or not reply[2] & 0x80:
        return False
    if reply[4:6] == b"\x00\x00" and reply[3] & 0xF in (1, 4):
        return True  # FORMERR or NOTIMP without the question: old servers rejecting EDNS
    end = question_end(query) if query_question_end is None else query_question_end
    if end is None or reply[4:6] != b"\x00\x01":
        return False
    if exact_case:
        return reply[HEADER_LENGTH:end] == query[HEADER_LENGTH:end]
    name_end = end - 4  # type and class are numbers, compared exactly: 0x41 is no letter
    return (
        reply[name_end:end] == query[name_end:end]
        and reply[HEADER_LENGTH:name_end].lower() == query[HEADER_LENGTH:name_end].lower()
    )


def differs_only_in_case(reply: bytes, query: bytes, query_question_end: int) -> bool:
    """True when ``reply`` would answer ``query`` but for the letter case of its question
    name: :func:`reply_matches` without case and not with it (so the type and class are
    exact). With 0x20 on, such a reply is from a server that does not keep the case
    (or a forger who guessed ID and port): not used as is, but a reason to ask again over
    TCP at once (draft-vixie-dnsext-dns0x20; Unbound's caps fallback for ``use-caps-for-id``
    in spirit).
    Called only for a datagram :func:`reply_matches` has rejected, so replies that match
    pay nothing for it."""
    return reply_matches(reply, query, query_question_end=query_question_end) and not (
        reply_matches(reply, query, exact_case=True, query_question_end=query_question_end)
    )


def randomize_case(name_wire: bytes, bits: int) -> bytes:
    """The name with each ASCII letter's case taken from successive bits of ``bits``
    (0x20 randomisation: extra entropy a forger must guess, draft-vixie-dnsext-dns0x20)."""
    out = bytearray(name_wire)
    offset = 0
    while offset < len(out) and out[offset]:
        length = out[offset]
        for index in range(offset + 1, offset + 1 + length):
            byte = out[index] | 0x20
            if 0x61 <= byte <= 0x7A:  # a letter
                out[index] = byte ^ 0x20 if bits & 1 else byte
                bits >>= 1
        offset += 1 + length
    return bytes(out)


def query_from_key(key: bytes, message_id: int = 0) -> bytes:
    """A query whose :func:`read_fast_query` key is ``key``: the question it holds and the
    flags its last byte records (RD, CD, AD; an OPT record with DO when EDNS was used). Used to
    refresh a cached answer when no client query is at hand (prefetch)."""
    flags_byte = key[-1]
    question = key[:-1]
    flags = (
        FLAG_RD | (0x0010 if flags_byte & KEY_CD else 0) | (0x0020 if flags_byte & KEY_AD else 0)
    )
    if not flags_byte & KEY_EDNS:
        return _HEADER.pack(message_id, flags, 1, 0, 0, 0) + question
    opt_ttl = 0x8000 if flags_byte & KEY_DO else 0
    opt = b"\x00" + RR_FIXED.pack(TYPE_OPT, 1232, opt_ttl, 0)
    return _HEADER.pack(message_id, flags, 1, 0, 0, 1) + question + opt
