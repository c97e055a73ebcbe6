"""The encrypted client listeners, DoT (RFC 7858) and DoH (RFC 8484), with the certificate
and key they share: started beside the plain ones, and their pair replaced on SIGHUP.

Both are stream listeners of :class:`~resolver.transport.listeners.Listeners` (its connection
limit, idle timeout and shutdown): DoT is the TCP connection itself over TLS, DoH
:class:`~resolver.transport.doh.DohConnection`. The TLS handshake is ours to start
(:class:`TlsHandshake`), so that a connection counts under ``max_tcp_connections`` and its
idle timeout from the moment it is accepted, not only once its handshake is done.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import typing
from collections.abc import Callable
from pathlib import Path

from resolver.model import Transport
from resolver.transport import doh
from resolver.transport.listeners import (
    Address,
    Listeners,
    StreamConnection,
    TcpConnection,
    TcpServerState,
)
from resolver.transport.tls import ReloadableTls, TlsError

log = logging.getLogger(__name__)


class EncryptedListeners:
    """The TLS contexts of the DoT and DoH listeners of one :class:`Listeners`."""

    def __init__(self, listeners: Listeners, cert: Path, key: Path, *, reuse_port: bool) -> None:
        self._listeners = listeners
        self._cert = cert
        self._key = key
        self._reuse_port = reuse_port
        self._contexts: list[ReloadableTls] = []

    async def listen(self, kind: Transport, host: str, port: int) -> int:
        """Listen on host:port for DoT (RFC 7858 §3.3: TCP's framing and pipelining inside
        TLS) or DoH (HTTP/2 at ``/dns-query``); returns the port."""
        is_doh = kind is Transport.DOH
        tls = ReloadableTls(self._cert, self._key, doh.ALPN if is_doh else ())
        serve = doh.DohConnection if is_doh else TcpConnection

        def accept(state: TcpServerState, kind: Transport) -> StreamConnection:
            return TlsHandshake(state, kind, tls.context, lambda: serve(state, kind))

        bound = await self._listeners.listen_tcp(
            host, port, reuse_port=self._reuse_port, kind=kind, connection=accept
        )
        self._contexts.append(tls)
        log.info("listening on %s (%s)", _endpoint(host, bound), "DoH" if is_doh else "DoT")
        return bound

    def reload(self, cert: Path, key: Path) -> bool:
        """New connections get ``cert`` and ``key`` (SIGHUP). When they cannot be used the
        error is logged, every listener keeps its old pair, and the answer is False."""
        try:
            prepared = [tls.prepare(cert, key) for tls in self._contexts]  # all, or none
        except TlsError as exc:
            log.error("reload failed, keeping the running certificate: %s", exc)
            return False
        for tls, context in zip(self._contexts, prepared, strict=True):
            tls.use(context)
        self._cert, self._key = cert, key
        log.info("certificate reloaded from %s", cert)
        return True


class TlsHandshake(StreamConnection):
    """An accepted connection while its TLS handshake runs: counted, limited and timed out
    as any stream connection (asyncio's own TLS server counts a connection only once its
    handshake is done, so stalled handshakes held sockets past ``max_tcp_connections``);
    then handed to the connection that serves it (``serve``), with what came early."""

    _running: set[asyncio.Task[None]] = set()
    """The handshakes in progress (a task must be referenced while it runs)."""

    def __init__(
        self,
        server: TcpServerState,
        kind: Transport,
        context: ssl.SSLContext,
        serve: Callable[[], StreamConnection],
    ) -> None:
        super().__init__(server, kind)
        self._context = context
        self._serve = serve
        self._hello = bytearray()
        """TLS bytes read before start_tls took the socket (uvloop starts reading once
        ``connection_made`` returns, paused or not): given to TLS when it starts."""
        self._wrapped = False
        self._early = bytearray()
        """Application data read with the end of the handshake, before the hand-over."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._transport is None or self._transport.is_closing():
            return  # over the limit: aborted
        self._transport.pause_reading()  # until start_tls reads the client's hello
        task = asyncio.get_running_loop().create_task(self._handshake(self._transport))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handshake(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        starting = asyncio.ensure_future(
            loop.start_tls(
                raw,
                self,
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._server.limits.idle_timeout_s,
            )
        )
        await asyncio.sleep(0)  # start_tls has taken the socket and queued its connection_made
        self._wrapped = True
        if self._hello:  # fed after that connection_made, before anything read later
            loop.call_soon(_feed, raw.get_protocol(), bytes(self._hello))
        try:
            tls = await starting
        except Exception as exc:  # ssl.SSLError, a reset, the timeout: the client's doing
            log.debug("TLS handshake with %s failed: %s", self._client, exc)
            return  # start_tls closed the socket; connection_lost uncounted it
        if tls is None or tls.is_closing() or self._transport is None:
            return
        self.connection_lost(None)  # uncounted here, counted again by the connection
        connection = self._serve()
        tls.set_protocol(connection)
        connection.connection_made(tls)
        if self._stopped:  # the service began shutting down during the handshake
            connection.stop_reading()
        if self._early:
            connection.data_received(bytes(self._early))

    def data_received(self, data: bytes) -> None:
        (self._early if self._wrapped else self._hello).extend(data)

    def _reply_later(self, address: Address, reply: bytes | None) -> None:
        del address, reply  # no query is read before the handshake ends


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Give ``data`` to ``protocol`` as its transport would (TLS protocols are buffered)."""
    if not hasattr(protocol, "get_buffer"):
        typing.cast(asyncio.Protocol, protocol).data_received(data)
        return
    buffered = typing.cast(asyncio.BufferedProtocol, protocol)
    view = memoryview(data)
    while view:
        buffer = memoryview(buffered.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        buffered.buffer_updated(size)
        view = view[size:]


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
