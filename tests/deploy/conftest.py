"""The lab for the deployment tests, in a background thread's event loop, on real sockets.

The resolvers under test are separate ``rootwalk serve`` processes (and dnsdist in front of
them), so only the lab runs in the test process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from resolver.lab.server import Lab
from tests.helpers import lab_with
from tests.ports import lab_port


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The lab's servers, on a port of their own (``Lab.port``)."""
    running = Lab(lab_with(), lab_port())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(running.start(), loop).result(20)
    yield running
    asyncio.run_coroutine_threadsafe(running.close(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
