"""One RRSIG against one DNSKEY (resolver/core/dnssec/signature.py) gives the verdict of
dnspython's public ``dns.dnssec.validate_rrsig`` for every supported algorithm, good and
bad, while loading each key once. It relies on dnspython's private
``_make_rrsig_signature_data``: the first test fails loudly when that moves (a dnspython
upgrade past the range pinned in pyproject.toml), and the fallback is shown to be right."""

from __future__ import annotations

import dns.dnssec
import dns.exception
import dns.rdata
import dns.rdataset
import dns.rrset
import pytest
from dns.exception import ValidationFailure
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.core.dnssec import signature
from resolver.core.dnssec.verify import signatures
from resolver.records import WireRRset
from tests.unit.dnssec_lab import NOW, ZONE, Key, make_key, name, rrset

WWW = rrset("www.example.", "A", "192.0.2.1", "192.0.2.2")
TAMPERED = rrset("www.example.", "A", "192.0.2.1", "192.0.2.3")
ALGORITHMS = [8, 10, 13, 14, 15, 16, 5, 7]


@pytest.fixture(scope="module", params=ALGORITHMS, ids=[f"alg{a}" for a in ALGORITHMS])
def key(request: pytest.FixtureRequest) -> Key:
    return make_key(request.param, flags=256)


def public_verdict(data: dns.rrset.RRset, sig: RRSIG, dnskey: DNSKEY) -> bool:
    keys = {ZONE: dns.rdataset.from_rdata_list(0, [dnskey])}
    try:
        dns.dnssec.validate_rrsig(data, sig, keys, None, NOW, dns.dnssec.allow_all_policy)
    except ValidationFailure:
        return False
    return True


def test_dnspythons_private_signature_data_builder_is_there() -> None:
    """If this fails, dnspython moved ``_make_rrsig_signature_data``: validation still
    works (the fallback below) but loads every key again; re-check signature.py against the
    new dnspython before widening the pin in pyproject.toml."""
    assert signature.signature_data is getattr(dns.dnssec, "_make_rrsig_signature_data", None)
    assert signature.signature_data is not None


@pytest.mark.parametrize("fallback", [False, True], ids=["memo", "fallback"])
def test_verdicts_match_dnspythons_public_validate_rrsig(
    key: Key, fallback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fallback:
        monkeypatch.setattr(signature, "signature_data", None)
    other = make_key(key.dnskey.algorithm, flags=256)
    sig = key.sign(WWW)
    cases = [(WWW, sig, key.dnskey), (TAMPERED, sig, key.dnskey), (WWW, sig, other.dnskey)]
    verdicts = [signature.verifies(data, s, k, ZONE, NOW) for data, s, k in cases]
    assert verdicts == [public_verdict(data, s, k) for data, s, k in cases]
    assert verdicts == [True, False, False]


def test_a_wildcard_expansion_verifies_as_dnspython_says(key: Key) -> None:
    """RFC 4035 §5.3.2: the signature of *.w.example. covers a.w.example.'s expansion (the
    signed data is rebuilt with the wildcard owner), not an owner with more labels."""
    wild = rrset("*.w.example.", "A", "192.0.2.9")
    sig = key.sign(wild)
    expanded = dns.rrset.from_rdata_list(name("a.w.example."), 300, list(wild))
    assert signature.verifies(expanded, sig, key.dnskey, ZONE, NOW)
    assert public_verdict(expanded, sig, key.dnskey)


def test_each_key_is_loaded_once_and_its_tag_computed_once() -> None:
    key = make_key(13, flags=256)
    loaded = signature.public_key(key.dnskey)
    assert loaded is not None
    assert signature.public_key(key.dnskey) is loaded
    copy = dns.rdata.from_text("IN", "DNSKEY", key.dnskey.to_text())
    assert signature.public_key(copy) is loaded  # the same key from another reply
    assert signature.key_tag(copy) == dns.dnssec.key_id(key.dnskey)


def test_malformed_key_material_verifies_nothing() -> None:
    key = make_key(13, flags=256)
    short = dns.rdata.from_text("IN", "DNSKEY", "256 3 13 AAAA")
    assert signature.public_key(short) is None
    assert not signature.verifies(WWW, key.sign(WWW), short, ZONE, NOW)  # type: ignore[arg-type]


def test_rrsigs_read_from_wire_equal_dnspythons(key: Key) -> None:
    """verify.signatures reads an RRSIG's fields itself (half of ``from_wire``'s cost): the
    same record as dnspython's, and only those covering the type asked for."""
    sig = key.sign(WWW)
    other = key.sign(rrset("www.example.", "TXT", '"x"'))
    wires = (sig.to_wire(), other.to_wire())
    read = signatures(WireRRset(name("www.example."), 46, 300, wires), 1)
    generic = dns.rdata.from_wire("IN", "RRSIG", wires[0], 0, len(wires[0]))
    assert read == [generic] == [sig]
    assert read[0].signer == ZONE and read[0].signature == sig.signature


def test_a_malformed_rrsig_is_refused_as_dnspython_refuses_it() -> None:
    with pytest.raises(dns.exception.FormError):
        signatures(WireRRset(name("www.example."), 46, 300, (b"\x00\x01\x0d\x02",)), 1)
