"""Where the bundled zone files are: the source tree, or ``share/rootwalk`` when installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def zones_dir() -> Path:
    """``$ROOTWALK_ZONES``, else ``zones/`` beside the package, else the installed copy."""
    if env := os.environ.get("ROOTWALK_ZONES"):
        return Path(env)
    beside = Path(__file__).resolve().parent.parent / "zones"
    if (beside / "lab" / "lab.toml").exists():
        return beside
    return Path(sys.prefix) / "share" / "rootwalk" / "zones"


def real_root_hints() -> Path:
    return zones_dir() / "root.hints"


def real_root_anchors() -> Path:
    """The IANA root trust anchors (the DS records of the root KSKs)."""
    return zones_dir() / "root-anchors.ds"


def lab_trust_anchor() -> Path:
    """The lab root's trust anchor (``python -m resolver.lab.sign`` writes it)."""
    return zones_dir() / "lab" / "trust-anchor.ds"


def lab_root_hints() -> Path:
    return zones_dir() / "lab" / "root.hints"


def lab_description() -> Path:
    return zones_dir() / "lab" / "lab.toml"
