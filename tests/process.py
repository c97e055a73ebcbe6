"""A ``rootwalk`` process started by a test, waited on by the lines it prints.

Tests wait for a fact the process states (``listening on ADDR:PORT``, the lab's banner,
``N workers running``, ``configuration reloaded``) instead of polling it with queries on
short timeouts: the process's output is read line by line as it comes, by one thread per
stream, and kept, so a test can wait for a line and still read everything afterwards. The
timeout only guards a hang; a process that exits first fails the wait at once, with its
output in the message.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from resolver.server import RESOLVER_READY

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 30.0
"""Only guards a hang: a server that starts at all starts in a second or two."""

Stream = Literal["stdout", "stderr"]


def listening(endpoint: str) -> str:
    """The line ``ResolverService`` logs once it listens on ``endpoint`` (UDP and TCP)."""
    return f"listening on {endpoint} (UDP and TCP)"


LAB_READY = "rootwalk lab: resolver on"
"""The start of the banner ``rootwalk lab`` prints on stdout once the lab and the resolver
both listen."""
RELOADED = "configuration reloaded"
"""Logged on each applied SIGHUP, followed by "; caches kept" or, when the DNSSEC settings
changed, "; DNSSEC settings changed, caches flushed"."""


class WatchedProcess(subprocess.Popen[str]):
    """A command run from the repository, its output read as it comes (the tests of
    ``deploy/`` watch dnsdist with it too)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        super().__init__(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self._lines: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._ended: set[Stream] = set()
        self._changed = threading.Condition()
        assert self.stdout is not None and self.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(name, pipe), daemon=True)
            for name, pipe in (("stdout", self.stdout), ("stderr", self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: Stream, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended.add(name)
            self._changed.notify_all()

    def wait_for(
        self,
        text: str,
        *,
        stream: Stream = "stderr",
        count: int = 1,
        timeout: float = READY_TIMEOUT_S,
    ) -> None:
        """Until ``count`` lines of ``stream`` contain ``text``; fails if the stream ends
        (the process exited) first, or after ``timeout`` seconds (a hang)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(text in line for line in self._lines[stream]) < count:
                left = deadline - time.monotonic()
                if stream in self._ended or left <= 0:
                    why = "exited" if stream in self._ended else f"hung for {timeout} s"
                    raise AssertionError(
                        f"{self.args!r} {why} before printing {text!r} {count} time(s); "
                        f"stdout:\n{''.join(self._lines['stdout'])}\n"
                        f"stderr:\n{''.join(self._lines['stderr'])}"
                    )
                self._changed.wait(left)

    def output(self, stream: Stream = "stderr") -> str:
        """Everything printed on ``stream``; after the process exited, all of it."""
        if self.poll() is not None:
            for reader in self._readers:
                reader.join(READY_TIMEOUT_S)
        with self._changed:
            return "".join(self._lines[stream])

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``signum`` and wait for the exit status; kill after ``timeout`` seconds.
        Returns the status from ``signum``, or None if the process had to be killed."""
        if self.poll() is not None:
            return self.returncode
        self.send_signal(signum)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait(timeout)
            return None


class RootwalkProcess(WatchedProcess):
    """``python -m resolver ARGS``, run from the repository, its output read as it comes."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__([sys.executable, "-m", "resolver", *args], env=env)

    def wait_listening(self, *endpoints: str, timeout: float = READY_TIMEOUT_S) -> RootwalkProcess:
        """Until ``rootwalk serve`` listens on each of ``endpoints`` (``ADDR:PORT`` text) and
        then says it is ready (its SIGHUP handler is in place only from then on)."""
        for endpoint in endpoints:
            self.wait_for(listening(endpoint), timeout=timeout)
        self.wait_for(RESOLVER_READY, timeout=timeout)
        return self
