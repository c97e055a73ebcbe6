"""Each setting's converter: a raw value (a TOML value, or a string from the environment or
a flag) to the typed value :class:`~resolver.config.settings.Settings` holds, and the value
types they make (:class:`Endpoint`).

A converter raises ``ValueError`` with what was expected; :mod:`resolver.config.source`
puts the file, line and key (or the variable, or the flag) in front of it, so a bad value
reads the same wherever it came from.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.name

from resolver.access import AccessRule, parse_network
from resolver.names import InvalidNameError, parse_name

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address and port; IPv6 is written ``[::1]:5300``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> Endpoint:
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?", text.strip())
        if match is None:
            raise ValueError(f"not ADDR:PORT or [V6ADDR]:PORT: {text!r}")
        host = match.group(1) or match.group(3)
        port_text = match.group(2) or match.group(4)
        if port_text is None and default_port is None:
            raise ValueError(f"no port in {text!r}")
        port = int(port_text) if port_text is not None else default_port
        assert port is not None
        if not 0 <= port <= 65535:
            raise ValueError(f"port out of range in {text!r}")
        return cls(str(ipaddress.ip_address(host)), port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def split_list(raw: Any) -> list[str]:
    """A list from TOML, or a comma-separated string from the environment or a flag."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise ValueError("expected a list of strings")


def endpoints(raw: Any) -> tuple[Endpoint, ...]:
    values = tuple(Endpoint.parse(item) for item in split_list(raw))
    if not values:
        raise ValueError("at least one listen address is needed")
    return values


def optional_endpoint(raw: Any) -> Endpoint | None:
    if raw == "off":
        return None
    if not isinstance(raw, str):
        raise ValueError("expected ADDR:PORT or off")
    return Endpoint.parse(raw)


DOT_PORT = 853
"""RFC 7858 §3.1: DNS over TLS listens on port 853."""
DOH_PORT = 443
"""RFC 8484 §3: DoH is HTTPS, whose port is 443."""


def _endpoint_with_port(raw: Any, default_port: int) -> Endpoint | None:
    if raw == "off":
        return None
    if not isinstance(raw, str):
        raise ValueError(f"expected ADDR[:PORT] (port {default_port} when not given) or off")
    return Endpoint.parse(raw, default_port)


def dot_endpoint(raw: Any) -> Endpoint | None:
    """Where DNS over TLS listens: ``off``, or an address with port 853 by default."""
    return _endpoint_with_port(raw, DOT_PORT)


def doh_endpoint(raw: Any) -> Endpoint | None:
    """Where DNS over HTTPS listens: ``off``, or an address with port 443 by default."""
    return _endpoint_with_port(raw, DOH_PORT)


def control_endpoint(raw: Any) -> Endpoint | None:
    endpoint = optional_endpoint(raw)
    if endpoint is not None and not ipaddress.ip_address(endpoint.host).is_loopback:
        raise ValueError(f"the control endpoint must be on loopback, not {endpoint.host}")
    return endpoint


def networks(raw: Any) -> tuple[IPNetwork, ...]:
    return tuple(parse_network(item) for item in split_list(raw))


def access_rules(raw: Any) -> tuple[AccessRule, ...]:
    return tuple(AccessRule.parse(item) for item in split_list(raw))


def path(raw: Any) -> Path:
    if not isinstance(raw, str) or not raw:
        raise ValueError("expected a file name")
    return Path(raw)


def paths(raw: Any) -> tuple[Path, ...]:
    """File names, a list in TOML or comma-separated elsewhere."""
    return tuple(path(item) for item in split_list(raw))


def domain_names(raw: Any) -> tuple[dns.name.Name, ...]:
    """Domain names; each absolute whether or not it ends in a dot (relative to the root,
    :func:`resolver.names.parse_name`), as every name a setting holds."""
    try:
        return tuple(parse_name(item) for item in split_list(raw))
    except InvalidNameError as exc:
        raise ValueError(str(exc)) from exc


def port(raw: Any) -> int:
    value = integer(raw)
    if not 1 <= value <= 65535:
        raise ValueError(f"port out of range: {value}")
    return value


def integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    raise ValueError(f"expected a whole number, got {raw!r}")


def ttl(raw: Any) -> int:
    """A TTL in seconds: 0 to 2^31 - 1 (RFC 2181 §8)."""
    value = integer(raw)
    if not 0 <= value <= 2**31 - 1:
        raise ValueError(f"a TTL from 0 to 2147483647 seconds, got {value}")
    return value


def positive_int(raw: Any) -> int:
    value = integer(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def number_of_seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected seconds")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected seconds, got {raw!r}") from None


def seconds(raw: Any) -> float:
    value = number_of_seconds(raw)
    if not 0 < value <= 3600:
        raise ValueError(f"must be more than 0 and at most 3600 seconds, got {value:g}")
    return value


def grace_seconds(raw: Any) -> float:
    """Seconds from 0 (no wait) to 60."""
    value = number_of_seconds(raw)
    if not 0 <= value <= 60:
        raise ValueError(f"must be from 0 to 60 seconds, got {value:g}")
    return value


def boolean(raw: Any) -> bool:
    """A TOML boolean; from the environment or a flag, its spelling ``true`` or ``false``.
    (``"yes"``, ``1`` and ``on`` are errors: one spelling everywhere.)"""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {raw!r}")


def rate(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"must not be negative, got {value:g}")
    return value


def rate_limit_action(raw: Any) -> str:
    if raw not in ("drop", "refuse"):
        raise ValueError(f"expected drop or refuse, got {raw!r}")
    return str(raw)


def log_format(raw: Any) -> str:
    if raw not in ("text", "json"):
        raise ValueError(f"expected text or json, got {raw!r}")
    return str(raw)


def log_level(raw: Any) -> str:
    if not isinstance(raw, str) or raw.upper() not in logging.getLevelNamesMapping():
        raise ValueError(f"unknown log level {raw!r}: DEBUG, INFO, WARNING or ERROR")
    return raw.upper()
