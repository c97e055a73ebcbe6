"""The PROXY protocol v2 header reader (``resolver/transport/proxy.py``; HAProxy's
proxy-protocol.txt, section 2.2): whole headers of each kind, every truncation, trailing
bytes, and malformed headers."""

from __future__ import annotations

import pytest

from resolver.transport.proxy import (
    FIXED_LENGTH,
    SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse_proxy_header,
    proxy_header,
)

QUERY = (
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03lab\x00\x00\x01\x00\x01"
)

# A header written byte by byte from the specification, not by proxy_header(): PROXY, INET,
# DGRAM, 12 bytes of addresses: 192.0.2.7:40000 -> 127.0.0.1:53.
SPEC_IPV4 = (
    b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
    + b"\x21\x12\x00\x0c"
    + bytes([192, 0, 2, 7, 127, 0, 0, 1])
    + (40000).to_bytes(2, "big")
    + (53).to_bytes(2, "big")
)


def test_a_header_written_from_the_specification() -> None:
    assert parse_proxy_header(SPEC_IPV4 + QUERY) == ProxyHeader(28, ("192.0.2.7", 40000))
    assert proxy_header(("192.0.2.7", 40000)) == SPEC_IPV4


@pytest.mark.parametrize(
    ("source", "datagram"),
    [(("192.0.2.7", 5353), True), (("2001:db8::7", 1), True), (("198.51.100.1", 65535), False)],
)
def test_proxy_headers_name_the_client(source: tuple[str, int], datagram: bool) -> None:
    destination = ("::1", 53) if ":" in source[0] else ("127.0.0.1", 53)
    header = proxy_header(source, destination, datagram=datagram)
    assert parse_proxy_header(header + QUERY) == ProxyHeader(len(header), source)


def test_tlvs_are_skipped_inside_the_length() -> None:
    tlvs = b"\x02\x00\x03abc" + b"\xee\x00\x01\x00"  # an authority TLV and a custom one
    header = proxy_header(("192.0.2.7", 1), tlvs=tlvs)
    parsed = parse_proxy_header(header + QUERY)
    assert parsed == ProxyHeader(FIXED_LENGTH + 12 + len(tlvs), ("192.0.2.7", 1))
    assert (header + QUERY)[parsed.length :] == QUERY


def test_local_and_unspecified_headers_name_no_client() -> None:
    """LOCAL (a balancer's own health check) and PROXY with family UNSPEC or UNIX: the
    receiver uses the socket's own peer (section 2.2)."""
    assert parse_proxy_header(proxy_header(None) + QUERY) == ProxyHeader(16, None)
    unspec = SIGNATURE + b"\x21\x00\x00\x00"
    assert parse_proxy_header(unspec + QUERY) == ProxyHeader(16, None)
    unix = SIGNATURE + b"\x21\x32\x00\xd8" + bytes(216)
    assert parse_proxy_header(unix) == ProxyHeader(232, None)
    local_with_addresses = SIGNATURE + b"\x20\x11\x00\x0c" + bytes(12)
    assert parse_proxy_header(local_with_addresses) == ProxyHeader(28, None)


@pytest.mark.parametrize(
    "header", [SPEC_IPV4, proxy_header(("2001:db8::1", 9), ("::1", 53)), proxy_header(None)]
)
def test_every_truncation_asks_for_more(header: bytes) -> None:
    for end in range(len(header)):
        assert parse_proxy_header(header[:end]) is None, end
    assert parse_proxy_header(header) is not None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (QUERY, "signature"),  # a plain DNS query: no header at all
        (b"PROXY TCP4 192.0.2.7 127.0.0.1 1 53\r\n", "signature"),  # version 1 (text)
        (b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4), "signature"),
        (b"\r\nX", "signature"),  # wrong already in the first bytes: no need to wait
        (SIGNATURE + b"\x11\x12\x00\x0c" + bytes(12), "version 1"),
        (SIGNATURE + b"\x31\x12\x00\x0c" + bytes(12), "version 3"),
        (SIGNATURE + b"\x22\x12\x00\x0c" + bytes(12), "command 2"),
        (SIGNATURE + b"\x2f\x12\x00\x0c" + bytes(12), "command 15"),
        (SIGNATURE + b"\x21\x42\x00\x0c" + bytes(12), "family 4"),
        (SIGNATURE + b"\x21\x13\x00\x0c" + bytes(12), "protocol 3"),  # 0, 1, 2 are known
        (SIGNATURE + b"\x21\x1f\x00\x0c" + bytes(12), "protocol 15"),
        (SIGNATURE + b"\x20\x03\x00\x00", "protocol 3"),  # LOCAL too: no value but known ones
        (SIGNATURE + b"\x21\x12\x00\x0b" + bytes(11), "too short"),  # INET needs 12
        (SIGNATURE + b"\x21\x22\x00\x0c" + bytes(12), "too short"),  # INET6 needs 36
        (SIGNATURE + b"\x21\x32\x00\x10" + bytes(16), "too short"),  # UNIX needs 216
    ],
)
def test_malformed_headers_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(ProxyHeaderError, match=why):
        parse_proxy_header(data)


def test_a_bytearray_is_read_as_bytes() -> None:
    """The TCP listener reads from its buffer, a bytearray."""
    assert parse_proxy_header(bytearray(SPEC_IPV4)) == ProxyHeader(28, ("192.0.2.7", 40000))
