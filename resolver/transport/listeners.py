"""UDP and TCP listeners that hand each query to an async handler (RFC 1035 §4.2, RFC 7766).

The same listeners serve the resolver's clients and the lab's authoritative servers; only
the handler differs. TCP connections carry several queries, answered as each finishes (out of
order, RFC 7766 §6.2.1.1), close after an idle timeout, and are limited in number.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from resolver.model import Transport
from resolver.transport.batch import EndOfTurn
from resolver.transport.framing import frame, split_frames

log = logging.getLogger(__name__)

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

Handler = Callable[[bytes, str, Transport], Awaitable[bytes | None]]
"""Takes (query bytes, client IP address, transport); returns the reply, or None to drop."""

FastHandler = Callable[[bytes, str, Transport], bytes | None]
"""Answers at once without awaiting (a cache hit), returns empty bytes to drop the query, or
None for the slow handler."""

LaterHandler = Callable[[bytes, str, Transport, Callable[[bytes | None], None]], bool]
"""Starts answering without a task: calls its last argument once with the reply (None to
drop), at once or later; returns False when it cannot (the async handler answers then)."""


def _no_fast_answer(wire: bytes, client: str, transport: Transport) -> bytes | None:
    del wire, client, transport
    return None


def _no_later_answer(
    wire: bytes, client: str, transport: Transport, send: Callable[[bytes | None], None]
) -> bool:
    del wire, client, transport, send
    return False


@dataclass(frozen=True, slots=True)
class TcpLimits:
    idle_timeout_s: float = 10.0
    max_connections: int = 256


def _socket(host: str, port: int, kind: socket.SocketKind, reuse_port: bool) -> socket.socket:
    """A bound socket; IPv6 sockets are IPv6-only so v4 and v6 listen separately."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_DGRAM:
            # Room for bursts while a miss is being resolved (the kernel caps it at
            # net.core.rmem_max); the default ~200 KiB drops a burst of a few hundred queries.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(slots=True)
