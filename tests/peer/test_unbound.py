"""The differential test: Rootwalk and Unbound 1.17 on the lab, every derived question, over
UDP with and without EDNS and TCP, twice, with QNAME minimisation on and off (issue 10).

A difference that ``allowed_differences.toml`` does not list fails the test, and so does a
listed difference that no longer occurs. Run it alone (as root, it makes a network namespace):

    .venv/bin/pytest -p no:cacheprovider --peer tests/peer
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peer import validating
from tests.peer.compare import judge, load_allowed, report
from tests.peer.harness import load_results, replies, run_in_namespace, why_not_runnable


@pytest.mark.peer
def test_rootwalk_answers_every_lab_question_as_unbound_does(tmp_path: Path) -> None:
    reason = why_not_runnable()
    if reason is not None:
        pytest.skip(reason)
    returncode, output = run_in_namespace(tmp_path)
    assert returncode == 0, output
    data = load_results(tmp_path)
    rootwalk, unbound = replies(data["rootwalk"]), replies(data["unbound"])
    expected = len(data["questions"]) * 6 * 2  # 3 transports, twice, qmin on and off
    assert len(rootwalk) == len(unbound) == expected, (
        f"not every question was asked: {data['seconds']}"
    )
    verdict = judge(rootwalk, unbound, load_allowed())
    assert not verdict.failed, report(verdict, len(data["questions"]), data["skipped"])


@pytest.mark.peer
def test_rootwalk_validates_every_lab_question_as_validating_unbound_does(tmp_path: Path) -> None:
    """The validating run (issue 12): both resolvers validate with the lab's trust anchor;
    every derived question with DO=1 and DO=0, a third with DO=1 and CD=1; rcode, AD, EDE
    (when Unbound gives one) and the answer RRsets compared (tests/peer/validating.py)."""
    reason = why_not_runnable()
    if reason is not None:
        pytest.skip(reason)
    returncode, output = validating.run_in_namespace(tmp_path)
    assert returncode == 0, output
    data = load_results(tmp_path)
    rootwalk, unbound = replies(data["rootwalk"]), replies(data["unbound"])
    expected = validating.expected_askings(len(data["questions"]))
    assert len(rootwalk) == len(unbound) == expected, (
        f"not every question was asked: {data['seconds']}"
    )
    verdict = judge(rootwalk, unbound, load_allowed(validating=True))
    assert not verdict.failed, report(verdict, len(data["questions"]), data["skipped"])
