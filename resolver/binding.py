"""What a failed bind says: the setting, the flag that changes it, and for a privileged port
what to do (the listeners, the control socket and the metrics endpoint share it)."""

from __future__ import annotations

import errno


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
