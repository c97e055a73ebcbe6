"""Trust anchors (resolver/core/dnssec/anchor.py), the shipped IANA root anchors, the work
limits' values and the verdict type."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from resolver import limits
from resolver.core.dnssec.anchor import AnchorError, closest_anchor, parse_anchors
from resolver.core.dnssec.security import Security, out_of_work
from resolver.limits import ValidationWork
from resolver.model import ExtendedError
from tests.unit.dnssec_lab import NOW, ZONE, dnskey_rrset, make_key, name

ROOT_ANCHORS = Path(__file__).resolve().parents[2] / "zones" / "root-anchors.ds"


def test_the_shipped_root_anchors_are_ksk_2017_and_ksk_2024() -> None:
    anchors = parse_anchors(ROOT_ANCHORS.read_text(), str(ROOT_ANCHORS))
    root = anchors[dns.name.root]
    assert sorted((d.key_tag, d.algorithm, d.digest_type) for d in root.ds) == [
        (20326, 8, 2),
        (38696, 8, 2),
    ]
    assert root.ds[0].digest.hex().upper().startswith("E06D44B80B8F1D39")
    assert root.dnskeys == ()


def test_a_ds_anchor_secures_the_zone_keys() -> None:
    ksk = make_key(13)
    text = f"; the lab\nexample. 3600 IN DS {ksk.ds().to_text()}\n"
    anchor = parse_anchors(text)[ZONE]
    keys = dnskey_rrset(ksk.dnskey)
    work = ValidationWork()
    assert anchor.verify(keys, [ksk.sign(keys)], now=NOW, work=work).is_secure
    stranger = make_key(13)
    other = dnskey_rrset(stranger.dnskey)
    assert anchor.verify(other, [stranger.sign(other)], now=NOW, work=work).is_bogus


def test_a_dnskey_anchor_with_a_relative_owner() -> None:
    """Owners follow the project's rule: relative names are relative to the root."""
    ksk = make_key(15)
    anchor = parse_anchors(f"example DNSKEY {ksk.dnskey.to_text()}")[ZONE]
    keys = dnskey_rrset(ksk.dnskey)
    assert anchor.verify(keys, [ksk.sign(keys)], now=NOW, work=ValidationWork()).is_secure


def test_other_records_and_bad_text_are_errors_that_name_the_source() -> None:
    with pytest.raises(AnchorError, match=r"anchors\.txt: line 1: www\.example\. A"):
        parse_anchors("www.example. IN A 192.0.2.1", "anchors.txt")
    with pytest.raises(AnchorError, match=r"anchors\.txt"):
        parse_anchors("example. IN DS 1 8 2 00", "anchors.txt")


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        ("lab. IN DS garbage", 3),  # dnspython's own count says 4: it read the line's end
        ("lab. IN DS 1 8 2 zz", 3),
        ('lab. IN TXT "not an anchor"', 3),
        ("lab. IN DNSKEY 257 3 8 (\n AwEAAa\n !!! )", 5),  # inside parentheses
    ],
)
def test_an_error_names_the_line_of_the_bad_record(bad: str, line: int) -> None:
    """The reload and start-up errors say where to look (file, line), as the config's do."""
    ksk = make_key(15)
    text = f"; anchors\nexample DNSKEY {ksk.dnskey.to_text()}\n{bad}\n\n. IN DS 1 8 2 00\n"
    with pytest.raises(AnchorError, match=rf"^anchors\.txt: line {line}: "):
        parse_anchors(text, "anchors.txt")


def test_closest_anchor_walks_up_to_the_root() -> None:
    anchors = parse_anchors(ROOT_ANCHORS.read_text())
    assert closest_anchor(anchors, name("www.example.")) is anchors[dns.name.root]
    assert closest_anchor({}, name("www.example.")) is None


def test_the_limits_are_the_documented_ones() -> None:
    """What limits.py's docstrings cite: Unbound's MAX_VALIDATE_RRSIGS 8, Knot's crypto
    budget 32, Unbound's MAX_DS_MATCH_FAILURES 4, RFC 9276's 150 iterations."""
    assert limits.MAX_VERIFICATIONS_PER_RRSET == 8
    assert limits.MAX_VERIFICATIONS == 32
    assert limits.MAX_KEY_TAG_COLLISIONS == 4
    assert limits.MAX_NSEC3_ITERATIONS == 150
    work = ValidationWork(limits.ValidationLimits(max_verifications=1, max_nsec3_hashes=1))
    assert work.spend_verification() and not work.spend_verification()
    assert work.spend_nsec3_hash() and not work.spend_nsec3_hash()
    assert (work.verifications, work.nsec3_hashes) == (1, 1)


def test_running_out_of_work_is_bogus_with_ede_6() -> None:
    verdict = out_of_work(ZONE, "9 signature verifications")
    assert (verdict.state, verdict.code) == (Security.BOGUS, ExtendedError.DNSSEC_BOGUS)
    assert "example." in verdict.text
