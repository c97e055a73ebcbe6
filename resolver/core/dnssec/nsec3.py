"""NSEC3 hashes and spans (RFC 5155 §5, §8.3): the two primitives both a reply's proof
(:mod:`.denial`) and RFC 8198 synthesis from cached NSEC3s (:mod:`.aggressive`) use, so
a hash computed to find cached records is charged once and reused by the proof check."""

from __future__ import annotations

import base64

import dns.dnssec
import dns.name
from dns.rdtypes.ANY.NSEC3 import NSEC3

from resolver.limits import ValidationWork

_NSEC3_SHA1 = 1

Nsec3Hashes = dict[tuple[dns.name.Name, bytes, int], str]
"""NSEC3 hashes computed (and charged) for one client query, by (name, salt, iterations)."""


def nsec3_hash(
    name: dns.name.Name, salt: bytes, iterations: int, work: ValidationWork, hashes: Nsec3Hashes
) -> str | None:
    """The SHA-1 NSEC3 hash of ``name`` (RFC 5155 §5), from ``hashes`` or computed and
    charged to ``work`` (CVE-2023-50868); None when the budget is spent."""
    key = (name, salt, iterations)
    found = hashes.get(key)
    if found is None:
        if not work.spend_nsec3_hash():
            return None
        found = hashes[key] = dns.dnssec.nsec3_hash(name, salt, iterations, _NSEC3_SHA1)
    return found


def nsec3_covers(label: str, record: NSEC3, hashed: str) -> bool:
    """Whether the NSEC3 at hash ``label`` covers ``hashed`` (RFC 5155 §8.3; the last wraps)."""
    nxt = base64.b32hexencode(record.next).decode("ascii")
    return (label < hashed < nxt) if label < nxt else (hashed > label or hashed < nxt)
