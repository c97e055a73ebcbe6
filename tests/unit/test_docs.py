"""The documents stay inside the repository (issue 14, items 9 and 10): every link in the
README and docs/ is relative and names a file a clone has; the unit's Documentation= names
the README where the install steps put it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_links_stay_inside_the_repository() -> None:
    checked = 0
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)]+)\)", document.read_text()):
            assert "://" not in target and not target.startswith("/"), (document, target)
            assert (document.parent / target.split("#")[0]).resolve().is_file(), (document, target)
            checked += 1
    assert checked, "no links found"
    assert "../shared" not in (ROOT / "README.md").read_text()


def test_unit_documentation_names_the_installed_readme() -> None:
    unit = (ROOT / "deploy" / "rootwalk.service").read_text()
    assert "Documentation=file:///opt/rootwalk/src/README.md" in unit
    readme = (ROOT / "README.md").read_text()
    steps = readme[readme.index("### The systemd unit") :]
    assert "--prefix=src/ HEAD | sudo tar -x -C /opt/rootwalk" in steps
