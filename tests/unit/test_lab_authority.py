"""The lab's authoritative answer function (RFC 1034 §4.3.2, RFC 4592, RFC 2308)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from resolver.lab.authority import ServedZone, authoritative_answer, lab_response, load_zone
from resolver.lab.description import Faults, LabDescriptionError, parse_lab_description
from tests.helpers import LAB_DIR, lab_with

DESCRIPTION = lab_with()
ZONES = {z: load_zone(str(p), z) for z, p in DESCRIPTION.zone_files.items()}


def ask(zones: list[str], qname: str, qtype: str = "A") -> dns.message.Message:
    served: dict[dns.name.Name, ServedZone] = {
        dns.name.from_text(z): ZONES[dns.name.from_text(z)] for z in zones
    }
    return authoritative_answer(served, dns.message.make_query(qname, qtype))


def test_root_refers_to_the_tld_with_glue() -> None:
    reply = ask(["."], "www.example.lab.")
    assert not reply.flags & dns.flags.AA
    assert reply.answer == []
    assert reply.authority[0].name == dns.name.from_text("lab.")
    glue = {r.name.to_text() for r in reply.additional}
    assert glue == {"ns1.nic.lab.", "ns2.nic.lab."}


def test_referral_without_glue_for_a_glueless_delegation() -> None:
    reply = ask(["lab."], "www.glueless.lab.")
    assert reply.authority[0].name == dns.name.from_text("glueless.lab.")
    assert reply.additional == []


def test_authoritative_answer() -> None:
    reply = ask(["example.lab."], "www.example.lab.")
    assert reply.flags & dns.flags.AA
    assert reply.answer[0][0].to_text() == "192.0.2.10"


def test_in_zone_cname_is_chased_out_of_zone_is_not() -> None:
    inzone = ask(["example.lab."], "inzone.example.lab.")
    assert [r.rdtype for r in inzone.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    alias = ask(["example.lab."], "alias.example.lab.")
    assert [r.rdtype for r in alias.answer] == [dns.rdatatype.CNAME]


def test_nxdomain_and_nodata_carry_the_soa() -> None:
    nx = ask(["example.lab."], "nx.example.lab.")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.authority[0].rdtype == dns.rdatatype.SOA
    assert nx.authority[0].ttl == 60
    nodata = ask(["example.lab."], "www.example.lab.", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert nodata.answer == []
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA


def test_wildcard_synthesis_and_its_limits() -> None:
    reply = ask(["example.lab."], "a.b.wild.example.lab.")
    assert reply.answer[0].name == dns.name.from_text("a.b.wild.example.lab.")
    assert reply.answer[0][0].to_text() == "192.0.2.50"
    # RFC 4592 §2.2.1: the wildcard does not match its own parent.
    parent = ask(["example.lab."], "wild.example.lab.")
    assert parent.rcode() == dns.rcode.NOERROR
    assert parent.answer == []


def test_empty_non_terminal_is_nodata() -> None:
    reply = ask(["example.lab."], "ent.example.lab.")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []


def test_any_returns_every_rrset() -> None:
    reply = ask(["example.lab."], "www.example.lab.", "ANY")
    assert {r.rdtype for r in reply.answer} == {dns.rdatatype.A, dns.rdatatype.AAAA}


def test_names_outside_the_served_zones_are_refused() -> None:
    assert ask(["example.lab."], "www.other.example.").rcode() == dns.rcode.REFUSED


def test_cname_loop_in_one_zone_is_bounded() -> None:
    zone = dns.name.from_text("loop.test.")
    text = (
        "$ORIGIN loop.test.\n@ 300 SOA ns hm 1 1 1 1 1\n@ 300 NS ns\na 300 CNAME b\nb 300 CNAME a\n"
    )
    served = ServedZone.from_zone(dns.zone.from_text(text, origin=zone, relativize=False))
    reply = authoritative_answer({zone: served}, dns.message.make_query("a.loop.test.", "A"))
    assert [r.name.to_text() for r in reply.answer] == ["a.loop.test.", "b.loop.test."]


def test_description_errors_name_the_key() -> None:
    text = '[zones]\n"lab." = "lab.zone"\n[servers."x."]\naddress = "127.53.0.9"\nzones = ["lab."]\nfaults = { explode = true }\n'
    with pytest.raises(LabDescriptionError, match=r"servers.'x.'.faults.explode: unknown fault"):
        parse_lab_description(text, LAB_DIR)
    missing = '[servers."x."]\naddress = "127.53.0.9"\nzones = ["nowhere."]\n'
    with pytest.raises(LabDescriptionError, match=r"no zone file for nowhere\."):
        parse_lab_description(missing, LAB_DIR)


def test_every_lab_server_address_is_on_loopback() -> None:
    for spec in DESCRIPTION.servers:  # ::1 is the lab's one IPv6 server (v6.nsh.lab.)
        assert spec.address.startswith("127.53.") or spec.address == "::1"


# --- the lab's authority -----------------------------------------------------------------

LONG = "x" * 63
DNAME_LAB = dns.name.from_text("dname.lab.")


def ask_dname(qname: str, faults: Faults | None = None) -> dns.message.Message:
    """dname.lab.'s server (RFC 6672 §3.2), with ``faults``."""
    query = dns.message.make_query(qname, "A")
    return authoritative_answer({DNAME_LAB: ZONES[DNAME_LAB]}, query, faults)


