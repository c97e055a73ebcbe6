"""The absolute/relative name rule and glibc's search-list order."""

import dns.name
import pytest

from resolver.names import InvalidNameError, parse_name, search_candidates

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
