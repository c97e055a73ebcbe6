"""The core is sans-IO (ARCHITECTURE.md, principle 1): checked on the source, not trusted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "resolver"
SANS_IO = [
    *sorted((PACKAGE / "core").glob("*.py")),
    *sorted((PACKAGE / "cache").glob("*.py")),
    PACKAGE / "mesh.py",
    PACKAGE / "screen.py",
    PACKAGE / "wire.py",
    PACKAGE / "names.py",
    PACKAGE / "model.py",
    PACKAGE / "records.py",
    PACKAGE / "memo.py",
    PACKAGE / "limits.py",
    PACKAGE / "lab" / "authority.py",
]
FORBIDDEN_MODULES = {
    "asyncio",
    "socket",
    "uvloop",
    "prometheus_client",
    "time",
    "selectors",
    "resolver.config",
}
FORBIDDEN_CALLS = {"time.time", "time.monotonic", "datetime.now", "random.random", "random.choice"}


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_sans_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    modules = imported_modules(tree)
    bad = {m for m in modules if m.split(".")[0] in FORBIDDEN_MODULES or m in FORBIDDEN_MODULES}
    assert not bad, f"{path.name} imports {bad}"
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not calls & FORBIDDEN_CALLS, f"{path.name} reads a clock or the global RNG"
