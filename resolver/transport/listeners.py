"""UDP and TCP listeners that hand each query to one call, ``on_query`` (RFC 1035 §4.2,
RFC 7766).

The same listeners serve the resolver's clients (:meth:`Frontend.on_query
<resolver.frontend.Frontend.on_query>`) and the lab's authoritative servers (an async
handler run in a task, :class:`TaskAnswerer`). ``on_query`` answers at once (a cache hit:
the reply bytes), drops the query, or answers later through a callback. TCP connections
carry several queries, answered as each finishes (RFC 7766 §6.2.1.1), close when idle,
and are limited in number."""

from __future__ import annotations

import asyncio
import contextlib
import enum
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

Address = tuple[str | int, ...]
"""A client's socket address, as asyncio gives it (host, port[, flowinfo, scope])."""


class NoReply(enum.Enum):
    """What ``on_query`` returns when it has no reply to send at once."""

    DROP = "drop"
    """Nothing is sent for this query, now or later."""
    PENDING = "pending"
    """The reply comes later: ``reply_to`` is called exactly once (perhaps even before
    ``on_query`` returns)."""


DROP: typing.Final = NoReply.DROP
PENDING: typing.Final = NoReply.PENDING

ReplyTo = Callable[[Address, "bytes | None"], None]
"""How a pending query is answered: ``reply_to(address, reply)``, once; None sends nothing.
The address travels apart from the callback so that no callback is made per query."""

OnQuery = Callable[[bytes, str, Transport, ReplyTo, Address], "bytes | NoReply"]
"""The one way in for a query: ``on_query(wire, client, transport, reply_to, address)``
with the client's IP address as text; returns the reply to send now (bytes), :data:`DROP`
or :data:`PENDING`. ``reply_to`` is called only after :data:`PENDING`; when ``on_query``
raises, it is not called."""

Handler = Callable[[bytes, str, Transport], Awaitable["bytes | None"]]
"""An async handler (the lab's servers): (query bytes, client IP address, transport) ->
the reply, or None to drop; :class:`TaskAnswerer` makes it an :data:`OnQuery`."""


@dataclass(slots=True)
class ListenerCounters:
    handler_errors: int = 0
    """Exceptions out of a handler: bugs (the query got no answer)."""


