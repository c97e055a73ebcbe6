"""Per-client rate limiting: a token bucket per client address (as Unbound's
``ip-ratelimit``, off by default). Sans-IO: callers pass ``now``."""

from __future__ import annotations

MAX_TRACKED_CLIENTS = 100_000


class RateLimiter:
    """``rate`` queries per second per client, with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self.limited = 0

    def allow(self, client: str, now: float) -> bool:
        """Take one token for ``client``; False (and counted) when it has none left."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget_full_buckets(now)
            tokens = self.burst
        else:
            tokens, at = bucket
            tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            self.limited += 1
            return False
        self._buckets[client] = (tokens - 1.0, now)
        return True

    def _forget_full_buckets(self, now: float) -> None:
        """Drop clients whose buckets have refilled: they are the same as new ones."""
        self._buckets = {
            client: (tokens, at)
            for client, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate < self.burst
        }
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()  # under a flood of sources: start over rather than grow

    def __len__(self) -> int:
        return len(self._buckets)
