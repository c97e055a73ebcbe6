"""The lab's header and question faults (``no_aa``, ``swap_case``, ``wrong_question``), as
served by the servers of ``awk.example.lab.``'s children (zones/lab/lab.toml)."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name

from resolver.lab.server import Lab
from resolver.model import Transport
from tests.helpers import lab_with


def served_by(address: str, qname: str) -> dns.message.Message:
    """What the lab server at ``address`` replies over UDP to ``qname A``."""
    lab = Lab(lab_with(), port=0)
    query = dns.message.make_query(qname, "A")
    wire = asyncio.run(lab.authority(address).handle(query.to_wire(), "127.0.0.1", Transport.UDP))
    assert wire is not None
    return dns.message.from_wire(wire)


def test_no_aa_answers_its_own_zone_without_the_aa_bit() -> None:
    reply = served_by("127.53.27.10", "www.noaa.awk.example.lab.")
    assert not reply.flags & dns.flags.AA
    assert reply.answer[0][0].to_text() == "192.0.2.110"
    assert served_by("127.53.27.1", "www.awk.example.lab.").flags & dns.flags.AA


def test_swap_case_echoes_the_question_with_each_letters_case_swapped() -> None:
    reply = served_by("127.53.27.11", "www.CASE.awk.example.lab.")
    assert reply.question[0].name.to_text() == "WWW.case.AWK.EXAMPLE.LAB."
    assert reply.answer[0][0].to_text() == "192.0.2.111"


def test_wrong_question_names_another_name() -> None:
    reply = served_by("127.53.27.12", "www.wrongq.awk.example.lab.")
    assert reply.question[0].name == dns.name.from_text("wrong.www.wrongq.awk.example.lab.")
    good = served_by("127.53.27.13", "www.wrongq.awk.example.lab.")
    assert good.question[0].name == dns.name.from_text("www.wrongq.awk.example.lab.")
