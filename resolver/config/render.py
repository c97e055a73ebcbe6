"""``check-config``'s output: the settings in force as a TOML file, each value followed by a
comment naming the layer it came from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resolver.config.settings import README_ORDER, Settings


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
