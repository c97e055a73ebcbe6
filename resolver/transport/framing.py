"""DNS over TCP framing: a two-byte length before each message (RFC 1035 §4.2.2, RFC 7766)."""

from __future__ import annotations

import struct

MAX_TCP_MESSAGE = 65535


def frame(message_wire: bytes) -> bytes:
    """Prefix ``message_wire`` with its length."""
    return struct.pack("!H", len(message_wire)) + message_wire


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete message at the front of ``buffer``.

    A zero length is a framing error (no DNS message is empty): raises ValueError.
    """
    messages: list[bytes] = []
    while len(buffer) >= 2:
        (length,) = struct.unpack_from("!H", buffer)
        if length == 0:
            raise ValueError("zero-length DNS message over TCP")
        if len(buffer) < 2 + length:
            break
        messages.append(bytes(buffer[2 : 2 + length]))
        del buffer[: 2 + length]
    return messages
