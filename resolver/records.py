"""RRsets whose records stay in wire form, and a reader of upstream replies that builds them.

Resolving a never-seen name handles two or three upstream replies; dnspython spends about
150 µs building objects for each (a thousand function calls for three records). The core,
the caches and the renderer work on :class:`WireRRset` instead: an owner name, a type, a TTL
and each record's uncompressed wire form (RFC 1035 §3.2.1), the form the caches store and
the renderer writes. dnspython stays for what is rare: replies this reader does not know
(it falls back to ``dns.message.from_wire``), presentation text, and the lab's servers.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from typing import NamedTuple

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.memo import remember
from resolver.names import NameKey, key_of_wire, name_key, name_wire
from resolver.wire import HEADER_LENGTH, RR_FIXED, TYPE_OPT, read_header

_UINT32 = struct.Struct("!I")

# Types whose records hold names that a server may compress (RFC 3597 §4: only the types of
# RFC 1035 and a few of their era; newer types never compress). The reader expands them so
# each stored record stands alone.
_NAME_AT_0 = frozenset({2, 3, 4, 5, 7, 8, 9, 12, 39})  # NS MD MF CNAME MB MG MR PTR DNAME
_NAME_AFTER_16_BITS = frozenset({15, 18, 21, 36})  # MX AFSDB RT KX
_TWO_NAMES = frozenset({14, 17})  # MINFO RP
_FALL_BACK_TYPES = frozenset({24, 26, 30, 35, 38, 250})  # SIG PX NXT NAPTR A6 TSIG
_FIXED_LENGTH = {1: 4, 28: 16}  # A, AAAA
_SINGLETONS = frozenset({5, 6, 30, 39, 47})  # CNAME SOA NXT DNAME NSEC: one record each

_ASSUMED_CLASS = dns.rdataclass.IN


class WireRRset:
    """One RRset: owner, type, TTL and each record's uncompressed wire form, class IN.

    Equality ignores the TTL and record order, as dnspython's RRsets do. Iterating yields
    dnspython rdata objects, built on demand (presentation text, tests).
    """

    __slots__ = ("_name", "_owner", "owner_key", "rdatas", "rdtype", "ttl")

    def __init__(
        self,
        name: dns.name.Name | None,
        rdtype: int,
        ttl: int,
        rdatas: tuple[bytes, ...],
        owner_key: NameKey | None = None,
        *,
        owner: bytes | None = None,
    ) -> None:
        """An RRset owned by ``name``, or by the wire name ``owner`` (letter case as received)
        whose dnspython name is built only if asked for."""
        self._name = name
        self._owner = owner
        self.rdtype = rdtype
        self.ttl = ttl
        self.rdatas = rdatas
        if owner_key is None:
            assert name is not None or owner is not None
            owner_key = name_key(name) if name is not None else key_of_wire(owner)  # type: ignore[arg-type]
        self.owner_key: NameKey = owner_key
        """The owner lower-cased in wire form (RFC 4343): what names are compared by."""

    @property
    def name(self) -> dns.name.Name:
        if self._name is None:
            assert self._owner is not None
            self._name = name_from_wire(self._owner)
        return self._name

    @property
    def owner_wire(self) -> bytes:
        """The owner in wire form, letter case as received."""
        if self._owner is None:
            self._owner = name_wire(self.name)
        return self._owner

    @classmethod
    def from_rrset(cls, rrset: dns.rrset.RRset) -> WireRRset:
        return cls(rrset.name, rrset.rdtype, rrset.ttl, tuple(rd.to_wire() for rd in rrset))

    def to_rrset(self) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(self.name, self.ttl, list(self))

    def to_text(self) -> str:
        return str(self.to_rrset().to_text())

    def with_ttl(self, ttl: int) -> WireRRset:
        return WireRRset(
            self._name, self.rdtype, ttl, self.rdatas, self.owner_key, owner=self._owner
        )

    def target_keys(self) -> set[NameKey]:
        """The targets of an NS (or CNAME, PTR, DNAME) RRset, lower-cased in wire form."""
        return {key_of_wire(rdata) for rdata in self.rdatas}

    def target(self) -> dns.name.Name:
        """The first record's target (a CNAME has one record, RFC 2181 §10.1)."""
        return name_from_wire(self.rdatas[0])

    def target_key(self) -> NameKey:
        """The key of :meth:`target`."""
        return key_of_wire(self.rdatas[0])

    def addresses(self) -> list[str]:
        """The addresses of an A or AAAA RRset, as text."""
        return [_address_text(rdata) for rdata in self.rdatas]

    def soa_minimum(self) -> int:
        """The MINIMUM field of an SOA record: its last four bytes (RFC 1035 §3.3.13)."""
        minimum: int = _UINT32.unpack_from(self.rdatas[0], len(self.rdatas[0]) - 4)[0]
        return minimum

    def __len__(self) -> int:
        return len(self.rdatas)

    def __iter__(self) -> Iterator[dns.rdata.Rdata]:
        kind = dns.rdatatype.RdataType.make(self.rdtype)
        for rdata in self.rdatas:
            yield dns.rdata.from_wire(_ASSUMED_CLASS, kind, rdata, 0, len(rdata))

    def __getitem__(self, index: int) -> dns.rdata.Rdata:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WireRRset):
            return NotImplemented
        return (
            self.name == other.name
            and self.rdtype == other.rdtype
            and set(self.rdatas) == set(other.rdatas)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<WireRRset {self.to_text()!r}>"


_MEMO_MAX = 4096
_ADDRESSES: dict[bytes, str] = {}


def _address_text(rdata: bytes) -> str:
    """An A or AAAA record's address as text, memoised (name servers' addresses come back
    in every referral and every cached zone cut)."""
    text = _ADDRESSES.get(rdata)
    if text is None:
        if len(rdata) == 4:
            text = f"{rdata[0]}.{rdata[1]}.{rdata[2]}.{rdata[3]}"
        else:
            text = str(ipaddress.IPv6Address(rdata))
        remember(_ADDRESSES, rdata, text, _MEMO_MAX)
    return text


_NAMES: dict[bytes, dns.name.Name] = {}


def name_from_wire(wire: bytes, *, keep: bool = True) -> dns.name.Name:
    """The dnspython name for an uncompressed wire name, memoised (the same delegations and
    name servers come back in every reply) unless ``keep`` is False (clients' names)."""
    name = _NAMES.get(wire)
    if name is None:
        labels = []
        offset = 0
        while True:
            length = wire[offset]
            labels.append(wire[offset + 1 : offset + 1 + length])
            if length == 0:
                break
            offset += 1 + length
        name = dns.name.Name(labels)
        if keep:
            remember(_NAMES, wire, name, _MEMO_MAX)
    return name


def read_name(wire: bytes, offset: int) -> tuple[bytes, int]:
    """A possibly compressed name at ``offset`` (RFC 1035 §4.1.4): its uncompressed wire form
    (letter case kept) and the offset just past it. Pointers must point backwards, so a
    malicious loop cannot run. ValueError when the name is cut short or invalid."""
    size = len(wire)
    parts: list[bytes] = []
    resume = -1
    total = 0
    while True:
        if offset >= size:
            raise ValueError("name runs past the end")
        length = wire[offset]
        if length >= 0xC0:
            if offset + 1 >= size:
                raise ValueError("pointer cut short")
            pointer = ((length & 0x3F) << 8) | wire[offset + 1]
            if pointer >= offset:
                raise ValueError("compression pointer does not point backwards")
            if resume < 0:
                resume = offset + 2
            offset = pointer
            continue
        if length > 63:
            raise ValueError("unknown label type")
        total += 1 + length
        if total > 255:
            raise ValueError("name longer than 255 bytes")
        if length == 0:
            parts.append(b"\x00")
            return b"".join(parts), resume if resume >= 0 else offset + 1
        parts.append(wire[offset : offset + 1 + length])
        offset += 1 + length


def _expand_rdata(wire: bytes, start: int, end: int, rdtype: int) -> bytes:
    """One record's data with every name uncompressed (RFC 3597 §4); ValueError when its
    length does not match what its type holds."""
    if rdtype in _NAME_AT_0:
        name, offset = read_name(wire, start)
        if offset != end:
            raise ValueError("record data longer than its name")
        return name
    if rdtype == 6:  # SOA: MNAME, RNAME, then five 32-bit fields
        mname, offset = read_name(wire, start)
        rname, offset = read_name(wire, offset)
        if offset + 20 != end:
            raise ValueError("SOA fields of the wrong length")
        return mname + rname + wire[offset:end]
    if rdtype in _NAME_AFTER_16_BITS or rdtype == 33:  # ... and SRV after 48 bits
        fixed = 6 if rdtype == 33 else 2
        name, offset = read_name(wire, start + fixed)
        if offset != end or start + fixed > end:
            raise ValueError("record data of the wrong length")
        return wire[start : start + fixed] + name
    if rdtype in _TWO_NAMES:
        first, offset = read_name(wire, start)
        second, offset = read_name(wire, offset)
        if offset != end:
            raise ValueError("record data of the wrong length")
        return first + second
    if rdtype in _FALL_BACK_TYPES:
        raise ValueError("a type this reader leaves to dnspython")
    fixed_length = _FIXED_LENGTH.get(rdtype)
    if fixed_length is not None and end - start != fixed_length:
        raise ValueError("address of the wrong length")
    return wire[start:end]


class Reply(NamedTuple):
    """An upstream reply as the core reads it: flags, RCODE (with the EDNS extension,
    RFC 6891 §6.1.3) and the three record sections as RRsets of class IN."""

    flags: int
    rcode: int
    answer: list[WireRRset]
    authority: list[WireRRset]
    additional: list[WireRRset]
    edns: bool

    @classmethod
    def from_message(cls, message: dns.message.Message) -> Reply:
        """The same view of a reply dnspython parsed (the fallback; tests)."""

        def section(rrsets: list[dns.rrset.RRset]) -> list[WireRRset]:
            return [WireRRset.from_rrset(r) for r in rrsets if r.rdclass == _ASSUMED_CLASS]

        return cls(
            message.flags,
            message.rcode(),
            section(message.answer),
            section(message.authority),
            section(message.additional),
            message.edns >= 0,
        )


def _read_reply(wire: bytes, question_end: int | None = None) -> Reply:
    """The reply's sections read straight from the bytes (RFC 1035 §4.1); ValueError for
    anything this reader does not handle. Records of one owner and type in one section form
    one RRset with the smallest TTL, duplicates dropped, as dnspython does (RFC 2181 §5).
    ``question_end``, when the caller has already matched the reply's one question against
    its query, is where the question ends (it is not read again)."""
    header = read_header(wire)
    if header is None:
        raise ValueError("no header")
    _id, flags, qdcount, ancount, nscount, arcount = header
    offset = HEADER_LENGTH
    if question_end is not None and qdcount == 1:
        offset = question_end
    else:
        for _ in range(qdcount):
            _name, offset = read_name(wire, offset)
            offset += 4
    size = len(wire)
    if offset > size:
        raise ValueError("question cut short")
    rcode = flags & 0xF
    edns = False
    sections: list[list[WireRRset]] = []
    for count in (ancount, nscount, arcount):
        groups: dict[tuple[bytes, int], tuple[bytes, list[int], list[bytes]]] = {}
        for _ in range(count):
            owner, offset = read_name(wire, offset)
            if offset + 10 > size:
                raise ValueError("record cut short")
            rdtype, rdclass, ttl, rdlength = RR_FIXED.unpack_from(wire, offset)
            offset += 10
            end = offset + rdlength
            if end > size:
                raise ValueError("record data cut short")
            if rdtype == TYPE_OPT:
                if edns or owner != b"\x00" or len(sections) != 2:
                    raise ValueError("misplaced OPT record")
                edns = True
                rcode |= (ttl >> 24) << 4  # RFC 6891 §6.1.3: the upper eight bits
                offset = end
                continue
            rdata = _expand_rdata(wire, offset, end, rdtype)
            offset = end
            if rdclass != _ASSUMED_CLASS:
                continue  # this resolver asks class IN only; anything else is noise
            if ttl > 0x7FFFFFFF:
                ttl = 0  # RFC 2181 §8: a TTL with the top bit set means zero
            group_key = (owner.lower(), rdtype)
            group = groups.get(group_key)
            if group is None:
                groups[group_key] = (owner, [ttl], [rdata])
                continue
            group[1].append(ttl)
            if rdtype in _SINGLETONS:
                group[2][:] = [rdata]  # RFC 2181 §10.1: one record; the last one wins
            elif rdata not in group[2]:
                group[2].append(rdata)
        sections.append(
            [
                WireRRset(None, rdtype, min(ttls), tuple(rdatas), NameKey(key), owner=owner)
                for (key, rdtype), (owner, ttls, rdatas) in groups.items()
            ]
        )
    if offset != size:
        raise ValueError("bytes after the last record")
    return Reply(flags, rcode, sections[0], sections[1], sections[2], edns)


def read_reply(wire: bytes, question_end: int | None = None) -> Reply:
    """An upstream reply read without dnspython when it holds nothing unusual, else through
    ``dns.message.from_wire``. ValueError (or a dnspython error) when neither can read it.
    ``question_end``: as for :func:`_read_reply`."""
    try:
        return _read_reply(wire, question_end)
    except (ValueError, IndexError, struct.error):
        try:
            return Reply.from_message(dns.message.from_wire(wire))
        except dns.exception.DNSException as exc:
            raise ValueError(f"malformed reply: {exc}") from exc
