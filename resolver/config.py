"""One frozen Settings object, built from defaults, a TOML file, ``ROOTWALK_*`` environment
variables and command-line flags, in rising precedence.

Every value from every source goes through the same converter, so a bad value reads the
same wherever it came from: ``FILE: line N: key 'listen': ...`` for the file (the line when
the key can be found, or the TOML parser's line for syntax errors), ``ROOTWALK_LISTEN: ...``
for the environment, ``--listen: ...`` for flags. Names in the file are absolute or
relative to the root (see :mod:`resolver.names`).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import logging
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolver.access import AccessRule, parse_network
from resolver.paths import real_root_hints

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting is wrong; the message names the source, the key, and the line if known."""


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


def _default_listen(port: int) -> tuple[Endpoint, ...]:
    return (Endpoint("127.0.0.1", port), Endpoint("::1", port))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the resolver can be told. Timeouts are settings so tests can shrink them."""

    listen: tuple[Endpoint, ...] = _default_listen(53)
    root_hints: Path = field(default_factory=real_root_hints)
    allow_clients: tuple[AccessRule, ...] = ()
    """Added to the built-in rules (loopback allowed, everything else REFUSED)."""
    outbound_allow: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    )
    outbound_port: int = 53
    log_level: str = "INFO"
    log_format: str = "text"
    """``text`` or ``json`` (one JSON object per line)."""
    query_log: bool = False
    """Log every client query (client, name, type, rcode, transport, cached, seconds)."""
    upstream_timeout_s: float = 1.0
    client_deadline_s: float = 4.0
    tcp_idle_timeout_s: float = 10.0
    max_tcp_connections: int = 256
    answer_cache_bytes: int = 64 * 1024 * 1024
    serve_stale: bool = False
    serve_stale_client_timeout_s: float = 1.8
    """With ``serve_stale``: how long a client with an expired answer at hand waits for the
    refresh before the stale answer goes out (RFC 8767 §5 suggests 1.8 s; Unbound's
    serve-expired-client-timeout, 1800 ms)."""
    cache_file: Path | None = None
    metrics: Endpoint | None = Endpoint("127.0.0.1", 9153)
    """Where Prometheus scrapes ``/metrics``; None (``off``) for no endpoint."""
    control: Endpoint | None = Endpoint("127.0.0.1", 9154)
    """The control endpoint (loopback only) for ``rootwalk cache``; None (``off``). Not 8953:
    that is unbound-control's, and the two may run side by side."""
    client_rate_limit: float = 0.0
    """Queries per second per client address (0: no limit), as Unbound's ip-ratelimit."""
    client_rate_burst: float = 0.0
    """Bucket size: queries a client may send at once (0: the same as the rate)."""
    rate_limit_action: str = "drop"
    """Over the limit: ``drop`` the query or answer ``refuse`` (REFUSED)."""
    use_0x20: bool = False
    """Randomise the letter case of upstream query names; replies must echo it exactly."""
    max_pending_queries: int = 100
    """Client queries being resolved at once; past this, new misses are dropped (counted), so
    a flood of never-seen names cannot queue work without bound. Unbound's
    num-queries-per-thread is 1024, but a miss costs Rootwalk about 15 times more CPU and a
    deeper queue only starves the socket: benchmarks/flood.py kept every cached name answered
    under a 2,000 qps random-subdomain flood with 64 and 100, and lost some with 128 and more.
    At about 1,000 misses per CPU-second, 100 in flight covers 100 ms of upstream latency."""
    workers: int = 1
    """Resolver processes sharing the listening ports (SO_REUSEPORT), each with its own cache."""
    """Save the caches here at shutdown and load them at start (off when unset)."""
    rrset_cache_bytes: int = 64 * 1024 * 1024
    max_ttl: int = 86400
    """Longest time an RRset is cached, and the largest TTL a client sees (Unbound's
    cache-max-ttl)."""
    min_ttl: int = 0
    """Shortest time an RRset is cached (Unbound's cache-min-ttl); a TTL 0 record is cached
    only when this raises it."""
    max_negative_ttl: int = 3600
    """Longest time a negative answer is cached (Unbound's cache-max-negative-ttl)."""
    harden_glue: bool = True
    """Glue outside the zone of the server that sent it is never used (Unbound's
    harden-glue); off, it may still reach a name server when nothing else does."""
    qname_minimisation: bool = True
    """Ask each zone's servers only for the next label below their zone, with QTYPE A (RFC
    9156), falling back to the full name when a server mishandles that (Unbound's
    qname-minimisation: yes, qname-minimisation-strict: no)."""
    shutdown_grace_s: float = 2.0
    """On SIGTERM or SIGINT: stop taking queries, then give those in flight this long to be
    answered before exiting (0: exit at once)."""


