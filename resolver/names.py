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
    """The uncompressed wire form of an absolute name (RFC 1035 §3.1)."""
    wire = name.to_wire()
    assert wire is not None
    return wire


_LOWERED: dict[int, tuple[dns.name.Name, bytes]] = {}
_LOWERED_MAX = 4096


def lowered_wire(name: dns.name.Name) -> bytes:
    """The name lower-cased in wire form (RFC 4343), the key every cache uses.

    Memoised by object identity: a resolution asks for the same few name objects many times,
    and hashing a dnspython name walks every letter in Python. The memo keeps each name
    alive while it is remembered, so an identity is never reused under it. Lowering the
    whole wire form is safe: label lengths are at most 63, below ``A``."""
    remembered = _LOWERED.get(id(name))
    if remembered is not None and remembered[0] is name:
        return remembered[1]
    wire = name_wire(name).lower()
    remember_lowered(name, wire)
    return wire


def remember_lowered(name: dns.name.Name, wire: bytes) -> None:
    """Tell :func:`lowered_wire` the lower-cased wire form of a name just built from it."""
    remember(_LOWERED, id(name), (name, wire), _LOWERED_MAX)


def is_at_or_below(name_key: bytes, zone_key: bytes) -> bool:
    """True when ``name_key`` is ``zone_key`` or a name below it, both lower-cased wire
    names (RFC 9499 "in-bailiwick"): the zone's labels end the name, on a label boundary."""
    if not name_key.endswith(zone_key):
        return False
    boundary = len(name_key) - len(zone_key)
    offset = 0
    while offset < boundary:
        offset += 1 + name_key[offset]
    return offset == boundary
