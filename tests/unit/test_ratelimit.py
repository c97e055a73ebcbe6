"""The per-client token bucket, on a fake clock."""

from resolver.ratelimit import RateLimiter


def test_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    now = 1000.0
    assert [limiter.allow("192.0.2.1", now) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("192.0.2.2", now)  # another client has its own bucket
    assert not limiter.allow("192.0.2.1", now + 0.05)  # half a token
    assert limiter.allow("192.0.2.1", now + 0.15)
    assert limiter.limited == 3


def test_refills_to_the_burst_only() -> None:
    limiter = RateLimiter(rate=1, burst=2)
    assert limiter.allow("c", 0.0) and limiter.allow("c", 0.0)
    assert [limiter.allow("c", 100.0) for _ in range(3)] == [True, True, False]


def test_the_table_stays_bounded_under_many_sources() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_clients=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter) <= 100
