"""The encrypted client listeners, DoT (RFC 7858) and DoH (RFC 8484), with the certificate
and key they share: started beside the plain ones, and their pair replaced on SIGHUP.

Both are stream listeners of :class:`~resolver.transport.listeners.Listeners` (its connection
limit, idle timeout and shutdown): DoT is the TCP connection itself over TLS, DoH
:class:`~resolver.transport.doh.DohConnection`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from resolver.model import Transport
from resolver.transport import doh
from resolver.transport.listeners import Listeners, TcpConnection
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
        bound = await self._listeners.listen_tcp(
            host,
            port,
            reuse_port=self._reuse_port,
            tls=tls.context,
            kind=kind,
            connection=doh.DohConnection if is_doh else TcpConnection,
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


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
