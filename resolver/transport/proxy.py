"""Reading a PROXY protocol version 2 header (HAProxy's proxy-protocol.txt, section 2.2).

A load balancer in front of the resolver (dnsdist with ``useProxyProtocol=true``) puts this
binary header before each datagram it forwards, and once at the start of each TCP
connection, so the resolver learns the address of the client the balancer is speaking for.
Only what the resolver needs is read: the command, the address family and the source
address and port. TLVs after the addresses are skipped (they fit inside the length the
header gives). Pure and sans-IO: the listeners decide whom to believe
(:mod:`resolver.transport.proxied`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
"""The 12 bytes every version 2 header starts with (section 2.2)."""
FIXED_LENGTH = 16
"""Signature, version and command, family and protocol, and the 2-byte length."""

VERSION_2 = 0x2
COMMAND_LOCAL = 0x0
"""The balancer speaks for itself (its health checks): use the socket's own addresses."""
COMMAND_PROXY = 0x1
"""The balancer relays a client: the addresses that follow are the client's."""

FAMILY_UNSPEC = 0x0
FAMILY_INET = 0x1
FAMILY_INET6 = 0x2
FAMILY_UNIX = 0x3
ADDRESS_LENGTHS = {FAMILY_UNSPEC: 0, FAMILY_INET: 12, FAMILY_INET6: 36, FAMILY_UNIX: 216}
"""Bytes of source and destination address and port, by family (section 2.2)."""

PROTOCOL_UNSPEC = 0x0
PROTOCOL_STREAM = 0x1
PROTOCOL_DGRAM = 0x2
PROTOCOLS = (PROTOCOL_UNSPEC, PROTOCOL_STREAM, PROTOCOL_DGRAM)
"""The transport protocols of byte 13's low nibble (section 2.2); any other value "must be
rejected as invalid by receivers"."""


class ProxyHeaderError(ValueError):
    """The bytes are not a well-formed version 2 header (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int
    """Bytes the header takes, TLVs included: the DNS message starts after them."""
    source: tuple[str, int] | None
    """The client's address and port; None when the header names none (LOCAL, or an
    unspecified or UNIX family): then the socket's own peer is the client."""


def parse_proxy_header(data: bytes | bytearray) -> ProxyHeader | None:
    """The version 2 header at the start of ``data``; None when ``data`` is a correct start
    of one but too short to hold it all (on TCP: wait for more bytes).

    Raises :class:`ProxyHeaderError` for anything else: a wrong signature (already in its
    first bytes), a version other than 2, a command other than LOCAL or PROXY, an unknown
    address family or transport protocol, or a length too short for the family's addresses.
    The family and protocol are checked under LOCAL too, whose addresses are not read: the
    section asks receivers to reject any other value, and a balancer writes none."""
    start = bytes(data[: len(SIGNATURE)])
    if start != SIGNATURE[: len(start)]:
        raise ProxyHeaderError("no PROXY protocol v2 signature")
    if len(data) < FIXED_LENGTH:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != VERSION_2:
        raise ProxyHeaderError(f"version {version}, not 2")
    if command not in (COMMAND_LOCAL, COMMAND_PROXY):
        raise ProxyHeaderError(f"unknown command {command}")
    family, protocol = data[13] >> 4, data[13] & 0x0F
    if family not in ADDRESS_LENGTHS:
        raise ProxyHeaderError(f"unknown address family {family}")
    if protocol not in PROTOCOLS:
        raise ProxyHeaderError(f"unknown transport protocol {protocol}")
    rest = int.from_bytes(data[14:16], "big")
    if command == COMMAND_PROXY and rest < ADDRESS_LENGTHS[family]:
        raise ProxyHeaderError(f"length {rest} too short for address family {family}")
    length = FIXED_LENGTH + rest
    if len(data) < length:
        return None
    if command == COMMAND_LOCAL or family in (FAMILY_UNSPEC, FAMILY_UNIX):
        return ProxyHeader(length, None)
    if family == FAMILY_INET:
        address = str(ipaddress.IPv4Address(bytes(data[16:20])))
        port = int.from_bytes(data[24:26], "big")
    else:
        address = str(ipaddress.IPv6Address(bytes(data[16:32])))
        port = int.from_bytes(data[48:50], "big")
    return ProxyHeader(length, (address, port))


def proxy_header(
    source: tuple[str, int] | None,
    destination: tuple[str, int] = ("127.0.0.1", 53),
    *,
    datagram: bool = True,
    tlvs: bytes = b"",
) -> bytes:
    """A version 2 header as a balancer writes it: PROXY for ``source``, or LOCAL when
    ``source`` is None (for tests and tools; the resolver only reads headers)."""
    protocol = PROTOCOL_DGRAM if datagram else PROTOCOL_STREAM
    if source is None:
        return SIGNATURE + bytes([0x20, 0x00]) + len(tlvs).to_bytes(2, "big") + tlvs
    src = ipaddress.ip_address(source[0])
    dst = ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("source and destination must be of one address family")
    family = FAMILY_INET if src.version == 4 else FAMILY_INET6
    body = (
        src.packed
        + dst.packed
        + source[1].to_bytes(2, "big")
        + destination[1].to_bytes(2, "big")
        + tlvs
    )
    return SIGNATURE + bytes([0x21, family << 4 | protocol]) + len(body).to_bytes(2, "big") + body
