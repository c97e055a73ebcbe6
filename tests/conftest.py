"""Suite-wide options: the differential test against Unbound (``tests/peer``) runs with the
rest of the suite (it skips where Unbound or ``unshare --net`` is missing); ``--no-peer`` or
``ROOTWALK_PEER=0`` leaves it out of a quick local run."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-peer", action="store_true", help="leave out the differential test against Unbound"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "peer: the differential test against Unbound")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (config.getoption("--no-peer") or os.environ.get("ROOTWALK_PEER") == "0"):
        return
    deselected = [item for item in items if item.get_closest_marker("peer") is not None]
    if deselected:
        items[:] = [item for item in items if item.get_closest_marker("peer") is None]
        config.hook.pytest_deselected(items=deselected)
