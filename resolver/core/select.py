"""Choosing the next server to ask (Unbound ``iterator/iter_utils.c``: RTT banding).

Servers whose effective RTT is within :data:`RTT_BAND_MS` of the best are equally good and
one is chosen at random: fast servers are preferred, unknown servers still get explored,
and servers backed off after timeouts or known lame for the zone are avoided while any
other remains.
"""

from __future__ import annotations

import random

from resolver.cache.infra import InfraCache
from resolver.names import NameKey

RTT_BAND_MS = 400.0
"""Unbound's RTT_BAND: servers this close to the best are chosen among at random."""


def select_server(
    candidates: list[str], zone: NameKey, infra: InfraCache, rng: random.Random, now: float
) -> str:
    """One of ``candidates`` (not empty) for a query to ``zone`` (lower-cased wire form)."""
    if len(candidates) == 1:
        return candidates[0]  # nothing to choose between (lame or not, it is all there is)
    usable = [s for s in candidates if not infra.is_lame(s, zone, now)] or candidates
    rtts = {server: infra.selection_rtt_ms(server, now) for server in usable}
    best = min(rtts.values())
    band = [server for server in usable if rtts[server] <= best + RTT_BAND_MS]
    return rng.choice(band)
