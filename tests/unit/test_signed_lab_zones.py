"""The signed lab's files and the lab's DNSSEC answers, without sockets (issue 12 item 7)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.lab.authority import ServedZone, authoritative_answer, lab_response, load_zone
from resolver.lab.description import LabDescriptionError, parse_lab_description
from resolver.lab.sign import sign_lab
from tests.helpers import LAB_DIR, lab_with
from tests.peer.questions import zone_questions

DESCRIPTION = lab_with()


def _text(response: dns.message.Message) -> tuple[object, ...]:
    sections = (response.answer, response.authority, response.additional)
    return (
        response.rcode(),
        response.flags,
        tuple(sorted(rrset.to_text() for rrset in section) for section in sections),
    )


@pytest.mark.parametrize("zone", list(DESCRIPTION.signed_files), ids=str)
def test_signing_changes_no_answer_to_a_query_without_do(zone: dns.name.Name) -> None:
    """Every question the differential test derives from the source gets the same answer
    from the signed zone (RFC 4035 §3.1: DNSSEC records only for DO=1), except DS at a cut
    to a signed child, which the parent now holds."""
    unsigned = {zone: load_zone(str(DESCRIPTION.zone_files[zone]), zone)}
    signed = {zone: load_zone(str(DESCRIPTION.signed_files[zone]), zone)}
    assert signed[zone].signed is not None and unsigned[zone].signed is None
    asked = 0
    for question in zone_questions(unsigned[zone]):
        name = dns.name.from_text(question.name)
        if question.type == "DS" and signed[zone].rrset(name, dns.rdatatype.DS) is not None:
            continue
        for edns in (-1, 0):
            query = dns.message.make_query(name, question.type, use_edns=edns)
            before = authoritative_answer(unsigned, query)
            after = authoritative_answer(signed, query)
            assert _text(after) == _text(before), f"{question}"
            asked += 1
    assert asked > 6


def test_nsec3_owner_names_are_not_names_of_the_zone() -> None:
    """RFC 5155 §7.2.8: a query for an NSEC3 owner is answered as for any absent name."""
    zone = dns.name.from_text("nsec3.lab.")
    served = load_zone(str(DESCRIPTION.signed_files[zone]), zone)
    assert served.signed is not None and served.signed.nsec3_hashes
    owner = dns.name.Name([served.signed.nsec3_hashes[0].encode()]).concatenate(zone)
    reply = authoritative_answer({zone: served}, dns.message.make_query(owner, "NSEC3"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert not [name for name in served.names if len(name.labels[0]) == 32]  # no hashes


def test_the_signed_files_are_what_the_signer_makes(tmp_path: Path) -> None:
    """The committed signed zones and anchor are python -m resolver.lab.sign's output for
    the committed sources and keys (signatures are deterministic): edit a source, sign again."""
    elsewhere = dataclasses.replace(
        DESCRIPTION,
        signed_files={z: tmp_path / p.name for z, p in DESCRIPTION.signed_files.items()},
    )
    sign_lab(elsewhere, LAB_DIR / "keys", tmp_path / "trust-anchor.ds")
    for zone, path in DESCRIPTION.signed_files.items():
        made = elsewhere.signed_files[zone].read_text()
        assert made == path.read_text(), f"{path} is stale: run python -m resolver.lab.sign"
    assert (tmp_path / "trust-anchor.ds").read_text() == (LAB_DIR / "trust-anchor.ds").read_text()


def test_the_forge_fault_replaces_the_answer_with_an_unsigned_record() -> None:
    zone = dns.name.from_text("forge.lab.")
    served: dict[dns.name.Name, ServedZone] = {
        zone: load_zone(str(DESCRIPTION.signed_files[zone]), zone)
    }
    (spec,) = [s for s in DESCRIPTION.servers if s.address == "127.53.25.2"]
    query = dns.message.make_query("www.forge.lab.", "A", want_dnssec=True)
    reply = lab_response(served, spec.faults, query)
    assert reply is not None
    assert [rrset.to_text() for rrset in reply.answer] == ["www.forge.lab. 300 IN A 192.0.2.66"]
    other = lab_response(served, spec.faults, dns.message.make_query("www.forge.lab.", "AAAA"))
    assert other is not None and other.answer == []


@pytest.mark.parametrize(
    ("faults", "message"),
    [('forge = { "www.x." = "A not-an-address" }', "forge"), ("forge = 3", "forge")],
)
def test_a_bad_forge_fault_is_named(faults: str, message: str) -> None:
    text = '[zones]\n"x." = "x.zone"\n[servers."ns.x."]\naddress = "127.0.0.9"\nzones = ["x."]\n'
    with pytest.raises(LabDescriptionError, match=message):
        parse_lab_description(text + f"faults = {{ {faults} }}\n", LAB_DIR)


def test_a_signed_file_needs_its_zone() -> None:
    with pytest.raises(LabDescriptionError, match="signed"):
        parse_lab_description('[signed]\n"x." = "signed/x.zone"\n', LAB_DIR)
