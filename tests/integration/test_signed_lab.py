"""The signed lab (issue 12 item 7), asked directly over real sockets with DO=1 and checked
with dnspython's own validator at a pinned time: the secure zones validate from the lab's
trust anchor down (DS at the parent -> DNSKEY -> RRset, RFC 4035 §5), their denials prove
what they should (RFC 4035 §3.1.3, RFC 5155 §7.2), and each broken zone is broken in the one
intended way. The resolver does not validate yet; these tests pin what the lab serves."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from dns.dnssec import ValidationFailure  # type: ignore[attr-defined]

from resolver.paths import lab_description
from tests.integration.conftest import LAB_PORT
from tests.integration.stack import Stack

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC).timestamp()
"""Pinned, passed explicitly: the lab's signatures run from 2026-01-01 to 2036-01-01."""
ROOT_SERVER = "127.53.0.1"
LAB_SERVER = "127.53.1.1"
SIGNED_SERVER = "127.53.25.1"
FORGE_SERVER = "127.53.25.2"
ANCHOR_FILE = lab_description().parent / "trust-anchor.ds"
SECURE_ZONES = [
    ("secure.lab.", "192.0.2.100"),
    ("nsec3.lab.", "192.0.2.101"),
    ("optout.lab.", "192.0.2.102"),
    ("alg8.lab.", "192.0.2.108"),
    ("alg10.lab.", "192.0.2.110"),
    ("alg13.lab.", "192.0.2.113"),
    ("alg14.lab.", "192.0.2.114"),
    ("alg15.lab.", "192.0.2.115"),
    ("alg16.lab.", "192.0.2.116"),
    ("nsec3iter.lab.", "192.0.2.128"),
]
Name = dns.name.Name


def ask(server: str, qname: str | Name, qtype: str, *, dnssec: bool = True) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=0, want_dnssec=dnssec)
    return dns.query.tcp(query, server, timeout=5, port=LAB_PORT)


def server_of(zone: Name) -> str:
    if zone == dns.name.root:
        return ROOT_SERVER
    if zone == dns.name.from_text("lab."):
        return LAB_SERVER
    return FORGE_SERVER if zone == dns.name.from_text("forge.lab.") else SIGNED_SERVER


def find(
    section: list[dns.rrset.RRset], name: Name, rdtype: int
) -> tuple[dns.rrset.RRset, dns.rrset.RRset | None]:
    """The RRset of ``name`` and ``rdtype`` in ``section`` and its RRSIGs (None if none)."""
    (rrset,) = [r for r in section if r.name == name and r.rdtype == rdtype]
    sigs = [r for r in section if r.name == name and r.rdtype == dns.rdatatype.RRSIG]
    sigs = [r for r in sigs if r.covers == rdtype]
    return rrset, (sigs[0] if sigs else None)


def anchor() -> list[dns.rrset.RRset]:
    lines = [line for line in ANCHOR_FILE.read_text().splitlines() if not line.startswith(";")]
    (line,) = lines
    name, ttl, _, _, rdata = line.split(None, 4)
    return [dns.rrset.from_text(name, int(ttl), "IN", "DS", rdata)]


def verify(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None, keys: dns.rrset.RRset) -> None:
    assert sigs is not None, f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is unsigned"
    dns.dnssec.validate(rrset, sigs, {keys.name: keys}, now=NOW)


def trusted_keys(zone: Name, ds_set: dns.rrset.RRset) -> dns.rrset.RRset:
    """The zone's DNSKEY set, validated by a key that one of ``ds_set`` names (§5.2)."""
    reply = ask(server_of(zone), zone, "DNSKEY")
    dnskeys, sigs = find(reply.answer, zone, dns.rdatatype.DNSKEY)
    matching = [
        key
        for key in dnskeys
        for ds in ds_set
        if dns.dnssec.make_ds(zone, key, ds.digest_type) == ds
    ]
    assert matching, f"no DNSKEY of {zone} matches its DS"
    verify(dnskeys, sigs, dns.rrset.from_rdata_list(zone, dnskeys.ttl, matching))
    return dnskeys


def parent_ds(zone: Name, parent_keys: dns.rrset.RRset) -> dns.rrset.RRset:
    """The zone's DS, asked of the parent (RFC 4035 §3.1.4.1) and validated there."""
    reply = ask(server_of(zone.parent()), zone, "DS")
    ds, sigs = find(reply.answer, zone, dns.rdatatype.DS)
    verify(ds, sigs, parent_keys)
    return ds


def lab_keys() -> dns.rrset.RRset:
    (root_ds,) = anchor()
    root_keys = trusted_keys(dns.name.root, root_ds)
    lab = dns.name.from_text("lab.")
    return trusted_keys(lab, parent_ds(lab, root_keys))


