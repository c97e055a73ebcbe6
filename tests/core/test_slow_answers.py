"""Slow answers are still answers (issue 10, item 10): a try that timed out keeps listening
for its late reply, other servers are asked before a silent one is asked again, and the
waits double after each timeout (RFC 6298 §5.5) until a full upstream timeout of silence.
The machine over the lab in memory, in virtual time (``harness.resolve_timed``)."""

from __future__ import annotations

import itertools

import dns.name
import dns.rcode

from resolver.cache.view import Caches
from resolver.core.events import SendQuery
from tests.core.harness import lab_responder, resolve, resolve_timed
from tests.core.test_resolution import addresses
from tests.helpers import lab_with

DESCRIPTION = lab_with()
LAB = lab_responder(DESCRIPTION)
T0 = 1_000_000.0
NS1, NS2 = "127.53.20.1", "127.53.20.2"
FAST_S = 0.001


def lab_delays(send_to: str, send: SendQuery) -> float | None:
    """The lab's per-name delays (``delay_names``); every other answer takes 1 ms."""
    for spec in DESCRIPTION.servers:
        if spec.address == send_to:
            for name, delay_s in spec.faults.delay_names:
                if name == send.qname:
                    return delay_s
    return FAST_S


def warmed() -> Caches:
    """Caches that know perslow.lab.'s delegation and both its servers as 1 ms servers, as
    after many fast answers: their RTO is the 50 ms floor."""
    caches = Caches()
    assert resolve("www.perslow.lab.", "A", LAB, caches=caches).result.rcode == dns.rcode.NOERROR
    for server in (NS1, NS2):
        for _ in range(8):
            caches.infra.record_rtt(server, FAST_S, T0)
    assert caches.infra.timeout_s(NS1, 1.0, T0) == 0.05
    return caches


def perslow_tries(walk_sent: list[SendQuery]) -> list[SendQuery]:
    return [s for s in walk_sent if s.zone == dns.name.from_text("perslow.lab.")]


def test_a_late_reply_on_a_timed_out_try_is_used() -> None:
    walk = resolve_timed("slowboth.perslow.lab.", "A", LAB, lab_delays, caches=warmed(), now=T0)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert addresses(walk.result.answer) == ["192.0.2.87"]
    tries = perslow_tries(walk.sent)
    assert len(tries) >= 3  # both servers timed out at 50 ms and one was asked again
    assert tries[0].timeout_s == 0.05 and tries[0].listen_s == 1.0
    # The answer is the first try's reply, 0.35 s after it left: no try was needed after it.
    assert abs(walk.elapsed_s - 0.35) < 1e-9


def test_other_servers_are_asked_before_a_timed_out_one() -> None:
    first: list[str] = []

    def first_asked_is_slow(server: str, send: SendQuery) -> float | None:
        if send.qname != dns.name.from_text("slow1.perslow.lab."):
            return FAST_S
        if not first:
            first.append(server)
        return 0.35 if server == first[0] else FAST_S

    for seed in range(4):
        first.clear()
        walk = resolve_timed(
            "slow1.perslow.lab.", "A", LAB, first_asked_is_slow, caches=warmed(), now=T0, seed=seed
        )
        assert addresses(walk.result.answer) == ["192.0.2.85"]
        tries = perslow_tries(walk.sent)
        assert [t.server for t in tries] == [first[0], ({NS1, NS2} - {first[0]}).pop()]
        assert abs(walk.elapsed_s - (0.05 + FAST_S)) < 1e-9


def test_waits_double_until_a_full_upstream_timeout_of_silence() -> None:
    def silent(server: str, send: SendQuery) -> float | None:
        return None if server in (NS1, NS2) else FAST_S

    walk = resolve_timed("www.perslow.lab.", "AAAA", LAB, silent, caches=warmed(), now=T0)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason is not None and "perslow.lab." in walk.result.reason
    tries = perslow_tries(walk.sent)
    sent_at = [walk.sent_at[walk.sent.index(t)] for t in tries]
    first_round = [(at, t) for at, t in zip(sent_at, tries, strict=True) if at < 1.05 + 1e-9]
    for server in (NS1, NS2):
        mine = [(at, t) for at, t in first_round if t.server == server]
        waits = [t.timeout_s for _, t in mine]
        # RFC 6298 §5.5: 50, 100, 200 ms, then what is left of one second of silence.
        assert waits[:3] == [0.05, 0.1, 0.2]
        assert all(w <= 2 * before + 1e-9 for before, w in itertools.pairwise(waits))
        first_at, _ = mine[0]
        at, last = mine[-1]
        assert abs(at + last.timeout_s - first_at - 1.0) < 1e-6  # given up after 1 s exactly
    # The servers take turns: never the same server twice in a row while the other is live.
    servers = [t.server for _, t in first_round]
    assert all(a != b for a, b in itertools.pairwise(servers))
    # Then the walk starts again at the root once (the cut came from the cache), well within
    # the client's 4 s deadline.
    assert walk.elapsed_s < 4.0
