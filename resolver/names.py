"""The one rule for names that people type, and the stub resolver's search list.

The rule (used by the command line, the config file and the zone files alike):

* a name that ends with a dot is **absolute**: ``example.com.`` is exactly that name;
* a name without a trailing dot is **relative** to an origin and the origin is appended:
  in a zone file the origin is ``$ORIGIN`` (or the zone's name), in the config file and on
  the ``serve``/``lab`` command lines it is the root, so ``example.com`` there means
  ``example.com.``.

The ``query`` command is a stub client, so like glibc reading resolv.conf (resolv.conf(5))
it treats a relative name as a candidate for the search list: see :func:`search_candidates`.
"""

from __future__ import annotations

from typing import NewType

import dns.exception
import dns.name

from resolver.memo import remember


class InvalidNameError(ValueError):
    """A name a person typed is not a valid domain name."""


def parse_name(text: str, origin: dns.name.Name = dns.name.root) -> dns.name.Name:
    """Turn typed text into an absolute name (RFC 1035 §5.1 presentation rules).

    A trailing dot makes the text absolute; otherwise ``origin`` is appended.
    """
    if not text or text.strip() != text:
        raise InvalidNameError(f"not a domain name: {text!r}")
    try:
        return dns.name.from_text(text, origin=origin)
    except dns.exception.DNSException as exc:  # EmptyLabel, LabelTooLong, NameTooLong...
        raise InvalidNameError(f"not a domain name: {text!r} ({exc})") from exc


def search_candidates(
    text: str, search: list[dns.name.Name] | tuple[dns.name.Name, ...], ndots: int
) -> list[dns.name.Name]:
    """The names a stub tries for ``text``, in order, as glibc applies resolv.conf.

    * an absolute name (trailing dot) is tried alone;
    * a name with at least ``ndots`` dots is tried as-is first, then with each search domain;
    * a name with fewer dots is tried with each search domain first, then as-is.
    """
    relative = dns.name.from_text(text, origin=None)
    if relative.is_absolute():
        return [relative]
    as_is = relative.derelativize(dns.name.root)
    with_search = [relative.derelativize(domain) for domain in search]
    dots = text.rstrip(".").count(".")
    ordered = [as_is, *with_search] if dots >= ndots else [*with_search, as_is]
    unique: list[dns.name.Name] = []
    for name in ordered:
        if name not in unique:
            unique.append(name)
    return unique


def name_wire(name: dns.name.Name) -> bytes:
    """The uncompressed wire form of an absolute name (RFC 1035 §3.1), letter case kept."""
    wire = name.to_wire()
    assert wire is not None
    return wire


NameKey = NewType("NameKey", bytes)
"""A name as every cache, zone cut and comparison keys it: the uncompressed wire form,
lower-cased (RFC 4343: names compare without regard to ASCII case). Lowering the whole wire
form is safe: label lengths are at most 63, below ``A``.

A ``NewType`` over ``bytes`` rather than a class: at run time a key *is* its bytes (no
wrapper object per key, hashed and compared in C, sliced to a parent by dropping the first
label, the leading bytes of an answer-cache key as they are), while mypy keeps it apart
from wire names whose letter case is kept (``*_wire``) and from dnspython names. The three
forms meet only in :func:`name_key` (name to key), :func:`key_of_wire` (wire to key) and
``resolver.records.name_from_wire`` (wire or key to name)."""


def key_of_wire(wire: bytes) -> NameKey:
    """The key of an uncompressed wire name, letter case as received."""
    return NameKey(wire.lower())


_KEYS: dict[int, tuple[dns.name.Name, NameKey]] = {}
_KEYS_MAX = 4096


def name_key(name: dns.name.Name) -> NameKey:
    """The key of a dnspython name.

    Memoised by object identity: a resolution asks for the same few name objects many times,
    and building the wire form walks every label in Python (about 0.8 µs against 0.12 µs for
    the memo; measured with timeit on 'www.Example.lab.'). The memo keeps each name alive
    while it is remembered, so an identity is never reused under it."""
    remembered = _KEYS.get(id(name))
    if remembered is not None and remembered[0] is name:
        return remembered[1]
    key = NameKey(name_wire(name).lower())
    remember_name_key(name, key)
    return key


def remember_name_key(name: dns.name.Name, key: bytes) -> None:
    """Tell :func:`name_key` the key of a name just built from it (or from its wire form)."""
    remember(_KEYS, id(name), (name, NameKey(key)), _KEYS_MAX)


def is_at_or_below(key: NameKey, zone_key: NameKey) -> bool:
    """True when ``key`` is ``zone_key`` or a name below it (RFC 9499 "in-bailiwick"):
    the zone's labels end the name, on a label boundary."""
    if not key.endswith(zone_key):
        return False
    boundary = len(key) - len(zone_key)
    offset = 0
    while offset < boundary:
        offset += 1 + key[offset]
    return offset == boundary
