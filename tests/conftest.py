"""Suite-wide options: the differential test against Unbound (``tests/peer``) runs only when
asked for, with ``--peer`` or ``ROOTWALK_PEER=1`` (it is deselected otherwise)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--peer", action="store_true", help="run the differential test against Unbound"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peer: the differential test against Unbound (--peer)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--peer") or os.environ.get("ROOTWALK_PEER") == "1":
        return
    deselected = [item for item in items if item.get_closest_marker("peer") is not None]
    if deselected:
        items[:] = [item for item in items if item.get_closest_marker("peer") is None]
        config.hook.pytest_deselected(items=deselected)