# --- converters: raw value (TOML value, or a string from env/flags) -> typed value --------


def _split_list(raw: Any) -> list[str]:
    """A list from TOML, or a comma-separated string from the environment or a flag."""
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise ValueError("expected a list of strings")


def _endpoints(raw: Any) -> tuple[Endpoint, ...]:
    values = tuple(Endpoint.parse(item) for item in _split_list(raw))
    if not values:
        raise ValueError("at least one listen address is needed")
    return values


def _optional_endpoint(raw: Any) -> Endpoint | None:
    if raw == "off":
        return None
    if not isinstance(raw, str):
        raise ValueError("expected ADDR:PORT or off")
    return Endpoint.parse(raw)


def _control_endpoint(raw: Any) -> Endpoint | None:
    endpoint = _optional_endpoint(raw)
    if endpoint is not None and not ipaddress.ip_address(endpoint.host).is_loopback:
        raise ValueError(f"the control endpoint must be on loopback, not {endpoint.host}")
    return endpoint


def _networks(raw: Any) -> tuple[IPNetwork, ...]:
    return tuple(parse_network(item) for item in _split_list(raw))


def _access_rules(raw: Any) -> tuple[AccessRule, ...]:
    return tuple(AccessRule.parse(item) for item in _split_list(raw))


def _path(raw: Any) -> Path:
    if not isinstance(raw, str) or not raw:
        raise ValueError("expected a file name")
    return Path(raw)


def _port(raw: Any) -> int:
    value = _integer(raw)
    if not 1 <= value <= 65535:
        raise ValueError(f"port out of range: {value}")
    return value


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    raise ValueError(f"expected a whole number, got {raw!r}")


def _ttl(raw: Any) -> int:
    """A TTL in seconds: 0 to 2^31 - 1 (RFC 2181 §8)."""
    value = _integer(raw)
    if not 0 <= value <= 2**31 - 1:
        raise ValueError(f"a TTL from 0 to 2147483647 seconds, got {value}")
    return value


def _positive_int(raw: Any) -> int:
    value = _integer(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _number_of_seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected seconds")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected seconds, got {raw!r}") from None


def _seconds(raw: Any) -> float:
    value = _number_of_seconds(raw)
    if not 0 < value <= 3600:
        raise ValueError(f"must be more than 0 and at most 3600 seconds, got {value:g}")
    return value


def _grace_seconds(raw: Any) -> float:
    """Seconds from 0 (no wait) to 60."""
    value = _number_of_seconds(raw)
    if not 0 <= value <= 60:
        raise ValueError(f"must be from 0 to 60 seconds, got {value:g}")
    return value


def _boolean(raw: Any) -> bool:
    """A TOML boolean; from the environment or a flag, its spelling ``true`` or ``false``.
    (``"yes"``, ``1`` and ``on`` are errors: one spelling everywhere.)"""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {raw!r}")


def _rate(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"must not be negative, got {value:g}")
    return value


def _rate_limit_action(raw: Any) -> str:
    if raw not in ("drop", "refuse"):
        raise ValueError(f"expected drop or refuse, got {raw!r}")
    return str(raw)


def _log_format(raw: Any) -> str:
    if raw not in ("text", "json"):
        raise ValueError(f"expected text or json, got {raw!r}")
    return str(raw)


def _log_level(raw: Any) -> str:
    if not isinstance(raw, str) or raw.upper() not in logging.getLevelNamesMapping():
        raise ValueError(f"unknown log level {raw!r}: DEBUG, INFO, WARNING or ERROR")
    return raw.upper()


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "listen": _endpoints,
    "root_hints": _path,
    "allow_clients": _access_rules,
    "outbound_allow": _networks,
    "outbound_port": _port,
    "log_level": _log_level,
    "log_format": _log_format,
    "query_log": _boolean,
    "upstream_timeout_s": _seconds,
    "client_deadline_s": _seconds,
    "tcp_idle_timeout_s": _seconds,
    "max_tcp_connections": _positive_int,
    "answer_cache_bytes": _positive_int,
    "serve_stale": _boolean,
    "serve_stale_client_timeout_s": _seconds,
    "cache_file": _path,
    "metrics": _optional_endpoint,
    "control": _control_endpoint,
    "workers": _positive_int,
    "max_pending_queries": _positive_int,
    "use_0x20": _boolean,
    "client_rate_limit": _rate,
    "client_rate_burst": _rate,
    "rate_limit_action": _rate_limit_action,
    "rrset_cache_bytes": _positive_int,
    "max_ttl": _ttl,
    "min_ttl": _ttl,
    "max_negative_ttl": _ttl,
    "harden_glue": _boolean,
    "qname_minimisation": _boolean,
    "shutdown_grace_s": _grace_seconds,
}
assert set(CONVERTERS) == {f.name for f in dataclasses.fields(Settings)}

