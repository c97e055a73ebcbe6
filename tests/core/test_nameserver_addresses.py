"""Name server addresses (issue 10, item 6): glueless servers resolved for A and AAAA, zones
served only over IPv6, dependency cycles that end only true cycles, NS targets that are
CNAMEs or do not exist, and servers inside their zone without glue (RFC 1034 §4.2.1,
§5.3.3 step 2; RFC 2181 §10.3): the machine over the lab in memory."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rcode
import dns.rdatatype

from resolver.cache.view import Caches
from resolver.model import ExtendedError
from tests.core.harness import Walk, lab_responder, resolve
from tests.core.test_resolution import addresses
from tests.helpers import LAB_DIR, lab_with, lab_zone

LAB = lab_responder(lab_with())
N = dns.name.from_text
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
T0 = 1_000_000.0
ROOT_AND_LAB = {"127.53.0.1", "127.53.0.2", "127.53.1.1", "127.53.1.2"}


def lookups(walk: Walk, qname: str) -> list[dns.rdatatype.RdataType]:
    """The types asked upstream for ``qname``, each once, in the order first asked."""
    return list(dict.fromkeys(s.qtype for s in walk.sent if s.qname == N(qname)))


# --- glueless servers are resolved for A and AAAA ------------------------------------------


def test_a_glueless_server_with_only_an_ipv6_address_is_reached() -> None:
    """v6only.lab.'s only server, v6.nsh.lab., has an AAAA record and no A record: the A
    lookup's NODATA is followed by an AAAA lookup, and the zone is asked over IPv6."""
    walk = resolve("www.v6only.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.NOERROR
    assert addresses(walk.result.answer) == ["192.0.2.84"]
    assert lookups(walk, "v6.nsh.lab.") == [A, AAAA]
    assert walk.by_server["::1"] == 1


def test_aaaa_glue_reaches_an_ipv6_only_server() -> None:
    walk = resolve("www.v6glue.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.83"]
    assert [s.server for s in walk.sent][-1] == "::1"


def test_a_server_found_by_its_ipv4_address_costs_one_lookup() -> None:
    """AAAA is asked only when A gives no usable server (one lookup instead of Unbound's
    two for a server that answers over IPv4)."""
    walk = resolve("www.glueless.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.30"]
    assert lookups(walk, "nsg.other.example.") == [A]


def test_aaaa_is_asked_when_every_ipv4_address_of_a_server_fails(tmp_path: Path) -> None:
    """v6.nsh.lab. given a dead IPv4 address too: once it times out, its AAAA is asked."""
    zone = (LAB_DIR / "nsh.lab.zone").read_text()
    zone = zone.replace("v6         AAAA   ::1", "v6 A 127.53.23.99\nv6 AAAA ::1")
    path = lab_zone(tmp_path, "nsh.lab.", zone)
    lab = lab_responder(lab_with().with_zone_file("nsh.lab.", path))
    walk = resolve("www.v6only.lab.", "A", lab)
    assert addresses(walk.result.answer) == ["192.0.2.84"]
    assert lookups(walk, "v6.nsh.lab.") == [A, AAAA]
    assert walk.by_server["127.53.23.99"] >= 1 and walk.by_server["::1"] == 1


# --- cycles ---------------------------------------------------------------------------------


def test_a_true_cycle_fails_at_once_and_names_the_server_it_went_through() -> None:
    # without minimisation, so the server address looked up shows in the names sent
    walk = resolve("www.cyca.lab.", "A", LAB, qname_minimisation=False)
    result = walk.result
    assert result.rcode == dns.rcode.SERVFAIL
    assert result.error_code == ExtendedError.NO_REACHABLE_AUTHORITY
    assert result.reason == (
        "dependency cycle through ns1.cycb.lab.: no other server of cyca.lab. is reachable"
    )
    assert result.cycle_via == "ns1.cycb.lab."
    assert len(walk.sent) <= 4  # root, lab., lab. again for cycb.lab.: no server of either
    assert lookups(walk, "ns1.cycb.lab.") == [A]  # no AAAA: it would meet the same cycle
    assert lookups(walk, "ns1.cyca.lab.") == []  # cyca.lab.'s cut is cached: cycle at once


def test_a_cycle_failure_is_not_cached_and_does_not_walk_again_from_the_root() -> None:
    caches = Caches()
    resolve("www.cyca.lab.", "A", LAB, caches=caches)
    assert caches.failures.get(N("www.cyca.lab."), A, T0 + 1) is None
    again = resolve("www.cyca.lab.", "A", LAB, caches=caches, now=T0 + 1)
    assert again.result.rcode == dns.rcode.SERVFAIL
    assert again.result.reason.startswith("dependency cycle through ns1.cycb.lab.")
    assert not ROOT_AND_LAB & set(again.by_server)  # the cached cuts meet the same cycle


def test_an_address_needed_through_a_zone_with_another_reachable_server_is_fetched() -> None:
    """fca.lab.'s server is named in fcb.lab., whose servers are ns1.fca.lab. (a cycle) and
    host.nsh.lab.: whichever fcb.lab.'s resolution tries first, fca.lab. answers, and the
    cycle met on the way is not remembered as ns1.fca.lab.'s answer."""
    for seed in range(1, 9):
        caches = Caches()
        walk = resolve("www.fca.lab.", "A", LAB, caches=caches, seed=seed)
        assert addresses(walk.result.answer) == ["192.0.2.81"], seed
        again = resolve("ns1.fca.lab.", "A", LAB, caches=caches, seed=seed, now=T0 + 1)
        assert addresses(again.result.answer) == ["127.53.23.2"], (seed, again.result.reason)
        assert not ROOT_AND_LAB & set(again.by_server), seed


# --- NS targets that are CNAMEs, missing, or inside the zone without glue ------------------


def test_an_ns_target_that_is_a_cname_is_followed_as_unbound_does() -> None:
    walk = resolve("www.cnns.lab.", "A", LAB)
    assert addresses(walk.result.answer) == ["192.0.2.85"]
    assert walk.by_server["127.53.23.2"] == 1  # host.nsh.lab., the CNAME's target


def test_one_missing_ns_target_leaves_the_others() -> None:
    for seed in range(1, 5):
        walk = resolve("www.nxns.lab.", "A", LAB, seed=seed)
        assert addresses(walk.result.answer) == ["192.0.2.86"], seed
        assert AAAA not in lookups(walk, "missing.nsh.lab."), seed  # NXDOMAIN: no AAAA


def test_all_ns_targets_missing_says_so() -> None:
    walk = resolve("www.allnx.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.error_code == ExtendedError.NO_REACHABLE_AUTHORITY
    assert walk.result.reason == (
        "all name servers of allnx.lab. are missing (NXDOMAIN): "
        "missing1.nsh.lab., missing2.nsh.lab."
    )
    assert lookups(walk, "missing1.nsh.lab.") == [A]
    assert lookups(walk, "missing2.nsh.lab.") == [A]


def test_a_server_inside_its_zone_without_glue_is_a_cycle() -> None:
    """inz.lab.'s only server, ns1.inz.lab., has no glue: its address could only come from
    inz.lab. itself (Unbound: the target query causes a cycle, SERVFAIL)."""
    walk = resolve("www.inz.lab.", "A", LAB)
    assert walk.result.rcode == dns.rcode.SERVFAIL
    assert walk.result.reason == (
        "dependency cycle: the name servers of inz.lab. (ns1.inz.lab.) are inside it "
        "and have no glue"
    )
    assert walk.result.cycle_via == "ns1.inz.lab."
    assert lookups(walk, "ns1.inz.lab.") == []