class TaskAnswerer:
    """An :data:`OnQuery` that runs an async handler in a task per query (for handlers that
    wait, as the lab's servers do when a fault delays them)."""

    def __init__(self, handler: Handler, counters: ListenerCounters) -> None:
        self._handler = handler
        self._counters = counters
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(
        self, wire: bytes, client: str, transport: Transport, reply_to: ReplyTo, address: Address
    ) -> NoReply:
        task = asyncio.get_running_loop().create_task(
            self._answer(wire, client, transport, reply_to, address)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return PENDING

    async def _answer(
        self, wire: bytes, client: str, transport: Transport, reply_to: ReplyTo, address: Address
    ) -> None:
        try:
            reply = await self._handler(wire, client, transport)
        except Exception:
            self._counters.handler_errors += 1
            log.exception("handler failed for a %s query from %s", transport.value, client)
            reply = None
        reply_to(address, reply)

    async def cancel(self) -> None:
        """Stop answering: cancel every query still being answered."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_query: OnQuery, counters: ListenerCounters) -> None:
        self._on_query = on_query
        self._counters = counters
        self._transport: asyncio.DatagramTransport | None = None
        # Made by the endpoint's factory, in the running loop; asked once (a getpid call).
        self._loop = asyncio.get_running_loop()
        self._outbox: EndOfTurn[tuple[bytes, Address]] = EndOfTurn(self._loop, self._send_all)
        self._reply_to: ReplyTo = self._send_soon  # bound once, not per query

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = typing.cast(asyncio.DatagramTransport, transport)

    def _send_all(self, outbox: list[tuple[bytes, Address]]) -> None:
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

    def datagram_received(self, data: bytes, addr: Address) -> None:
        client = str(addr[0])
        try:
            reply = self._on_query(data, client, Transport.UDP, self._reply_to, addr)
        except Exception:
            self._counters.handler_errors += 1
            log.exception("handler failed for a UDP query from %s", client)
            return
        if type(reply) is bytes:  # not DROP or PENDING
            self._outbox.add((reply, addr))

    def _send_soon(self, addr: Address, reply: bytes | None) -> None:
        """Queue ``reply`` (None: nothing to send) for the end of this turn."""
        if reply:
            self._outbox.add((reply, addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)


class _DroppingUdp(asyncio.DatagramProtocol):
    """A UDP socket's protocol while shutting down: what arrives is dropped."""

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        del data, addr


class StreamConnection(asyncio.Protocol):
    """One client connection of a stream transport (TCP, DoT, DoH): the connection limit,
    the idle timer (RFC 7766 §6.2.3: not idle while queries are being answered) and closing.
    A subclass reads queries in ``data_received`` and counts them in ``_waiting``."""

    def __init__(self, server: TcpServerState, kind: Transport) -> None:
        self._server = server
        self._kind = kind
        """The transport the frontend is told (TCP, DoT or DoH)."""
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._waiting = 0
        """Queries on this connection still being answered."""
        self._reply_to: ReplyTo = self._reply_later  # bound once, not per query
        self._idle: asyncio.TimerHandle | None = None
        self._stopped = False  # by stop_reading (shutting down): reading never resumes

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

    def _reply_later(self, address: Address, reply: bytes | None) -> None:
        """The reply to a query that was pending (None: nothing to send)."""
        raise NotImplementedError

    def _arm_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._server.limits.idle_timeout_s, self._on_idle)

    def _on_idle(self) -> None:
        if self._waiting:  # queries still being answered: not idle (RFC 7766 §6.2.3)
            self._arm_idle_timer()
        elif self._transport is not None and self._transport.get_write_buffer_size():
            self._transport.abort()  # replies unread for a whole idle period: close() waits
        else:
            self.close()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def stop_reading(self) -> None:
        """Take no more queries on this connection; those in flight are still answered."""
        self._stopped = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def pause_writing(self) -> None:
        """The client is not reading its replies (past the high-water mark): read none of its
        queries until it does, or pipelining (RFC 7766 §6.2.1.1) grows our buffer no end."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """The client read its replies: read its queries again (unless shutting down)."""
        if not self._stopped and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self in self._server.open:
            self._server.open.discard(self)
            self._server.connections -= 1
        self._transport = None  # replies still being resolved are dropped when they come


class TcpConnection(StreamConnection):
    """DNS messages with a two-octet length (RFC 1035 §4.2.2) over TCP, or over TLS for DoT
    (RFC 7858 §3.3: the same framing), answered as each finishes (RFC 7766 §6.2.1.1)."""

    def __init__(self, server: TcpServerState, kind: Transport = Transport.TCP) -> None:
        super().__init__(server, kind)
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        try:
            messages = split_frames(self._buffer)
        except ValueError:
            self.close()
            return
        on_query = self._server.on_query
        kind = self._kind
        for message in messages:
            self._waiting += 1  # before the call: a pending reply may come before it returns
            try:
                reply = on_query(message, self._client, kind, self._reply_to, ())
            except Exception:
                self._waiting -= 1
                self._server.counters.handler_errors += 1
                log.exception("handler failed for a %s query from %s", kind.value, self._client)
                continue
            if reply is PENDING:
                continue
            self._waiting -= 1
            if reply is not DROP and self._transport is not None:
                self._transport.write(frame(reply))
        self._arm_idle_timer()

    def _reply_later(self, address: Address, reply: bytes | None) -> None:
        """The reply to a query that was pending (None: nothing to send)."""
        del address  # one client per connection
        self._waiting -= 1
        if reply is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(reply))


ConnectionFactory = Callable[["TcpServerState", Transport], StreamConnection]
"""Makes the protocol of one accepted connection: :class:`TcpConnection`, or DoH's."""


