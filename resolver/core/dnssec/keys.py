"""The validator's settings and its key cache (Unbound's ``key_cache``): what is known of
each zone's DNSKEY RRset, so the next name in a known zone costs one lookup, not new
DNSKEY and DS fetches nor their verification.

An entry is a zone's verdict (RFC 4035 §4.3) and, when secure, its trusted keys: secure
(the DNSKEY RRset verified from a DS or a trust anchor), insecure (a proven unsigned
delegation above or at the zone, or only unsupported algorithms), bogus (kept only
``bogus_ttl_s``, as Unbound's ``val-bogus-ttl``, so a broken zone is not asked again at
every query yet recovers quickly). The entry lives as long as the DNSKEY RRset's TTL
(capped by its RRSIG's validity, RFC 4035 §5.3.3) or the proof that made it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import dns.name
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from resolver.core.dnssec.anchor import TrustAnchor
from resolver.core.dnssec.security import Verdict

KEY_CACHE_ENTRIES = 10_000
"""Zones whose key verdicts are kept; least recently used dropped first (Unbound's
``key-cache-size`` is 4 MB, a few thousand zones)."""

VAL_BOGUS_TTL_S = 60
"""How long a bogus verdict is kept (Unbound's ``val-bogus-ttl``: 60 s)."""

_ROOT = dns.name.root

MAX_KEY_TTL = 86400
"""No key verdict outlives a day (Unbound's ``cache-max-ttl``)."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """What one zone's DNSKEY RRset is worth: the verdict, the trusted keys when secure,
    and until when it holds."""

    verdict: Verdict
    keys: tuple[DNSKEY, ...]
    expires_at: float


@dataclass(slots=True)
class Validator:
    """The validation settings every resolution of one server shares (passed by the
    server through the mesh; the core never sees the configuration), and the key cache."""

    anchors: dict[dns.name.Name, TrustAnchor]
    bogus_ttl_s: float = VAL_BOGUS_TTL_S
    negative_anchors: frozenset[dns.name.Name] = frozenset()
    """Zones below which nothing is validated (RFC 7646 negative trust anchors)."""
    max_entries: int = KEY_CACHE_ENTRIES
    aggressive_nsec: bool = True
    """Synthesise negative answers from cached secure NSECs (RFC 8198; Unbound's
    ``aggressive-nsec``, on by default)."""
    enabled: bool = True
    """False for ``dnssec = false``, given no anchors: nothing is validated, never AD, yet
    the resolutions still ask with DO and keep the RRSIGs and NSEC/NSEC3 records (as the
    insecure state) for clients that set DO, as Unbound's ``module-config: "iterator"``
    does; nothing is counted."""
    _keys: OrderedDict[dns.name.Name, KeyEntry] = field(default_factory=OrderedDict)
    _bogus: OrderedDict[tuple[bytes, int], tuple[Verdict, float]] = field(
        default_factory=OrderedDict
    )
    """Bogus answers by (name key, type), kept ``bogus_ttl_s`` (Unbound's val-bogus-ttl):
    a client asking again gets SERVFAIL at once instead of a new fetch and verification."""
    verdicts: dict[str, int] = field(default_factory=dict)
    """Answers per validation state (``secure``, ``bogus``...), counted as resolutions end."""
    bogus_reasons: dict[str, int] = field(default_factory=dict)
    """Bogus answers by Extended DNS Error (``DNSSEC_BOGUS``, ``SIGNATURE_EXPIRED``...)."""
    synthesised: dict[str, int] = field(default_factory=dict)
    """Negative answers made from cached secure NSEC records without asking (RFC 8198), by
    kind (``nxdomain``, ``nodata``): what aggressive use spares the authorities."""

    def keys_of(self, zone: dns.name.Name, now: float) -> KeyEntry | None:
        """The live entry of ``zone``, or None."""
        entry = self._keys.get(zone)
        if entry is None:
            return None
        if entry.expires_at <= now:
            del self._keys[zone]
            return None
        self._keys.move_to_end(zone)
        return entry

    def remember(
        self,
        zone: dns.name.Name,
        verdict: Verdict,
        keys: tuple[DNSKEY, ...],
        ttl: float,
        now: float,
    ) -> KeyEntry:
        """Keep ``zone``'s verdict for ``ttl`` seconds (``bogus_ttl_s`` when bogus)."""
        if verdict.is_bogus:
            ttl = self.bogus_ttl_s
        entry = KeyEntry(verdict, keys, now + min(max(ttl, 0), MAX_KEY_TTL))
        self._keys[zone] = entry
        self._keys.move_to_end(zone)
        while len(self._keys) > self.max_entries:
            self._keys.popitem(last=False)
        return entry

    def anchor_at(self, zone: dns.name.Name) -> TrustAnchor | None:
        """The trust anchor of exactly ``zone``, if one is configured."""
        return self.anchors.get(zone)

    def is_covered(self, name: dns.name.Name) -> bool:
        """Whether a trust anchor covers ``name`` and no negative trust anchor exempts it
        (RFC 4035 §4.3: without an anchor the state is indeterminate; RFC 7646 §2)."""
        if not self.negative_anchors and _ROOT in self.anchors:
            return True  # the usual case, asked several times per validated answer
        if any(name.is_subdomain(nta) for nta in self.negative_anchors):
            return False
        return any(name.is_subdomain(zone) for zone in self.anchors)

    def count(self, verdict: Verdict) -> None:
        """Count one validated answer by state, and a bogus one by its reason."""
        if not self.enabled:
            return
        state = verdict.state.value
        self.verdicts[state] = self.verdicts.get(state, 0) + 1
        if verdict.is_bogus:
            reason = verdict.code.name if verdict.code is not None else "DNSSEC_BOGUS"
            self.bogus_reasons[reason] = self.bogus_reasons.get(reason, 0) + 1

    def count_synthesised(self, rcode: int) -> None:
        """Count one negative answer synthesised from the NSEC cache (RFC 8198 §5)."""
        kind = "nxdomain" if rcode == 3 else "nodata"  # RCODE 3: NXDOMAIN (RFC 1035)
        self.synthesised[kind] = self.synthesised.get(kind, 0) + 1

    def remember_bogus(self, key: bytes, qtype: int, verdict: Verdict, now: float) -> None:
        """Keep a bogus answer's verdict ``bogus_ttl_s`` seconds."""
        self._bogus[(key, qtype)] = (verdict, now + self.bogus_ttl_s)
        while len(self._bogus) > self.max_entries:
            self._bogus.popitem(last=False)

    def bogus_answer(self, key: bytes, qtype: int, now: float) -> Verdict | None:
        """The verdict of a bogus answer still kept for this question, or None."""
        if not self._bogus:
            return None
        found = self._bogus.get((key, qtype))
        if found is None:
            return None
        if found[1] <= now:
            del self._bogus[(key, qtype)]
            return None
        return found[0]

    def flush(self) -> None:
        self._keys.clear()
        self._bogus.clear()

    def __len__(self) -> int:
        return len(self._keys)
