"""The absolute/relative name rule and glibc's search-list order."""

import dns.name
import pytest

from resolver.names import (
    InvalidNameError,
    is_at_or_below,
    key_of_wire,
    name_key,
    name_wire,
    parent_key,
    parse_name,
    search_candidates,
    suffix_key,
)
from resolver.records import name_from_wire

LAB = dns.name.from_text("example.lab.")


def test_trailing_dot_is_absolute_whatever_the_origin() -> None:
    assert parse_name("www.example.com.", LAB) == dns.name.from_text("www.example.com.")


def test_relative_name_is_appended_to_the_origin() -> None:
    assert parse_name("www", LAB) == dns.name.from_text("www.example.lab.")
    assert parse_name("example.com") == dns.name.from_text("example.com.")


@pytest.mark.parametrize("text", ["", "a..b", " www", "x" * 64 + ".lab"])
def test_bad_names_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(InvalidNameError, match="not a domain name"):
        parse_name(text)


def test_fewer_dots_than_ndots_tries_the_search_list_first() -> None:
    names = search_candidates("www", [LAB], ndots=1)
    assert names == [dns.name.from_text("www.example.lab."), dns.name.from_text("www.")]


def test_enough_dots_tries_the_name_as_is_first() -> None:
    names = search_candidates("www.other", [LAB], ndots=1)
    assert names[0] == dns.name.from_text("www.other.")
    assert names[1] == dns.name.from_text("www.other.example.lab.")


def test_ndots_raises_the_bar() -> None:
    names = search_candidates("www.other", [LAB], ndots=2)
    assert names[0] == dns.name.from_text("www.other.example.lab.")


def test_absolute_name_skips_the_search_list() -> None:
    assert search_candidates("www.", [LAB], ndots=5) == [dns.name.from_text("www.")]


def test_no_search_list_leaves_the_name_alone() -> None:
    assert search_candidates("www", [], ndots=1) == [dns.name.from_text("www.")]


def test_a_name_key_is_the_lower_cased_wire_name_from_either_form() -> None:
    upper = dns.name.from_text("WWW.Example.LAB.")
    key = name_key(upper)
    assert key == b"\x03www\x07example\x03lab\x00"
    assert name_key(dns.name.from_text("www.example.lab.")) == key
    assert key_of_wire(name_wire(upper)) == key
    assert name_key(dns.name.root) == b"\x00"
    assert name_from_wire(key) == upper  # names compare without regard to case


@pytest.mark.parametrize("text", ["a.b.c.example.lab.", "x.", "Mixed.CASE.lab.", "."])
def test_ancestor_keys_are_the_keys_of_the_ancestor_names(text: str) -> None:
    name = dns.name.from_text(text)
    key = name_key(name)
    for labels in range(1, len(name) + 1):
        ancestor = dns.name.Name(name.labels[len(name) - labels :])
        assert suffix_key(key, labels) == name_key(ancestor)
    if len(name) > 1:
        assert parent_key(key) == name_key(name.parent())


@pytest.mark.parametrize(
    ("name", "zone", "inside"),
    [
        ("a.example.lab.", "example.lab.", True),
        ("example.lab.", "example.lab.", True),
        ("a.b.example.lab.", ".", True),
        ("xexample.lab.", "example.lab.", False),  # a suffix of bytes, not of labels
        ("lab.", "example.lab.", False),
    ],
)
def test_at_or_below_follows_label_boundaries(name: str, zone: str, inside: bool) -> None:
    key, zone_key = name_key(dns.name.from_text(name)), name_key(dns.name.from_text(zone))
    assert is_at_or_below(key, zone_key) is inside
