"""The CNAME hop limit gives one verdict per chain, cold or warm (found by the differential
test against Unbound: tests/peer/allowed_differences.toml, c12 and x1 in mixed.lab.).

Every CNAME of a chain counts (resolver/limits.py MAX_CNAME_HOPS), whether it came in one
reply with others (``c12.mixed.lab.``: the lab server chases 8 in-zone links per answer),
in a reply of its own (``x1.mixed.lab.``: 12 links alternating with ``hop.lab.``), or from
the RRset cache link by link. Before, links that came with the final answer were not counted,
so c12 was NOERROR cold and SERVFAIL once its links were cached.
"""

from __future__ import annotations

import dns.rcode
import pytest

from resolver.cache.view import Caches
from resolver.core.dnssec.keys import Validator
from resolver.limits import MAX_CNAME_HOPS, Limits
from resolver.model import ExtendedError, Result, Security
from tests.core.harness import Responder, lab_responder, resolve
from tests.core.test_validation import NOW, SIGNED, validator
from tests.helpers import lab_with

UNSIGNED = lab_responder(lab_with())

IN_ZONE = [f"c{i}.mixed.lab." for i in range(12, 0, -1)]
"""c12 -> c11 -> ... -> c1 -> www.mixed.lab. A: 12 CNAMEs in one zone."""
ACROSS = [f"{x}{i}.{z}.lab." for i in range(1, 7) for x, z in (("x", "mixed"), ("y", "hop"))]
"""x1.mixed.lab. -> y1.hop.lab. -> x2.mixed.lab. ... -> y6 -> www.hop.lab. A: 12 CNAMEs,
each in its own answer."""

Outcome = tuple[str, tuple[tuple[str, int, tuple[bytes, ...]], ...], bool]


def outcome(result: Result) -> Outcome:
    """What a client sees, TTLs aside (a cached record's TTL has aged)."""
    rcode = dns.rcode.to_text(result.rcode)
    answer = tuple((r.name.to_text().lower(), r.rdtype, r.rdatas) for r in result.answer)
    return rcode, answer, result.security is Security.SECURE


def ask(
    qname: str,
    qtype: str,
    caches: Caches,
    *,
    signed: bool,
    limits: Limits | None = None,
    shared: Validator | None = None,
) -> Result:
    responder: Responder = SIGNED if signed else UNSIGNED
    if signed:
        return resolve(
            qname, qtype, responder, caches=caches, limits=limits, validator=shared, now=NOW
        ).result
    return resolve(qname, qtype, responder, caches=caches, limits=limits, now=NOW).result


def cold(qname: str, qtype: str, *, signed: bool, limits: Limits | None = None) -> Result:
    shared = validator() if signed else None
    return ask(qname, qtype, Caches(), signed=signed, limits=limits, shared=shared)


def warm(
    qname: str, qtype: str, chain: list[str], *, signed: bool, limits: Limits | None = None
) -> list[Result]:
    """``qname qtype`` asked after every later link of ``chain`` was asked (A), as the
    differential test's derived questions do, then after ``qname A``, then once more."""
    caches, shared = Caches(), validator() if signed else None
    for name in reversed(chain):
        ask(name, "A", caches, signed=signed, limits=limits, shared=shared)
    first = ask(qname, qtype, caches, signed=signed, limits=limits, shared=shared)
    ask(chain[0], "A", caches, signed=signed, limits=limits, shared=shared)
    again = ask(qname, qtype, caches, signed=signed, limits=limits, shared=shared)
    return [first, again]


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "validating"])
@pytest.mark.parametrize("chain", [IN_ZONE, ACROSS], ids=["in-zone", "across-zones"])
def test_a_chain_at_the_limit_is_answered_cold_and_warm(chain: list[str], signed: bool) -> None:
    """12 CNAMEs (the limit) then the A: NOERROR (AD when validating) cold, and the same
    answer when the links are taken from the cache."""
    assert len(chain) == MAX_CNAME_HOPS
    first = cold(chain[0], "A", signed=signed)
    assert first.rcode == dns.rcode.NOERROR, first.reason
    assert len(first.answer) == len(chain) + 1
    for later in warm(chain[0], "A", chain, signed=signed):
        assert outcome(later) == outcome(first), later.reason


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "validating"])
@pytest.mark.parametrize("chain", [IN_ZONE, ACROSS], ids=["in-zone", "across-zones"])
@pytest.mark.parametrize("at", [0, 5])
def test_another_type_and_a_name_inside_a_cached_chain_answer_as_cold(
    chain: list[str], signed: bool, at: int
) -> None:
    """After the chain was cached, AAAA at its start or at a name in its middle (c7, y3)
    gets what a cold resolver gives: NODATA (www has no AAAA); A in the middle the A."""
    for qtype in ("AAAA", "A"):
        first = cold(chain[at], qtype, signed=signed)
        assert first.rcode == dns.rcode.NOERROR, first.reason
        for later in warm(chain[at], qtype, chain, signed=signed):
            assert outcome(later) == outcome(first), later.reason


@pytest.mark.parametrize("chain", [IN_ZONE, ACROSS], ids=["in-zone", "across-zones"])
def test_the_limit_boundary_is_the_same_cold_and_warm(chain: list[str]) -> None:
    """With a limit of 11: the 11-CNAME chain from the second name (c11, y1) is answered,
    the 12-CNAME one (c12, x1) is SERVFAIL with EDE 0 saying the chain is too long, cold
    and warm alike (before, c12 was answered cold: its last links came with the A)."""
    eleven = Limits(max_cname_hops=11)
    inside = cold(chain[1], "A", signed=False, limits=eleven)
    assert inside.rcode == dns.rcode.NOERROR, inside.reason
    for later in warm(chain[1], "A", chain[1:], signed=False, limits=eleven):
        assert outcome(later) == outcome(inside), later.reason
    past = [cold(chain[0], "A", signed=False, limits=eleven)]
    past += warm(chain[0], "A", chain, signed=False, limits=eleven)
    for result in past:
        assert result.rcode == dns.rcode.SERVFAIL
        assert result.error_code is ExtendedError.OTHER
        assert result.reason.startswith("CNAME chain longer than 11 at "), result.reason


def test_a_chain_past_the_limit_is_refused_validating_too() -> None:
    """The same with validation on: no answer, no AD, the limit's reason."""
    result = cold("c12.mixed.lab.", "A", signed=True, limits=Limits(max_cname_hops=11))
    assert result.rcode == dns.rcode.SERVFAIL
    assert "CNAME chain longer than 11" in result.reason


def test_a_cname_loop_is_servfail_cold_and_warm() -> None:
    """Loops are still found, whether the loop's links come from replies or the cache."""
    caches = Caches()
    for _ in range(2):
        walk = resolve("loop.example.lab.", "A", UNSIGNED, caches=caches)
        assert walk.result.rcode == dns.rcode.SERVFAIL
        assert walk.result.reason.startswith("CNAME loop at "), walk.result.reason