README_ORDER: tuple[str, ...] = (
    "listen",
    "root_hints",
    "allow_clients",
    "outbound_allow",
    "outbound_port",
    "log_level",
    "upstream_timeout_s",
    "client_deadline_s",
    "tcp_idle_timeout_s",
    "max_tcp_connections",
    "answer_cache_bytes",
    "rrset_cache_bytes",
    "serve_stale",
    "serve_stale_client_timeout_s",
    "cache_file",
    "metrics",
    "control",
    "workers",
    "use_0x20",
    "max_pending_queries",
    "client_rate_limit",
    "client_rate_burst",
    "rate_limit_action",
    "log_format",
    "query_log",
    "max_ttl",
    "min_ttl",
    "max_negative_ttl",
    "harden_glue",
    "qname_minimisation",
    "shutdown_grace_s",
)
"""The rows of the README's configuration table, in order (a test keeps the two in step);
``check-config`` prints the settings in this order."""
assert sorted(README_ORDER) == sorted(CONVERTERS)

ENV_PREFIX = "ROOTWALK_"

NON_SETTING_VARIABLES = frozenset(
    {
        "ROOTWALK_ZONES",  # resolver/paths.py: where the bundled zone files are
        "ROOTWALK_PEER",  # tests/conftest.py: run the differential test against Unbound
        "ROOTWALK_BENCH_ONLY",  # benchmarks/cache_benchmark.py: Rootwalk only, no Unbound
        "ROOTWALK_BENCH_PROFILE",  # benchmarks/cache_benchmark.py: py-spy stacks to a file
        "ROOTWALK_BENCH_PROFILE_PHASE",
        "ROOTWALK_BENCH_PROFILE_NATIVE",
    }
)
"""``ROOTWALK_*`` variables that are not settings but are read elsewhere; any other name with
the prefix that is not a setting's is an error."""


def _key_line(text: str, key: str, after: int = 0) -> int | None:
    """The line (1-based, past line ``after``) where ``key = ...``, a dotted ``key.x = ...``
    or a table header ``[key]`` / ``[key.x]`` / ``[[key]]`` stands in a TOML text."""
    quoted = rf"\"?{re.escape(key)}\"?"
    pattern = re.compile(rf"^\s*(?:{quoted}\s*[=.]|\[\[?\s*{quoted}\s*[\].])")
    for number, line in enumerate(text.splitlines(), start=1):
        if number > after and pattern.match(line):
            return number
    return None


def _closest(word: str, choices: list[str]) -> str:
    """`` (did you mean X?)`` for the closest choice (difflib), or nothing."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def _table_error(path: Path, text: str, key: str, table: dict[str, Any]) -> ConfigError:
    """A table in the settings file: the settings are top-level keys (TOML 1.0 §Table: every
    key after a ``[table]`` header belongs to it)."""
    line = _key_line(text, key)
    where = f"{path}: line {line}: " if line else f"{path}: "
    inside = [name for name in table if name in CONVERTERS]
    if inside:
        sub = inside[0]
        sub_line = _key_line(text, sub, after=line or 0)
        at = f" (line {sub_line})" if sub_line else ""
        return ConfigError(
            f"{where}table [{key}]: key '{sub}'{at} belongs to this table; settings are "
            f"top-level keys: move them above the first [table] line"
        )
    return ConfigError(
        f"{where}table [{key}]: settings are top-level keys, not tables{_closest(key, list(CONVERTERS))}"
    )


def _convert(key: str, raw: Any, where: str) -> Any:
    try:
        return CONVERTERS[key](raw)
    except ValueError as exc:
        raise ConfigError(f"{where}key '{key}': {exc}") from None


def values_from_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file gives, converted; errors name the file, line and key."""
    return _layer_from_file(path)[0]


