"""The test suite's own parts that other tests lean on: the port allocator and the wait for
a line a process prints."""

from __future__ import annotations

import socket
import time

import pytest

from tests.ports import free_port, is_free
from tests.process import RootwalkProcess


def test_free_port_never_repeats_and_skips_a_taken_port() -> None:
    first = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", first + 1))  # the next candidate, taken for UDP only
        assert not is_free(first + 1)
        second = free_port()
    assert second > first + 1
    assert free_port() not in (first, second)


def test_waiting_for_a_line_fails_at_once_when_the_process_exits_first() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        process = RootwalkProcess(
            "serve", "--listen", f"127.0.0.1:{port}", "--metrics", "off", "--control", "off"
        )
        started = time.monotonic()
        with pytest.raises(AssertionError, match="exited before printing"):
            process.wait_listening(f"127.0.0.1:{port}", timeout=60)
    assert time.monotonic() - started < 30  # not the guard's timeout
    assert process.wait(10) == 1
    assert "address already in use" in process.output()
