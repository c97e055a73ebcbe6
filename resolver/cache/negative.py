"""Negative answers (RFC 2308) and recent resolution failures (RFC 9520).

NXDOMAIN is kept per name, NODATA per name and type, each for the SOA's negative TTL
(min(SOA TTL, SOA MINIMUM), already computed by the classifier) capped by a setting. A name
below a cached NXDOMAIN is NXDOMAIN too (RFC 8020) only when that NXDOMAIN was DNSSEC-secure,
as Unbound's ``harden-below-nxdomain``: without validation one forged NXDOMAIN would erase a
whole subtree. A validating resolution keeps its secure or insecure negative answers here
with their state and proof (NSEC/NSEC3 and RRSIGs), so the next validated question for
them is a cache lookup and a DO client still gets the proof; bogus ones are the validator's
(``val_bogus_ttl_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.lru import BoundedCache, SizedLRU, owner_in
from resolver.cache.rrset import key_of
from resolver.model import Security
from resolver.names import NameKey, name_key
from resolver.records import WireRRset

MAX_NEGATIVE_TTL = 3600
"""Unbound's ``cache-max-negative-ttl`` default."""

FAILURE_BACKOFF_MIN_S = 1.0
FAILURE_BACKOFF_MAX_S = 300.0
"""RFC 9520 §3.2: cache resolution failures for at least 1 s, at most 5 minutes."""

_ENTRY_OVERHEAD = 300
_NXDOMAIN_TYPE = 0  # the key type for "the whole name does not exist"


@dataclass(slots=True)
class NegativeEntry:
    soa_owner: bytes
    soa_rdata: bytes
    expires_at: float
    secure: bool
    state: Security | None = None
    """The validation state, None when no validation judged the answer."""
    proof: tuple[WireRRset, ...] = ()

    @property
    def cost(self) -> int:
        proof = sum(len(r.owner_key) + sum(map(len, r.rdatas)) + 60 for r in self.proof)
        return _ENTRY_OVERHEAD + len(self.soa_owner) + len(self.soa_rdata) + proof


def _entry_cost(entry: NegativeEntry) -> int:
    return entry.cost


@dataclass(frozen=True, slots=True)
class NegativeAnswer:
    rcode: dns.rcode.Rcode
    soa: WireRRset
    state: Security | None = None
    proof: tuple[WireRRset, ...] = ()


