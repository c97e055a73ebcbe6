from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator

import pytest

from resolver.config import Endpoint, Settings
from resolver.paths import lab_root_hints, lab_trust_anchor
from tests.helpers import lab_with
from tests.integration.stack import Stack
from tests.ports import free_port, lab_port

# The session's lab and resolver; every other server a test starts takes its ports from
# tests.ports too (see there why they stay below 32768).
LAB_PORT = lab_port()
RESOLVER_PORT = free_port()


def lab_settings(port: int, **changes: object) -> Settings:
    """The resolver pointed at the lab, loopback only, with timeouts shrunk for tests."""
    settings = Settings(
        listen=(Endpoint("127.0.0.1", port), Endpoint("::1", port)),
        root_hints=lab_root_hints(),
        trust_anchors=(lab_trust_anchor(),),
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
