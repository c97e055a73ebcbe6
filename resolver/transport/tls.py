"""The server side of TLS for DoT (RFC 7858) and DoH (RFC 8484): a certificate and key pair
that can be replaced while serving (SIGHUP), with the standard library's ``ssl``.

A listening socket keeps the :class:`ssl.SSLContext` it was made with, so the context given to
the listener never changes: its SNI callback (called for every handshake, with or without a
server name) hands each new connection the context of the current pair. A reload builds a
whole new context first; when the files are bad it raises and the old pair keeps serving.
Connections already open keep the pair they started with.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path


class TlsError(ValueError):
    """The certificate or key cannot be used; the message names the setting and the file."""


def server_context(cert: Path, key: Path, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A server context with ``cert`` and ``key`` (PEM) loaded, TLS 1.2 or later (RFC 8310
    §9 and RFC 7525 §3.1.1: no SSL, no TLS 1.0 or 1.1), offering ``alpn`` (RFC 7301)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for setting, path, marker, what in (
        ("tls_cert", cert, b"-----BEGIN CERTIFICATE-----", "PEM certificate"),
        ("tls_key", key, b"PRIVATE KEY-----", "PEM private key"),
    ):
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise TlsError(f"{setting} = {path}: cannot read: {exc.strerror}") from None
        if marker not in text:
            raise TlsError(f"{setting} = {path}: no {what} in it")
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsError(
            f"tls_cert = {cert}, tls_key = {key}: not a PEM certificate and its private key, "
            f"or the key is not the certificate's ({exc.reason or exc})"
        ) from None
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


class ReloadableTls:
    """A listener's TLS context whose certificate and key :meth:`reload` replaces for the
    connections that start afterwards."""

    def __init__(self, cert: Path, key: Path, alpn: Sequence[str] = ()) -> None:
        self._alpn = tuple(alpn)
        self._current = server_context(cert, key, alpn)
        self.context = server_context(cert, key, alpn)
        """What the listening socket is made with; never replaced."""
        self.context.sni_callback = self._choose

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, _: object) -> None:
        """Called in each handshake once the client's hello is read (RFC 6066 §3): serve the
        current pair."""
        del server_name
        connection.context = self._current

    def prepare(self, cert: Path, key: Path) -> ssl.SSLContext:
        """The context for ``cert`` and ``key``, for :meth:`use`; raises :class:`TlsError`
        when they cannot be used."""
        return server_context(cert, key, self._alpn)

    def use(self, context: ssl.SSLContext) -> None:
        """Serve ``context``'s pair to the connections that start from now on."""
        self._current = context