def chain(zone: str) -> dns.rrset.RRset:
    """The validated DNSKEY set of ``zone`` (a child of lab.), from the lab's anchor."""
    name = dns.name.from_text(zone)
    return trusted_keys(name, parent_ds(name, lab_keys()))


def www(zone: str) -> Name:
    return dns.name.from_text(f"www.{zone}")


def denial(reply: dns.message.Message) -> Iterator[tuple[dns.rrset.RRset, dns.rrset.RRset | None]]:
    for rrset in reply.authority:
        if rrset.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            yield find(reply.authority, rrset.name, rrset.rdtype)


def nsec_covers(nsec: dns.rrset.RRset, name: Name) -> bool:
    """RFC 4035 §5.4: owner < name < next, canonical order (the last wraps to the apex)."""
    following: Name = nsec[0].next
    return bool(nsec.name < name and (name < following or following < nsec.name))


def nsec3_hash(nsec3: dns.rrset.RRset, name: Name) -> str:
    rdata = nsec3[0]
    return dns.dnssec.nsec3_hash(name, rdata.salt, rdata.iterations, rdata.algorithm).lower()


def nsec3_next(nsec3: dns.rrset.RRset) -> str:
    return base64.b32hexencode(nsec3[0].next).decode().lower()


def nsec3_matches(nsec3: dns.rrset.RRset, name: Name) -> bool:
    return nsec3.name.labels[0].decode().lower() == nsec3_hash(nsec3, name)


def nsec3_covers(nsec3: dns.rrset.RRset, name: Name) -> bool:
    owner, following = nsec3.name.labels[0].decode().lower(), nsec3_next(nsec3)
    digest = nsec3_hash(nsec3, name)
    return owner < digest < following or (
        following < owner and (digest > owner or digest < following)
    )


@pytest.mark.parametrize(("zone", "address"), SECURE_ZONES, ids=[z for z, _ in SECURE_ZONES])
def test_secure_zone_validates_from_the_lab_anchor(stack: Stack, zone: str, address: str) -> None:
    keys = chain(zone)
    reply = ask(SIGNED_SERVER, www(zone), "A")
    assert reply.flags & dns.flags.AA
    assert reply.ednsflags & dns.flags.DO
    rrset, sigs = find(reply.answer, www(zone), dns.rdatatype.A)
    assert [r.to_text() for r in rrset] == [address]
    verify(rrset, sigs, keys)


def test_the_algorithm_zones_use_their_algorithms(stack: Stack) -> None:
    for number in (8, 10, 13, 14, 15, 16):
        keys = chain(f"alg{number}.lab.")
        assert {key.algorithm for key in keys} == {number}


def test_referrals_carry_the_signed_ds_or_the_proof_of_none(stack: Stack) -> None:
    keys = lab_keys()
    secure = ask(LAB_SERVER, "www.secure.lab.", "A")
    assert not secure.flags & dns.flags.AA
    verify(*find(secure.authority, dns.name.from_text("secure.lab."), dns.rdatatype.DS), keys)
    # example.lab. is an insecure delegation from a signed parent: the NSEC at the cut has
    # NS and no DS (RFC 4035 §3.1.4, §5.2).
    insecure = ask(LAB_SERVER, "www.example.lab.", "A")
    cut = dns.name.from_text("example.lab.")
    assert not [r for r in insecure.authority if r.rdtype == dns.rdatatype.DS]
    nsec, sigs = find(insecure.authority, cut, dns.rdatatype.NSEC)
    verify(nsec, sigs, keys)
    types = set(nsec[0].windows_types()) if hasattr(nsec[0], "windows_types") else None
    text = nsec[0].to_text()
    assert " NS " in f" {text} " and " DS " not in f" {text} ", types


def test_opt_out_referral_proves_no_ds_with_an_opt_out_nsec3(stack: Stack) -> None:
    keys = chain("optout.lab.")
    cut = dns.name.from_text("insecure.optout.lab.")
    reply = ask(SIGNED_SERVER, "www.insecure.optout.lab.", "A")
    assert reply.authority[0].name == cut and reply.authority[0].rdtype == dns.rdatatype.NS
    proofs = list(denial(reply))
    for nsec3, sigs in proofs:
        verify(nsec3, sigs, keys)
    apex = dns.name.from_text("optout.lab.")
    assert any(nsec3_matches(n, apex) for n, _ in proofs)  # the closest provable encloser
    covering = [n for n, _ in proofs if nsec3_covers(n, cut)]
    assert covering and covering[0][0].flags & 1  # RFC 5155 §7.2.7: opt-out covers the cut
    assert ask("127.53.25.3", "www.insecure.optout.lab.", "A").answer[0][0].to_text() == (
        "192.0.2.103"
    )


