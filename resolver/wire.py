"""Pure byte-level helpers for DNS messages (RFC 1035 §4.1).

Every function takes bytes, checks bounds, and never builds a dnspython object, so the
listeners can reject junk cheaply and answer errors even when a message cannot be parsed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_LENGTH = 12
"""RFC 1035 §4.1.1: the fixed header is 12 bytes."""

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
OPCODE_MASK = 0x7800
OPCODE_SHIFT = 11

_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True, slots=True)
class Header:
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
