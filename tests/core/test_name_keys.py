"""Name keys are carried, not recomputed (issue 11 point 4): a resolution reads the key its
question, zone cuts, queries and RRsets were made with, so a dnspython name is turned into
a key only where it enters, as a typed name (here: the harness's question from text)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

import resolver.names
from resolver.cache.view import Caches
from resolver.model import Question
from resolver.names import NameKey
from tests.core.harness import lab_responder, lab_root, resolve
from tests.helpers import lab_with

LAB = lab_responder(lab_with())


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dns.name.Name]]:
    """Every name turned into a key through ``name_key``, wherever it is imported."""
    converted: list[dns.name.Name] = []
    original = resolver.names.name_key

    def counted(name: dns.name.Name) -> NameKey:
        converted.append(name)
        return original(name)

    for module in list(sys.modules.values()):
        if module.__name__.startswith("resolver") and getattr(module, "name_key", None) is original:
            monkeypatch.setattr(module, "name_key", counted)
    yield converted


@pytest.mark.parametrize(
    ("qname", "warm"),
    [
        ("n1.example.lab.", True),  # the zone's delegation cached: one query
        ("n2.example.lab.", False),  # every cache empty: from the root, minimised
        ("chain.example.lab.", False),  # three CNAME hops through three zones
        ("www.glueless.lab.", False),  # sub-resolutions for a glueless name server
        ("a.b.c.d.e.f.g.h.qmin.lab.", False),  # minimised ancestors and empty non-terminals
    ],
)
def test_a_resolution_converts_only_its_questions_name(
    qname: str, warm: bool, conversions: list[dns.name.Name]
) -> None:
    root = lab_root()
    caches = Caches()
    if warm:
        resolve("www.example.lab.", "A", LAB, caches=caches, root=root)
    conversions.clear()
    walk = resolve(qname, "A", LAB, caches=caches, root=root)
    assert walk.result.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    assert [name.to_text() for name in conversions] == [qname]  # Question(from_text(qname))


def test_a_question_hashes_and_compares_by_its_key() -> None:
    upper = dns.name.from_text("WWW.Example.lab.")
    lower = dns.name.from_text("www.example.lab.")
    key = NameKey(b"\x03www\x07example\x03lab\x00")
    given = Question(upper, dns.rdatatype.A, qname_key=key)
    made = Question(lower, dns.rdatatype.A)
    assert made.qname_key == key
    assert given == made and hash(given) == hash(made)
    assert given != Question(lower, dns.rdatatype.AAAA)
    assert {given: 1}[made] == 1