def test_nsec_proves_nxdomain_nodata_and_wildcard(stack: Stack) -> None:
    keys = chain("secure.lab.")
    nx = dns.name.from_text("nx.secure.lab.")
    reply = ask(SIGNED_SERVER, nx, "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    proofs = list(denial(reply))
    for nsec, sigs in proofs:
        verify(nsec, sigs, keys)
    assert any(nsec_covers(n, nx) for n, _ in proofs)
    assert any(nsec_covers(n, dns.name.from_text("*.secure.lab.")) for n, _ in proofs)
    nodata = ask(SIGNED_SERVER, "www.secure.lab.", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    ((nsec, sigs),) = list(denial(nodata))
    verify(nsec, sigs, keys)
    assert nsec.name == www("secure.lab.") and "MX" not in nsec[0].to_text()
    ent = ask(SIGNED_SERVER, "ent.secure.lab.", "A")
    ((nsec, sigs),) = list(denial(ent))
    assert nsec[0].next.is_subdomain(dns.name.from_text("ent.secure.lab."))  # RFC 4035 §3.1.3.2
    name = dns.name.from_text("anything.wild.secure.lab.")
    wild = ask(SIGNED_SERVER, name, "A")
    rrset, sigs = find(wild.answer, name, dns.rdatatype.A)
    assert sigs is not None and sigs[0].labels == 3  # the wildcard's labels (RFC 4035 §3.1.3.3)
    verify(rrset, sigs, keys)
    ((nsec, nsec_sigs),) = list(denial(wild))
    verify(nsec, nsec_sigs, keys)
    assert nsec_covers(nsec, name)


@pytest.mark.parametrize("zone", ["nsec3.lab.", "nsec3iter.lab."])
def test_nsec3_proves_nxdomain_nodata_and_wildcard(stack: Stack, zone: str) -> None:
    keys = chain(zone)
    apex = dns.name.from_text(zone)
    nx = dns.name.from_text(f"nx.{zone}")
    reply = ask(SIGNED_SERVER, nx, "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    proofs = []
    for nsec3, sigs in denial(reply):
        verify(nsec3, sigs, keys)
        proofs.append(nsec3)
    assert any(nsec3_matches(n, apex) for n in proofs)  # RFC 5155 §7.2.2
    assert any(nsec3_covers(n, nx) for n in proofs)
    assert any(nsec3_covers(n, dns.name.from_text(f"*.{zone}")) for n in proofs)
    iterations = {n[0].iterations for n in proofs}
    assert iterations == ({151} if zone == "nsec3iter.lab." else {0})  # RFC 9276 §3.1
    nodata = ask(SIGNED_SERVER, www(zone), "MX")
    ((nsec3, sigs),) = list(denial(nodata))
    verify(nsec3, sigs, keys)
    assert nsec3_matches(nsec3, www(zone)) and "MX" not in nsec3[0].to_text()
    name = dns.name.from_text(f"anything.wild.{zone}")
    wild = ask(SIGNED_SERVER, name, "A")
    rrset, sigs = find(wild.answer, name, dns.rdatatype.A)
    verify(rrset, sigs, keys)
    ((nsec3, sigs),) = list(denial(wild))  # RFC 5155 §7.2.6: the next closer is covered
    verify(nsec3, sigs, keys)
    assert nsec3_covers(nsec3, name)


def test_without_do_a_signed_zone_answers_as_before(stack: Stack) -> None:
    reply = ask(SIGNED_SERVER, "www.secure.lab.", "A", dnssec=False)
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.A]
    assert not reply.ednsflags & dns.flags.DO
    nx = ask(SIGNED_SERVER, "nx.secure.lab.", "A", dnssec=False)
    assert [r.rdtype for r in nx.authority] == [dns.rdatatype.SOA]
    referral = ask(LAB_SERVER, "www.secure.lab.", "A", dnssec=False)
    assert [r.rdtype for r in referral.authority] == [dns.rdatatype.NS]
    apex_any = ask(SIGNED_SERVER, "secure.lab.", "ANY", dnssec=False)
    assert {r.rdtype for r in apex_any.answer} == {dns.rdatatype.SOA, dns.rdatatype.NS}
    # a question for a DNSSEC type gets it (RFC 4035 §3.1: only the additions need DO)
    dnskey = ask(SIGNED_SERVER, "secure.lab.", "DNSKEY", dnssec=False)
    assert [r.rdtype for r in dnskey.answer] == [dns.rdatatype.DNSKEY]
    ds = ask(LAB_SERVER, "secure.lab.", "DS", dnssec=False)
    assert [r.rdtype for r in ds.answer] == [dns.rdatatype.DS]


def test_bad_signature_fails_only_its_rrset(stack: Stack) -> None:
    keys = chain("badsig.lab.")
    rrset, sigs = find(ask(SIGNED_SERVER, www("badsig.lab."), "A").answer, www("badsig.lab."), 1)
    with pytest.raises(ValidationFailure):
        verify(rrset, sigs, keys)
    soa = dns.name.from_text("badsig.lab.")
    verify(*find(ask(SIGNED_SERVER, soa, "SOA").answer, soa, dns.rdatatype.SOA), keys)


@pytest.mark.parametrize(
    ("zone", "valid_at"),
    [
        ("expired.lab.", datetime.datetime(2020, 6, 1)),
        ("future.lab.", datetime.datetime(2035, 6, 1)),
    ],
)
def test_out_of_window_signatures_fail_only_because_of_time(
    stack: Stack, zone: str, valid_at: datetime.datetime
) -> None:
    keys = chain(zone)  # the DNSKEY set's own signature is in its window
    rrset, sigs = find(ask(SIGNED_SERVER, www(zone), "A").answer, www(zone), dns.rdatatype.A)
    with pytest.raises(ValidationFailure):
        verify(rrset, sigs, keys)
    assert sigs is not None
    when = valid_at.replace(tzinfo=datetime.UTC).timestamp()
    dns.dnssec.validate(rrset, sigs, {keys.name: keys}, now=when)


def test_missing_rrsig(stack: Stack) -> None:
    chain("nosig.lab.")
    rrset, sigs = find(ask(SIGNED_SERVER, www("nosig.lab."), "A").answer, www("nosig.lab."), 1)
    assert rrset[0].to_text() == "192.0.2.124" and sigs is None


def test_ds_that_matches_no_dnskey(stack: Stack) -> None:
    ds = parent_ds(dns.name.from_text("dsmismatch.lab."), lab_keys())  # signed by lab.
    with pytest.raises(AssertionError, match="no DNSKEY"):
        trusted_keys(dns.name.from_text("dsmismatch.lab."), ds)


def test_missing_dnskey(stack: Stack) -> None:
    zone = dns.name.from_text("nodnskey.lab.")
    parent_ds(zone, lab_keys())
    reply = ask(SIGNED_SERVER, zone, "DNSKEY")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    ((nsec, _sigs),) = list(denial(reply))
    assert nsec.name == zone and "DNSKEY" not in nsec[0].to_text()


def test_unsupported_algorithm_is_all_the_zone_has(stack: Stack) -> None:
    zone = dns.name.from_text("unsupported.lab.")
    (ds,) = parent_ds(zone, lab_keys())
    assert ds.algorithm == 200
    dnskeys = ask(SIGNED_SERVER, zone, "DNSKEY").answer[0]
    assert {key.algorithm for key in dnskeys} == {200}
    assert dns.dnssec.make_ds(zone, dnskeys[0], "SHA256") == ds
    rrset, sigs = find(
        ask(SIGNED_SERVER, www("unsupported.lab."), "A").answer, www("unsupported.lab."), 1
    )
    assert sigs is not None and {sig.algorithm for sig in sigs} == {200}
    assert {sig.key_tag for sig in sigs} == {dns.dnssec.key_id(dnskeys[0])}
    assert rrset[0].to_text() == "192.0.2.127"


def test_forged_answer_is_unsigned_in_a_signed_zone(stack: Stack) -> None:
    keys = chain("forge.lab.")
    reply = ask(FORGE_SERVER, www("forge.lab."), "A")
    rrset, sigs = find(reply.answer, www("forge.lab."), dns.rdatatype.A)
    assert [r.to_text() for r in rrset] == ["192.0.2.66"] and sigs is None
    apex = dns.name.from_text("forge.lab.")
    verify(*find(ask(FORGE_SERVER, apex, "SOA").answer, apex, dns.rdatatype.SOA), keys)


def test_keytrap_zone_collides_keys_and_signatures(stack: Stack) -> None:
    keys = chain("keytrap.lab.")  # the DS picks the one real key: the DNSKEY set validates
    tags = {dns.dnssec.key_id(key) for key in keys}
    assert len(keys) == 32 and len(tags) == 1
    rrset, sigs = find(ask(SIGNED_SERVER, www("keytrap.lab."), "A").answer, www("keytrap.lab."), 1)
    assert sigs is not None and len(sigs) == 32 and {sig.key_tag for sig in sigs} == tags
    with pytest.raises(ValidationFailure):
        verify(rrset, sigs, keys)  # 32 keys x 32 signatures tried: 1024 verifications