@dataclass(slots=True)
class TcpServerState:
    on_query: OnQuery
    limits: TcpLimits
    counters: ListenerCounters
    connections: int = 0
    rejected: int = 0
    open: set[StreamConnection] = field(default_factory=set)


class Listeners:
    """The bound sockets of one service, and how to close them."""

    def __init__(
        self,
        on_query: OnQuery,
        tcp_limits: TcpLimits | None = None,
        *,
        counters: ListenerCounters | None = None,
    ) -> None:
        self.on_query = on_query
        self.counters = counters or ListenerCounters()
        self.tcp = TcpServerState(on_query, tcp_limits or TcpLimits(), self.counters)
        self._udp: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.Server] = []
        self._answerer: TaskAnswerer | None = None
        self.bound: list[tuple[str, int, Transport]] = []

    @classmethod
    def for_handler(cls, handler: Handler, tcp_limits: TcpLimits | None = None) -> Listeners:
        """Listeners that answer each query with an async handler, in a task of its own."""
        counters = ListenerCounters()
        answerer = TaskAnswerer(handler, counters)
        listeners = cls(answerer, tcp_limits, counters=counters)
        listeners._answerer = answerer  # its tasks are cancelled on close
        return listeners

    def _udp_protocol(self) -> asyncio.DatagramProtocol:
        """The protocol of each UDP socket (a subclass may read more than DNS from it:
        :mod:`resolver.transport.proxied`)."""
        return _UdpProtocol(self.on_query, self.counters)

    def _tcp_connection(self) -> asyncio.Protocol:
        """The protocol of each accepted TCP connection."""
        return TcpConnection(self.tcp)

    async def listen_udp(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen for UDP on host:port; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        sock = _socket(host, port, socket.SOCK_DGRAM, reuse_port)
        transport, protocol = await loop.create_datagram_endpoint(self._udp_protocol, sock=sock)
        del protocol
        self._udp.append(transport)
        bound_port = int(sock.getsockname()[1])
        self.bound.append((host, bound_port, Transport.UDP))
        return bound_port

    async def listen_tcp(
        self,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        kind: Transport = Transport.TCP,
        connection: ConnectionFactory | None = None,
    ) -> int:
        """Listen for TCP on host:port; returns the port. Each accepted connection is
        ``connection(state, kind)`` (DoT and DoH start TLS in theirs:
        :mod:`resolver.transport.encrypted`), or the plain one of :meth:`_tcp_connection`.
        Every stream transport shares :attr:`tcp`: its limits and its count of open
        connections."""
        loop = asyncio.get_running_loop()
        sock = _socket(host, port, socket.SOCK_STREAM, reuse_port)
        state = self.tcp
        server = await loop.create_server(
            self._tcp_connection if connection is None else lambda: connection(state, kind),
            sock=sock,
            backlog=1024,
        )
        self._servers.append(server)
        bound_port = int(sock.getsockname()[1])
        self.bound.append((host, bound_port, kind))
        return bound_port

    def stop_accepting(self) -> None:
        """Take no more queries, but keep what answers those in flight: TCP listeners stop
        accepting, open connections stop reading, and datagrams arriving on a UDP socket are
        dropped (the socket still sends the replies being resolved)."""
        for server in self._servers:
            server.close()
        for connection in list(self.tcp.open):
            connection.stop_reading()
        for transport in self._udp:
            transport.set_protocol(_DroppingUdp())

    async def close(self) -> None:
        for transport in self._udp:
            transport.close()
        if self._answerer is not None:
            await self._answerer.cancel()
        for server in self._servers:
            server.close()
        for connection in list(self.tcp.open):
            connection.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._udp.clear()
        self._servers.clear()
