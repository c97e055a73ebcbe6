"""``dnssec = false`` answers DO clients as Unbound 1.17 with validation off (``module-config:
"iterator"``) does, on every signed lab case (issue 12): the same rcode, never AD, the
RRSIGs in the answer and a denial's NSEC/NSEC3 with their RRSIGs in the authority section,
and the broken zones' data as it is; the second asking (from the cache) too. Runs as the
differential test does (``unshare --net``, Unbound installed) and skips otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.peer.harness import why_not_runnable
from tests.peer.iterator_only import run_in_namespace
from tests.peer.signed_lab_unbound import EXPECTED


@pytest.mark.peer
def test_without_validation_a_do_client_sees_what_unbound_iterator_gives(tmp_path: Path) -> None:
    reason = why_not_runnable()
    if reason is not None:
        pytest.skip(reason)
    returncode, output = run_in_namespace(tmp_path)
    assert returncode == 0, output
    rows = json.loads((tmp_path / "iterator_only.json").read_text())
    assert len(rows) == len(EXPECTED)
    assert not any(row["unbound"][1] for row in rows.values())  # Unbound sets no AD either
    different = {
        question: row
        for question, row in rows.items()
        if not row["rootwalk"][:4] == row["rootwalk_cached"][:4] == row["unbound"][:4]
    }
    assert not different, different
    signed = rows["www.secure.lab. A"]["rootwalk"]
    assert signed[2] == ["A", "RRSIG"]  # the point of it: the RRSIGs are there
