"""One port allocator for every server a test starts (lab, resolver, control, metrics).

Each call hands out a port not handed out before in this test run, after checking that UDP
and TCP can both bind it on every address the server will listen on; so two servers started
by tests never share a port, and a port that a stopped server may still hold (a TCP socket
in TIME_WAIT, a process still exiting) is never handed out again. Ports stay below 32768,
where Linux's ephemeral range (``ip_local_port_range``) starts: an upstream query's socket
may take any port in that range for a moment, and a server started on it could not bind.
"""

from __future__ import annotations

import errno
import itertools
import socket
from collections.abc import Iterable

from resolver.lab.description import LabDescription
from tests.helpers import lab_with

FIRST_PORT = 20000
LAST_PORT = 32767
LOOPBACK = ("127.0.0.1", "::1")

_candidates = itertools.count(FIRST_PORT)


def is_free(port: int, addresses: Iterable[str] = LOOPBACK) -> bool:
    """Whether UDP and TCP can both bind ``port`` on each of ``addresses`` right now (an
    IPv6 address the host lacks counts as free: the servers skip it too)."""
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((address, port))
                except OSError as exc:
                    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                        continue
                    return False
    return True


def free_port(addresses: Iterable[str] = LOOPBACK) -> int:
    """A port never handed out before in this run, free for UDP and TCP on ``addresses``."""
    wanted = tuple(addresses)
    for port in _candidates:
        if port > LAST_PORT:
            break
        if is_free(port, wanted):
            return port
    raise RuntimeError(f"no free port left between {FIRST_PORT} and {LAST_PORT}")


def lab_port(description: LabDescription | None = None) -> int:
    """A port free on every address of the lab's servers (all of them by default)."""
    servers = (description or lab_with()).servers
    return free_port(server.address for server in servers)
