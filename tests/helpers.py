"""Shared test helpers: the lab description, and building variants of it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from resolver.lab.description import LabDescription, parse_lab_description
from resolver.paths import lab_description

LAB_TOML = lab_description()
LAB_DIR = LAB_TOML.parent


def lab_with(extra_toml: str = "") -> LabDescription:
    """The lab's description, with TOML appended (for tests of the description's parser).

    Tests build faulty variants through the description's API instead
    (``lab_with().with_faults("127.53.3.1", drop=1.0)``, ``.with_zone_file(...)``).
    """
    text = LAB_TOML.read_text()
    return parse_lab_description(text + "\n" + extra_toml, LAB_DIR, "test lab")


def lab_zone(tmp_path: Path, name: str, body: str) -> Path:
    """Write an extra zone file for a test."""
    path = tmp_path / f"{name}zone"
    path.write_text(body)
    return path


def run_rootwalk(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the command line (``python -m resolver ...``) to its end."""
    return subprocess.run(
        [sys.executable, "-m", "resolver", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
