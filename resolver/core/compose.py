"""Composing the resolver's responses to clients (RFC 1035 §4.1, RFC 6891, RFC 8914)."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode

from resolver.model import EDE_TEXT_LIMIT, ClientQuery, Result, Security
from resolver.records import WireRRset
from resolver.wire import FLAG_QR, FLAG_RD, MAX_UDP_REPLY, RR_FIXED, truncated_reply

SERVER_EDNS_PAYLOAD = 1232
"""The UDP size we advertise to clients (DNS Flag Day 2020)."""


def client_udp_limit(query: dns.message.Message) -> int:
    """How large a UDP reply the client accepts (RFC 6891 §6.2.5; RFC 1035 §2.3.4: 512)."""
    if query.edns < 0:
        return 512
    return min(max(512, query.payload), MAX_UDP_REPLY)


def error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """A response with ``rcode`` and no records (FORMERR, REFUSED, NOTIMP, BADVERS)."""
    response = dns.message.make_response(
        query, recursion_available=True, our_payload=SERVER_EDNS_PAYLOAD
    )
    if rcode == dns.rcode.BADVERS:
        response.use_edns(0, payload=SERVER_EDNS_PAYLOAD)  # RFC 6891 §6.1.3: answer version 0
    response.set_rcode(rcode)
    return response


def render(response: dns.message.Message, limit: int) -> bytes:
    """Wire form within ``limit`` bytes; when it does not fit, whole RRsets are left out and
    TC is set (RFC 2181 §9, RFC 1035 §4.2.1). Records keep their order (no shuffling), so
    the same result renders to the same bytes on the slow path and from the answer cache."""
    return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


_FLAG_RA = 0x0080
_FLAG_AD = 0x0020
_FLAG_CD = 0x0010
_RRSIG = 46
_FLAGS_COPIED = FLAG_RD | _FLAG_CD  # RD (RFC 1035 §4.1.1) and CD (RFC 4035 §3.1.6)
_COUNTS = struct.Struct("!HHHH")
_OPT_HEAD = b"\x00\x00\x29" + SERVER_EDNS_PAYLOAD.to_bytes(2, "big")
_EDE_OPTION = 15  # RFC 8914 §2


def _remember_suffixes(
    table: dict[bytes, int], lowered: bytes, start: int, stop: int | None = None
) -> None:
    """Note where each suffix of a lower-cased wire name written at ``start`` begins (up to
    label offset ``stop``), so later names can point there (RFC 1035 §4.1.4: offsets below
    0x4000)."""
    offset = 0
    while lowered[offset] and (stop is None or offset < stop) and start + offset < 0x4000:
        table.setdefault(lowered[offset:], start + offset)
        offset += 1 + lowered[offset]


def _put_name(out: bytearray, name_wire: bytes, table: dict[bytes, int]) -> None:
    """Append a name, compressed against the names already written (RFC 1035 §4.1.4), and
    remember where its suffixes start for the names after it."""
    lowered = name_wire.lower()
    start = len(out)
    offset = 0
    while name_wire[offset]:
        pointer = table.get(lowered[offset:])
        if pointer is not None:
            out += name_wire[:offset]
            out += (0xC000 | pointer).to_bytes(2, "big")
            _remember_suffixes(table, lowered, start, offset)
            return
        offset += 1 + name_wire[offset]
    out += name_wire
    _remember_suffixes(table, lowered, start)


_NAME_RDATA = frozenset({2, 5, 12})
"""NS, CNAME, PTR: types whose data is one name, which RFC 1035 §4.1.4 lets a server
compress (RFC 3597 §4: only such old types; never an RRSIG's signer, a DNAME's target)."""


def _put_rrsets(out: bytearray, rrsets: tuple[WireRRset, ...], table: dict[bytes, int]) -> int:
    """Append every record of ``rrsets``, the names in NS, CNAME and PTR data compressed
    too (as Unbound: a DO answer with a chain of 8 signed CNAMEs passed 1232 octets
    uncompressed, 1139 compressed); the number of records written."""
    count = 0
    for rrset in rrsets:
        owner = rrset.owner_wire
        ttl = rrset.ttl & 0xFFFFFFFF
        compress = rrset.rdtype in _NAME_RDATA
        for rdata in rrset.rdatas:
            _put_name(out, owner, table)
            out += RR_FIXED.pack(rrset.rdtype, 1, ttl, len(rdata))
            if compress:
                start = len(out)
                _put_name(out, rdata, table)
                out[start - 2 : start] = (len(out) - start).to_bytes(2, "big")
            else:
                out += rdata
            count += 1
    return count


def _opt_record(query: ClientQuery, result: Result) -> bytes:
    """Our OPT record (RFC 6891 §6.1.2): our UDP size, the client's DO bit, and an Extended
    DNS Error (RFC 8914) saying why when the result is a failure."""
    options = b""
    if result.error_code is not None:
        text = result.reason[:EDE_TEXT_LIMIT].encode("utf-8", "replace")
        options = (
            _EDE_OPTION.to_bytes(2, "big")
            + (2 + len(text)).to_bytes(2, "big")
            + int(result.error_code).to_bytes(2, "big")
            + text
        )
    flags = b"\x00\x00\x80\x00" if query.edns_do else b"\x00\x00\x00\x00"
    return _OPT_HEAD + flags + len(options).to_bytes(2, "big") + options


def with_proof(result: Result) -> tuple[tuple[WireRRset, ...], tuple[WireRRset, ...]]:
    """The answer and authority sections for a client that set DO (RFC 4035 §3.2.1): the
    RRSIGs of the answer's owners after the answer, the NSEC/NSEC3 records and their RRSIGs
    (and the SOA's) after the authority. An ANY answer lists its RRSIGs already."""
    owners = {rrset.owner_key for rrset in result.answer}
    listed = {rrset.owner_key for rrset in result.answer if rrset.rdtype == _RRSIG}
    in_answer = tuple(
        r
        for r in result.proof
        if r.rdtype == _RRSIG and r.owner_key in owners and r.owner_key not in listed
    )
    rest = tuple(r for r in result.proof if not (r.rdtype == _RRSIG and r.owner_key in owners))
    return result.answer + in_answer, result.authority + rest


def render_result(query: ClientQuery, result: Result, limit: int) -> bytes:
    """The response to ``query`` in wire form, built from the result's records without
    dnspython: the question as asked (letter case kept), RA set, RD and CD copied, the
    answer and authority sections in order (no shuffling, so a cached copy equals a fresh
    rendering), and our OPT record when the client sent one. A response larger than
    ``limit`` becomes the header with TC, the question and the OPT record (RFC 2181 §9),
    and the client retries over TCP."""
    wire = query.wire
    end = query.question_end
    flags = (
        FLAG_QR
        | _FLAG_RA
        | (int.from_bytes(wire[2:4], "big") & _FLAGS_COPIED)
        | (int(result.rcode) & 0xF)
    )
    answer, authority = result.answer, result.authority
    if result.security is Security.SECURE and (query.edns_do or wire[3] & _FLAG_AD):
        flags |= _FLAG_AD  # RFC 6840 §5.7-5.8: only to clients that asked for it
    if query.edns_do and result.proof:
        answer, authority = with_proof(result)
    out = bytearray(wire[0:2])
    out += flags.to_bytes(2, "big")
    out += bytes(8)  # the counts, filled in below
    out += wire[12:end]
    table: dict[bytes, int] = {}
    _remember_suffixes(table, wire[12 : end - 4].lower(), 12)
    answers = _put_rrsets(out, answer, table)
    authorities = _put_rrsets(out, authority, table)
    additional = 0
    if query.edns_do is not None:
        out += _opt_record(query, result)
        additional = 1
    out[4:12] = _COUNTS.pack(1, answers, authorities, additional)
    if len(out) > limit:
        return truncated_reply(bytes(out), end)
    return bytes(out)
