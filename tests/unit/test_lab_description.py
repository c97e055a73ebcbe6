"""The lab description's API for faulty variants: tests change servers through it, not by
editing the TOML text."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from tests.helpers import lab_with

LAB = lab_with()


def test_with_faults_adds_to_the_named_servers_only_and_leaves_the_original() -> None:
    perslow = LAB.server("127.53.20.1").faults.delay_names
    assert perslow  # the lab's own fault for this server
    changed = LAB.with_faults("127.53.20.1", "127.53.3.2", spray=48)
    assert changed.server("127.53.20.1").faults.spray == 48
    assert changed.server("127.53.20.1").faults.delay_names == perslow  # kept, not replaced
    assert changed.server("127.53.3.2").faults.spray == 48
    assert changed.server("127.53.3.1").faults.spray == 0
    assert LAB.server("127.53.20.1").faults.spray == 0  # frozen: a new description
    assert [s.address for s in changed.servers] == [s.address for s in LAB.servers]


def test_with_faults_rejects_unknown_servers_and_faults() -> None:
    with pytest.raises(KeyError, match=r"127\.53\.99\.99"):
        LAB.with_faults("127.53.99.99", drop=1.0)
    with pytest.raises(TypeError):
        LAB.with_faults("127.53.3.1", dropp=1.0)


def test_with_zone_file_serves_a_zone_from_another_file(tmp_path: Path) -> None:
    path = tmp_path / "nsh.lab.zone"
    changed = LAB.with_zone_file("nsh.lab.", path)
    assert changed.zone_files[dns.name.from_text("nsh.lab.")] == path
    assert LAB.zone_files[dns.name.from_text("nsh.lab.")] != path
    with pytest.raises(KeyError):
        LAB.with_zone_file("nothere.lab.", path)
