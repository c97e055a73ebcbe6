"""The short versions of benchmarks/flood.py: a random-subdomain flood and a mixed soak, a few
seconds each on loopback, bounded in rate. The resolver must stay up, keep answering cached
names during the flood, answer correctly afterwards, and not grow past its cache limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import free_port, lab_port

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "flood.py"


@pytest.mark.parametrize("mode", ["flood", "soak"])
def test_short_run(mode: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            mode,
            "--seconds",
            "4",
            "--rate",
            "1000",
            "--port",
            str(free_port()),
            "--lab-port",
            str(lab_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = json.loads(result.stdout)
    assert summary["alive"], result.stderr
    assert summary["probes_failed"] == 0
    assert summary["answers_correct_after"]
    assert summary["replies"] > 0
    assert result.returncode == 0
