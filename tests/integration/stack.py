"""The lab and a resolver running in a background thread's event loop, on real sockets.

Tests talk to them with real clients (dnspython, dig) from the test thread; the lab's
per-server query counters are read directly.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from resolver.config import Settings
from resolver.lab.description import LabDescription
from resolver.lab.server import Lab
from resolver.server import ResolverService

T = TypeVar("T")


class Stack:
    """A lab (optional) and a resolver, started in a thread of their own."""

    def __init__(
        self,
        settings: Settings,
        lab: LabDescription | None = None,
        lab_port: int = 0,
        clock: Callable[[], float] = time.time,
        insecure_upstream: bool = False,
    ) -> None:
        self.settings = settings
        self.lab = Lab(lab, lab_port) if lab is not None else None
        self.service = ResolverService(
            settings,
            rng=random.Random(53),
            clock=clock,
            insecure_upstream_for_tests=insecure_upstream,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> Stack:
        self._thread.start()
        if self.lab is not None:
            self.run(self.lab.start())
        self.run(self.service.start())
        return self

    def stop(self) -> None:
        self.run(self.service.close())
        if self.lab is not None:
            self.run(self.lab.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def port(self) -> int:
        """The resolver's port (its first listening endpoint's)."""
        return self.settings.listen[0].port

    @property
    def lab_server(self) -> Lab:
        assert self.lab is not None
        return self.lab
