"""The layers a :class:`~resolver.config.settings.Settings` is built from: defaults, a TOML
file, ``ROOTWALK_*`` environment variables and command-line flags, in rising precedence.

Every value from every source goes through its setting's converter, so a bad value reads the
same wherever it came from: ``FILE: line N: key 'listen': ...`` for the file (the line when
the key can be found, or the TOML parser's line for syntax errors), ``ROOTWALK_LISTEN: ...``
for the environment, ``--listen: ...`` for flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resolver.config import converter as convert
from resolver.config.settings import (
    CONVERTERS,
    ENV_PREFIX,
    NON_SETTING_VARIABLES,
    README_ORDER,
    Settings,
)


class ConfigError(ValueError):
    """A setting is wrong; the message names the source, the key, and the line if known."""


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


def _converted(key: str, raw: Any, where: str) -> Any:
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
        if CONVERTERS[key] is convert.boolean and not isinstance(raw, bool):
            raise ConfigError(
                f"{where}key '{key}': expected true or false (a TOML boolean, unquoted), "
                f"got {raw!r}"
            )
        values[key] = _converted(key, raw, where)
        sources[key] = f"{path}:{line}" if line else str(path)
    for key in ("root_hints", "cache_file", "tls_cert", "tls_key"):
        if key in values and not values[key].is_absolute():
            values[key] = path.parent / values[key]
    if "trust_anchors" in values:  # relative to the file, as the hints
        values["trust_anchors"] = tuple(path.parent / p for p in values["trust_anchors"])
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
            values[key] = _converted(key, environ[name], f"{name}: ")
    return values


def values_from_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from command-line flags already split by argparse (None = not given)."""
    values: dict[str, Any] = {}
    for key, raw in flags.items():
        if raw is None or key not in CONVERTERS:
            continue
        text = ",".join(raw) if isinstance(raw, list) else str(raw)
        values[key] = _converted(key, text, f"--{key.replace('_', '-')}: ")
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
    _check_tls(settings, sources)
    return settings, sources


def _check_tls(settings: Settings, sources: Mapping[str, str]) -> None:
    """An encrypted listener needs both halves of the pair (only their presence is checked
    here: the files are read when the server starts, and again on SIGHUP)."""
    for key in ("dot_listen", "doh_listen"):
        if getattr(settings, key) is None:
            continue
        missing = [name for name in ("tls_cert", "tls_key") if getattr(settings, name) is None]
        if missing:
            raise ConfigError(
                f"{sources[key]}: key '{key}': needs {' and '.join(missing)} "
                "(a PEM certificate and its private key)"
            )