def _layer_from_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's settings and, for each, where it stands (``FILE:LINE``)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, raw in data.items():
        line = _key_line(text, key)
        where = f"{path}: line {line}: " if line else f"{path}: "
        if isinstance(raw, dict):
            raise _table_error(path, text, key, raw)
        if key not in CONVERTERS:
            raise ConfigError(
                f"{where}key '{key}': unknown setting{_closest(key, list(CONVERTERS))} "
                f"(known: {', '.join(README_ORDER)})"
            )
        if CONVERTERS[key] is _boolean and not isinstance(raw, bool):
            raise ConfigError(
                f"{where}key '{key}': expected true or false (a TOML boolean, unquoted), "
                f"got {raw!r}"
            )
        values[key] = _convert(key, raw, where)
        sources[key] = f"{path}:{line}" if line else str(path)
    for key in ("root_hints", "cache_file"):
        if key in values and not values[key].is_absolute():
            values[key] = path.parent / values[key]
    return values, sources


def values_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``ROOTWALK_<KEY>`` variables (lists comma-separated)."""
    names = {ENV_PREFIX + key.upper(): key for key in README_ORDER}
    for name in environ:
        if name.startswith(ENV_PREFIX) and name not in names and name not in NON_SETTING_VARIABLES:
            found = difflib.get_close_matches(name[len(ENV_PREFIX) :].lower(), README_ORDER, 1)
            meant = ""
            if found:
                meant = f" (did you mean {ENV_PREFIX}{found[0].upper()}, key '{found[0]}'?)"
            raise ConfigError(f"{name}: no such setting{meant}")
    values: dict[str, Any] = {}
    for name, key in names.items():
        if name in environ:
            values[key] = _convert(key, environ[name], f"{name}: ")
    return values


def values_from_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from command-line flags already split by argparse (None = not given)."""
    values: dict[str, Any] = {}
    for key, raw in flags.items():
        if raw is None or key not in CONVERTERS:
            continue
        text = ",".join(raw) if isinstance(raw, list) else str(raw)
        values[key] = _convert(key, text, f"--{key.replace('_', '-')}: ")
    return values


def build_settings(
    *,
    base: Settings | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults (or ``base``) < file < environment < flags."""
    return build_layered_settings(base=base, config_file=config_file, environ=environ, flags=flags)[
        0
    ]


def build_layered_settings(
    *,
    base: Settings | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """As :func:`build_settings`, with the layer each setting came from: ``default``,
    ``FILE:LINE``, ``environment ROOTWALK_KEY`` or ``flag --key``."""
    values: dict[str, Any] = {}
    sources = dict.fromkeys(CONVERTERS, "default")
    if config_file is not None:
        from_file, where = _layer_from_file(config_file)
        values.update(from_file)
        sources.update(where)
    from_env = values_from_env(environ or {})
    values.update(from_env)
    sources.update({key: f"environment {ENV_PREFIX}{key.upper()}" for key in from_env})
    from_flags = values_from_flags(flags or {})
    values.update(from_flags)
    sources.update({key: f"flag --{key.replace('_', '-')}" for key in from_flags})
    settings = dataclasses.replace(base or Settings(), **values)
    if settings.min_ttl > settings.max_ttl:
        raise ConfigError(
            f"key 'min_ttl': {settings.min_ttl} is more than max_ttl ({settings.max_ttl})"
        )
    return settings, sources


def _toml_value(value: Any) -> str:
    """One setting's value as TOML (TOML 1.0 §Boolean, §Integer, §Float, §String, §Array):
    endpoints, networks and access rules as the strings the file takes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Path):
        value = value if value.is_absolute() else Path.cwd() / value
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def settings_toml(settings: Settings, sources: Mapping[str, str]) -> str:
    """The settings as a TOML file in :data:`README_ORDER`, each value followed by a comment
    naming its layer; it reads back as the same settings. An unset setting (no TOML null)
    is a comment."""
    lines = ["# rootwalk check-config: the settings in force; each comment names its layer"]
    for key in README_ORDER:
        value = getattr(settings, key)
        source = sources.get(key, "default")
        if value is None and key in ("metrics", "control"):
            lines.append(f'{key} = "off"  # {source}')
        elif value is None:
            lines.append(f"# {key} is unset  # {source}")
        else:
            lines.append(f"{key} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"