class NegativeCache(BoundedCache):
    def __init__(
        self,
        max_bytes: int,
        *,
        max_ttl: int = MAX_NEGATIVE_TTL,
        harden_below_nxdomain: bool = True,
    ) -> None:
        self._entries: SizedLRU[bytes, NegativeEntry] = SizedLRU(max_bytes, _entry_cost)
        self.max_ttl = max_ttl
        self.harden_below_nxdomain = harden_below_nxdomain
        self._secure_stored = 0
        """Secure NXDOMAINs stored so far: while there are none, no name needs its
        ancestors looked up (RFC 8020)."""

    def put(
        self,
        name: dns.name.Name,
        qtype: int,
        rcode: dns.rcode.Rcode,
        soa: WireRRset,
        now: float,
        *,
        secure: bool = False,
        key: NameKey | None = None,
        state: Security | None = None,
        proof: tuple[WireRRset, ...] = (),
        expires_at: float | None = None,
    ) -> bool:
        """Remember NXDOMAIN for ``name`` or NODATA for ``name``/``qtype``; ``key`` is
        ``name``'s key when the caller carries it. A validated answer comes with its
        ``state`` and ``proof``, its lifetime capped at ``expires_at`` (the proof's
        signatures expire, RFC 4035 §5.3.3) and at the proof's TTLs (RFC 9077)."""
        ttl = min(soa.ttl, self.max_ttl, *(r.ttl for r in proof))
        if expires_at is not None:
            ttl = min(ttl, int(expires_at - now))
        secure = secure or state is Security.SECURE
        if ttl <= 0 or not soa.rdatas:
            return False
        kind = _NXDOMAIN_TYPE if rcode == dns.rcode.NXDOMAIN else qtype
        entry_key = key_of(name_key(name) if key is None else key, kind)
        soa_owner = soa.owner_wire
        soa_rdata = soa.rdatas[0]
        entry = NegativeEntry(soa_owner, soa_rdata, now + ttl, secure, state, proof)
        self._entries.put(entry_key, entry)
        self._secure_stored += secure
        return True

    def _live(self, key: bytes, now: float) -> NegativeEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._entries.pop(key)
            return None
        return entry

    def get(
        self,
        name: dns.name.Name,
        qtype: int,
        now: float,
        *,
        key: NameKey | None = None,
        validated: bool = False,
    ) -> NegativeAnswer | None:
        """NXDOMAIN or NODATA for the question, with the SOA's TTL counting down; ``key`` is
        ``name``'s key when the caller carries it. With ``validated``, only an answer a
        validation judged (RFC 4035 §4.5)."""
        owner_key = name_key(name) if key is None else key
        entry = self._live(key_of(owner_key, _NXDOMAIN_TYPE), now)
        if entry is not None and (entry.state is not None or not validated):
            return self._answer(dns.rcode.NXDOMAIN, entry, now)
        entry = self._live(key_of(owner_key, qtype), now)
        if entry is not None and (entry.state is not None or not validated):
            return self._answer(dns.rcode.NOERROR, entry, now)
        if self.harden_below_nxdomain and self._secure_stored:
            ancestor: bytes = owner_key
            while ancestor != b"\x00":
                ancestor = ancestor[1 + ancestor[0] :]
                entry = self._live(key_of(ancestor, _NXDOMAIN_TYPE), now)
                if entry is not None and entry.secure:  # RFC 8020 §2, secure only
                    return self._answer(dns.rcode.NXDOMAIN, entry, now)
        return None

    @staticmethod
    def _answer(rcode: dns.rcode.Rcode, entry: NegativeEntry, now: float) -> NegativeAnswer:
        ttl = max(0, math.ceil(entry.expires_at - now))
        soa = WireRRset(None, dns.rdatatype.SOA, ttl, (entry.soa_rdata,), owner=entry.soa_owner)
        if not entry.proof:
            return NegativeAnswer(rcode, soa, entry.state)
        proof = tuple(r.with_ttl(min(r.ttl, ttl)) for r in entry.proof)
        return NegativeAnswer(rcode, soa, entry.state, proof)

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        return self._entries.remove_where(owner_in(name, subtree))


@dataclass(slots=True)
class _Failure:
    until: float
    backoff_s: float
    zone: str
    reason: str


class FailureCache:
    """Questions that just failed, with a backoff that doubles while the same zone keeps
    failing (RFC 9520 §3.2), so a broken zone is not hammered by every client retry."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._failures: dict[bytes, _Failure] = {}
        self.max_entries = max_entries

    def record(
        self,
        name: dns.name.Name,
        qtype: int,
        zone: str,
        reason: str,
        now: float,
        *,
        key: NameKey | None = None,
    ) -> None:
        """Note that ``name``/``qtype`` (``name`` keyed ``key`` when the caller has it) just
        failed at ``zone``, for ``reason``."""
        entry_key = key_of(name_key(name) if key is None else key, qtype)
        previous = self._failures.get(entry_key)
        backoff = FAILURE_BACKOFF_MIN_S
        if previous is not None and previous.zone == zone:
            backoff = min(previous.backoff_s * 2, FAILURE_BACKOFF_MAX_S)
        if len(self._failures) >= self.max_entries:
            self._failures = {k: f for k, f in self._failures.items() if f.until > now}
            if len(self._failures) >= self.max_entries:
                return
        self._failures[entry_key] = _Failure(now + backoff, backoff, zone, reason)

    def get(
        self, name: dns.name.Name, qtype: int, now: float, *, key: NameKey | None = None
    ) -> str | None:
        """The reason of a failure still in its backoff window, or None; ``key`` is
        ``name``'s key when the caller carries it."""
        failure = self._failures.get(key_of(name_key(name) if key is None else key, qtype))
        if failure is None or failure.until <= now:
            return None
        return failure.reason

    def flush(self) -> int:
        count = len(self._failures)
        self._failures.clear()
        return count

    def __len__(self) -> int:
        return len(self._failures)
