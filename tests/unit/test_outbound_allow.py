"""Do not query localhost by default (issue 10, item 9): the outbound allow decision, as
Unbound's ``do-not-query-localhost: yes``. A local address (127.0.0.0/8, ::1, 0.0.0.0/8,
::) is allowed only by an allow-list entry inside those ranges; a broad entry such as
0.0.0.0/0 allows the internet but not this host."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from resolver.config import Settings, build_settings
from resolver.files import load_root_hints
from resolver.transport.upstream import is_allowed, is_local_address

ROOT = Path(__file__).resolve().parents[2]
EVERYWHERE = Settings().outbound_allow


def networks(*texts: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(text) for text in texts]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.53.20.1", "::1", "0.0.0.0", "0.1.2.3", "::", "::ffff:127.0.0.1"]
)
def test_the_default_allow_list_never_reaches_this_host(address: str) -> None:
    assert is_local_address(address)
    assert not is_allowed(address, EVERYWHERE)
    assert not is_allowed(address, networks("0.0.0.0/0", "::/0", "::ffff:0:0/96"))


@pytest.mark.parametrize("address", ["198.41.0.4", "192.0.2.1", "2001:503:ba3e::2:30", "::2"])
def test_the_default_allow_list_reaches_everything_else(address: str) -> None:
    assert not is_local_address(address)
    assert is_allowed(address, EVERYWHERE)


@pytest.mark.parametrize(
    ("address", "allow", "allowed"),
    [
        ("127.0.0.1", ["127.0.0.0/8"], True),
        ("127.53.20.1", ["127.53.0.0/16"], True),  # the lab named narrowly
        ("127.0.0.1", ["127.53.0.0/16"], False),  # a local address the entry does not cover
        ("127.0.0.1", ["0.0.0.0/1"], False),  # broad, so it names nothing local
        ("::1", ["::1/128"], True),
        ("::1", ["127.0.0.0/8"], False),
        ("0.0.0.0", ["0.0.0.0/8"], True),
        ("::", ["::/128"], True),
        ("::ffff:127.0.0.1", ["127.0.0.0/8"], True),  # IPv4-mapped: the IPv4 address decides
        ("192.0.2.1", ["127.0.0.0/8"], False),
    ],
)
def test_only_an_entry_inside_a_local_range_names_it(
    address: str, allow: list[str], allowed: bool
) -> None:
    assert is_allowed(address, networks(*allow)) is allowed


def test_the_deploy_settings_reach_the_real_roots_and_not_this_host() -> None:
    roots = load_root_hints(ROOT / "zones" / "root.hints").addresses()
    assert roots
    for file in ("rootwalk.toml", "container.toml"):
        allow = build_settings(config_file=ROOT / "deploy" / file).outbound_allow
        assert all(is_allowed(address, allow) for address in roots), file
        assert not any(is_allowed(a, allow) for a in ("127.0.0.1", "::1", "0.0.0.0", "::"))