class ListenerCounters:
    handler_errors: int = 0
    """Exceptions out of a handler: bugs (the query got no answer)."""


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(
        self, handler: Handler, fast: FastHandler, later: LaterHandler, counters: ListenerCounters
    ) -> None:
        self._handler = handler
        self._fast = fast
        self._later = later
        self._counters = counters
        self._transport: asyncio.DatagramTransport | None = None
        # Made by the endpoint's factory, in the running loop; asked once (a getpid call).
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: EndOfTurn[tuple[bytes, tuple[str | int, ...]]] = EndOfTurn(
            self._loop, self._send_all
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = typing.cast(asyncio.DatagramTransport, transport)

    def _send_all(self, outbox: list[tuple[bytes, tuple[str | int, ...]]]) -> None:
        """Send the replies of one turn of the loop (see :mod:`resolver.transport.batch`)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for reply, addr in outbox:
            try:
                transport.sendto(reply, addr)
            except Exception:  # one bad send must not cost the others theirs
                self._counters.handler_errors += 1
                log.exception("sending a reply to %s failed", addr[0])

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client = str(addr[0])
        try:
            reply = self._fast(data, client, Transport.UDP)
        except Exception:
            self._counters.handler_errors += 1
            log.exception("fast path failed for a UDP query from %s", client)
            reply = None
        if reply is not None:
            self._send_soon(addr, reply)
            return
        try:
            if self._later(data, client, Transport.UDP, functools.partial(self._send_soon, addr)):
                return  # answered without a task (~10 µs less per query)
        except Exception:
            self._counters.handler_errors += 1
            log.exception("handler failed for a UDP query from %s", client)
            return
        task = self._loop.create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = await self._handler(data, str(addr[0]), Transport.UDP)
        except Exception:
            self._counters.handler_errors += 1
            log.exception("handler failed for a UDP query from %s", addr[0])
            return
        if reply is not None:
            self._send_soon(addr, reply)

    def _send_soon(self, addr: tuple[str | int, ...], reply: bytes | None) -> None:
        """Queue ``reply`` (None or empty: nothing to send) for the end of this turn."""
        if reply:
            self._outbox.add((reply, addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)

    async def cancel_pending(self) -> None:
        """Stop answering: cancel every query still being resolved."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _DroppingUdp(asyncio.DatagramProtocol):
    """A UDP socket's protocol while shutting down: what arrives is dropped."""

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        del data, addr


class _TcpConnection(asyncio.Protocol):
    def __init__(self, server: TcpServerState) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = typing.cast(asyncio.Transport, transport)
        self._transport = transport
        if self._server.connections >= self._server.limits.max_connections:
            self._server.rejected += 1
            transport.abort()
            return
        self._server.connections += 1
        self._server.open.add(self)
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if peer else ""
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        try:
            messages = split_frames(self._buffer)
        except ValueError:
            self.close()
            return
        for message in messages:
            try:
                reply = self._server.fast(message, self._client, Transport.TCP)
            except Exception:
                self._server.counters.handler_errors += 1
                log.exception("fast path failed for a TCP query from %s", self._client)
                reply = None
            if reply is not None:
                if reply:
                    assert self._transport is not None
                    self._transport.write(frame(reply))
                continue
            task = asyncio.get_running_loop().create_task(self._answer(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm_idle_timer()

    async def _answer(self, message: bytes) -> None:
        try:
            reply = await self._server.handler(message, self._client, Transport.TCP)
        except Exception:
            self._server.counters.handler_errors += 1
            log.exception("handler failed for a TCP query from %s", self._client)
            return
        if reply is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(reply))

    def _arm_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._server.limits.idle_timeout_s, self._on_idle)

    def _on_idle(self) -> None:
        if self._tasks:  # queries still being answered: not idle (RFC 7766 §6.2.3)
            self._arm_idle_timer()
            return
        self.close()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def stop_reading(self) -> None:
        """Take no more queries on this connection; those in flight are still answered."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self in self._server.open:
            self._server.open.discard(self)
            self._server.connections -= 1
        for task in self._tasks:
            task.cancel()
        self._transport = None


@dataclass(slots=True)
class TcpServerState:
    handler: Handler
    fast: FastHandler
    limits: TcpLimits
    counters: ListenerCounters
    connections: int = 0
    rejected: int = 0
    open: set[_TcpConnection] = field(default_factory=set)


class Listeners:
    """The bound sockets of one service, and how to close them."""

    def __init__(
        self,
        handler: Handler,
        tcp_limits: TcpLimits | None = None,
        fast: FastHandler = _no_fast_answer,
        later: LaterHandler = _no_later_answer,
    ) -> None:
        self.handler = handler
        self.fast = fast
        self.later = later
        self.counters = ListenerCounters()
        self.tcp = TcpServerState(handler, fast, tcp_limits or TcpLimits(), self.counters)
        self._udp: list[tuple[asyncio.DatagramTransport, _UdpProtocol]] = []
        self._servers: list[asyncio.Server] = []
        self.bound: list[tuple[str, int, Transport]] = []

    async def listen_udp(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen for UDP on host:port; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        sock = _socket(host, port, socket.SOCK_DGRAM, reuse_port)
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.handler, self.fast, self.later, self.counters), sock=sock
        )
        self._udp.append((transport, protocol))
        bound_port = int(sock.getsockname()[1])
        self.bound.append((host, bound_port, Transport.UDP))
        return bound_port

    async def listen_tcp(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen for TCP on host:port; returns the port."""
        loop = asyncio.get_running_loop()
        sock = _socket(host, port, socket.SOCK_STREAM, reuse_port)
        server = await loop.create_server(lambda: _TcpConnection(self.tcp), sock=sock, backlog=1024)
        self._servers.append(server)
        bound_port = int(sock.getsockname()[1])
        self.bound.append((host, bound_port, Transport.TCP))
        return bound_port

    def stop_accepting(self) -> None:
        """Take no more queries, but keep what answers those in flight: TCP listeners stop
        accepting, open connections stop reading, and datagrams arriving on a UDP socket are
        dropped (the socket still sends the replies being resolved)."""
        for server in self._servers:
            server.close()
        for connection in list(self.tcp.open):
            connection.stop_reading()
        for transport, _protocol in self._udp:
            transport.set_protocol(_DroppingUdp())

    async def close(self) -> None:
        for transport, protocol in self._udp:
            transport.close()
            await protocol.cancel_pending()
        for server in self._servers:
            server.close()
        for connection in list(self.tcp.open):
            connection.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._udp.clear()
        self._servers.clear()
