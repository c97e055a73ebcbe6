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


def lab_with(extra_toml: str = "", replace: dict[str, str] | None = None) -> LabDescription:
    """The lab's description with TOML appended, after textual replacements.

    Tests build faulty servers this way, without new code: a server is a few TOML lines.
    """
    text = LAB_TOML.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
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
