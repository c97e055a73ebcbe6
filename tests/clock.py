"""The tests' wall clock: one ``FakeClock`` that every test moving time by hand imports."""

from __future__ import annotations


class FakeClock:
    """Wall-clock seconds (``time.time()``'s stand-in) that tests move by hand.

    Cache expiry and TTL arithmetic read the wall clock as ``now`` (ARCHITECTURE.md, "Time"),
    so a test advances ``now`` instead of sleeping: no test depends on the machine's speed.
    """

    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