def test_lab_answers_a_dname_and_its_cname_with_the_dnames_ttl() -> None:
    reply = ask_dname("www.moved.dname.lab.")
    assert reply.flags & dns.flags.AA
    assert [(r.name.to_text(), r.rdtype, r.ttl) for r in reply.answer] == [
        ("moved.dname.lab.", dns.rdatatype.DNAME, 600),
        ("www.moved.dname.lab.", dns.rdatatype.CNAME, 600),
    ]
    assert reply.answer[1][0].target == dns.name.from_text("www.new.example.")


def test_lab_chases_a_dname_inside_the_zone_and_leaves_the_owner_alone() -> None:
    reply = ask_dname("www.here.dname.lab.")
    assert [r.rdtype for r in reply.answer] == [
        dns.rdatatype.DNAME,
        dns.rdatatype.CNAME,
        dns.rdatatype.A,
    ]
    owner = ask_dname("moved.dname.lab.")
    assert [r.rdtype for r in owner.answer] == [dns.rdatatype.A]


def test_lab_answers_yxdomain_past_255_octets() -> None:
    reply = ask_dname(f"{LONG}.long.dname.lab.")
    assert reply.rcode() == dns.rcode.YXDOMAIN
    assert [r.rdtype for r in reply.answer] == [dns.rdatatype.DNAME]


def test_lab_faults_lie_beside_the_dname() -> None:
    lie = ask_dname("www.moved.dname.lab.", Faults(dname_cname_target=True))
    assert lie.answer[1][0].target == dns.name.from_text("www.wrong.dname.lab.")
    old = ask_dname("www.moved.dname.lab.", Faults(dname_cname_ttl0=True))
    assert old.answer[1].ttl == 0 and old.answer[1][0].target == dns.name.from_text(
        "www.new.example."
    )


def answer_with(zone: str, faults: Faults, qname: str) -> dns.message.Message | None:
    served = {dns.name.from_text(zone): ZONES[dns.name.from_text(zone)]}
    return lab_response(served, faults, dns.message.make_query(qname, "A"))


def test_nxdomain_for_ent_breaks_only_empty_non_terminals() -> None:
    broken = Faults(nxdomain_for_ent=True)
    ent = answer_with("entnx.lab.", broken, "b.entnx.lab.")
    assert ent is not None and ent.rcode() == dns.rcode.NXDOMAIN
    leaf = answer_with("entnx.lab.", broken, "www.a.b.entnx.lab.")
    assert leaf is not None and leaf.answer[0][0].to_text() == "192.0.2.81"
    nodata = answer_with("entnx.lab.", broken, "entnx.lab.")  # the apex has no A: NODATA
    assert nodata is not None and nodata.rcode() == dns.rcode.NOERROR
    healthy = answer_with("entnx.lab.", Faults(), "b.entnx.lab.")
    assert healthy is not None and healthy.rcode() == dns.rcode.NOERROR


def test_on_nodata_answers_an_rcode_or_nothing_instead_of_nodata() -> None:
    refused = answer_with("refuse.lab.", Faults(on_nodata="REFUSED"), "a.b.refuse.lab.")
    assert refused is not None and refused.rcode() == dns.rcode.REFUSED
    assert answer_with("dropmin.lab.", Faults(on_nodata="drop"), "b.dropmin.lab.") is None
    full = answer_with("dropmin.lab.", Faults(on_nodata="drop"), "www.a.b.dropmin.lab.")
    assert full is not None and full.answer[0][0].to_text() == "192.0.2.83"
    referral = answer_with("lab.", Faults(on_nodata="drop"), "dropmin.lab.")
    assert referral is not None and referral.authority[0].name == dns.name.from_text("dropmin.lab.")
    with pytest.raises(LabDescriptionError, match="on_nodata"):
        lab_with('[servers."x.lab."]\naddress = "127.53.22.9"\nzones = ["lab."]\n'
                 'faults = { on_nodata = "NOPE" }\n')  # fmt: skip
