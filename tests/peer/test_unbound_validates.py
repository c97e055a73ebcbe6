"""Unbound 1.17, validating with the lab's anchor, sees each signed lab zone as the lab means
it (issue 12 item 7): secure zones AD, insecure ones not, each broken zone SERVFAIL with the
Extended DNS Error of its fault (RFC 8914). Runs as the differential test does (root,
``unshare --net``, Unbound installed) and skips otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.peer.harness import why_not_runnable
from tests.peer.signed_lab_unbound import EXPECTED, run_in_namespace


@pytest.mark.peer
def test_unbound_validates_the_signed_lab_as_intended(tmp_path: Path) -> None:
    reason = why_not_runnable()
    if reason is not None:
        pytest.skip(reason)
    returncode, output = run_in_namespace(tmp_path)
    assert returncode == 0, output
    rows = json.loads((tmp_path / "validated.json").read_text())
    assert len(rows) == len(EXPECTED)
    wrong = {
        f"{name} {rdtype}": f"got {rcode} AD={ad} EDE={ede} {text!r}"
        for name, rdtype, rcode, ad, ede, text in rows
        if (rcode, ad, ede) != EXPECTED[(name, rdtype)]
    }
    assert not wrong, wrong
