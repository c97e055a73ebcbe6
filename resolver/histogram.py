"""A plain histogram: counts per upper bound, observed with no locks and no clock, read by
the metrics collector at scrape time (so the resolver's code never imports prometheus)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

LATENCY_BOUNDS_S = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class HistogramView:
    """A histogram's counts at one moment, read by the metrics collector."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float

    def cumulative(self, extra_in_first: int = 0) -> list[tuple[str, float]]:
        """Prometheus buckets (``le`` -> cumulative count), ``+Inf`` last. ``extra_in_first``
        adds observations known to fall in the first bucket without having been timed."""
        buckets: list[tuple[str, float]] = []
        total = extra_in_first
        for bound, count in zip(self.bounds, self.counts, strict=False):
            total += count
            buckets.append((repr(float(bound)), float(total)))
        buckets.append(("+Inf", float(total + self.counts[-1])))
        return buckets


class Histogram:
    """Counts of observations at or below each bound; the last count is above them all."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BOUNDS_S) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def view(self) -> HistogramView:
        """The counts now, as a read-only value."""
        return HistogramView(self.bounds, tuple(self.counts), self.sum)

    def cumulative(self, extra_in_first: int = 0) -> list[tuple[str, float]]:
        """Prometheus buckets (``le`` -> cumulative count), ``+Inf`` last."""
        return self.view().cumulative(extra_in_first)
