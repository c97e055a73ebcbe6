from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator

import pytest

from resolver.config import Endpoint, Settings
from resolver.paths import lab_root_hints
from tests.helpers import lab_with
from tests.integration.stack import Stack

# Every fixed port the tests listen on stays below 32768, where Linux's ephemeral range
# (ip_local_port_range) starts: an upstream query's socket may hold any port in that range
# for a moment, and a server started on it then cannot bind (seen: a `rootwalk serve` on
# 35400 never answered).
LAB_PORT = 20053
RESOLVER_PORT = 25300


def lab_settings(port: int, **changes: object) -> Settings:
    """The resolver pointed at the lab, loopback only, with timeouts shrunk for tests."""
    settings = Settings(
        listen=(Endpoint("127.0.0.1", port), Endpoint("::1", port)),
        root_hints=lab_root_hints(),
        outbound_allow=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        outbound_port=LAB_PORT,
        upstream_timeout_s=0.3,
        client_deadline_s=3.0,
        metrics=None,
        control=None,
    )
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = Stack(lab_settings(RESOLVER_PORT), lab_with(), LAB_PORT).start()
    yield running
    running.stop()
