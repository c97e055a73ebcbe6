"""What a failed bind says: the setting, the flag that changes it, and for a privileged port
what to do (the listeners, the control socket and the metrics endpoint share it); and the
encrypted listeners started from their settings."""

from __future__ import annotations

import errno

from resolver.config import Settings
from resolver.model import Transport
from resolver.transport.encrypted import EncryptedListeners
from resolver.transport.listeners import Listeners


def bind_error(setting: str, endpoint: object, exc: OSError, *, can_be_off: bool) -> OSError:
    """An OSError from binding ``endpoint`` for ``setting``, reworded to say which setting
    it was, the flag that changes it, and for a privileged port what to do."""
    flag = f"--{setting.replace('_', '-')}"
    change = f"use {flag} ADDR:PORT" + (f" or {flag} off" if can_be_off else "")
    if exc.errno == errno.EADDRINUSE:
        why = f"address already in use (another rootwalk, or another server?); {change}"
    elif exc.errno == errno.EACCES:
        why = (
            "permission denied: ports below 1024 need root or the CAP_NET_BIND_SERVICE "
            "capability (see README.md, 'Running it for real'), or "
            + change.replace("ADDR:PORT", "ADDR:PORT with a port of 1024 or more", 1)
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"no such address on this machine; {change}"
    else:
        why = f"{exc.strerror or exc}; {change}"
    return OSError(exc.errno, f"{setting} = {endpoint}: {why}")


async def listen_encrypted(
    listeners: Listeners, settings: Settings, reuse_port: bool
) -> EncryptedListeners | None:
    """The DoT and DoH listeners ``settings`` ask for, or None when neither is on; a bad
    certificate or key raises :class:`~resolver.transport.tls.TlsError`, a failed bind
    :func:`bind_error`'s OSError."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        return None  # neither listener is on (the config refuses one without the pair)
    encrypted = EncryptedListeners(listeners, cert, key, reuse_port=reuse_port)
    for kind, setting in ((Transport.DOT, "dot_listen"), (Transport.DOH, "doh_listen")):
        endpoint = getattr(settings, setting)
        try:
            if endpoint is not None:
                await encrypted.listen(kind, endpoint.host, endpoint.port)
        except OSError as exc:
            raise bind_error(setting, endpoint, exc, can_be_off=True) from exc
    return encrypted
