"""The caches a resolution reads and writes, as one value handed to the core."""

from __future__ import annotations

from dataclasses import dataclass, field

from resolver.cache.infra import InfraCache
from resolver.cache.negative import MAX_NEGATIVE_TTL, FailureCache, NegativeCache
from resolver.cache.nsec import NsecCache
from resolver.cache.rrset import RRsetCache, TtlBounds

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Caches:
    rrsets: RRsetCache = field(default_factory=lambda: RRsetCache(DEFAULT_CACHE_BYTES))
    negative: NegativeCache = field(default_factory=lambda: NegativeCache(DEFAULT_CACHE_BYTES // 4))
    failures: FailureCache = field(default_factory=FailureCache)
    infra: InfraCache = field(default_factory=InfraCache)
    nsec: NsecCache = field(default_factory=NsecCache)
    """Secure NSEC chains for aggressive negative answers (RFC 8198)."""

    @classmethod
    def sized(
        cls,
        rrset_bytes: int,
        bounds: TtlBounds | None = None,
        *,
        max_negative_ttl: int = MAX_NEGATIVE_TTL,
    ) -> Caches:
        return cls(
            rrsets=RRsetCache(rrset_bytes, bounds),
            negative=NegativeCache(max(rrset_bytes // 4, 1), max_ttl=max_negative_ttl),
        )
