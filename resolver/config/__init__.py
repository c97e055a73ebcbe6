"""One frozen Settings object, built from defaults, a TOML file, ``ROOTWALK_*`` environment
variables and command-line flags, in rising precedence.

Every value from every source goes through the same converter, so a bad value reads the
same wherever it came from: ``FILE: line N: key 'listen': ...`` for the file (the line when
the key can be found, or the TOML parser's line for syntax errors), ``ROOTWALK_LISTEN: ...``
for the environment, ``--listen: ...`` for flags. Names in the file are absolute or
relative to the root (see :mod:`resolver.names`).

This package's face: import from ``resolver.config``. Inside, by concern:

- :mod:`~resolver.config.settings`: the :class:`Settings` dataclass, each setting's
  converter (:data:`CONVERTERS`) and README row (:data:`README_ORDER`): a new setting
  goes there.
- :mod:`~resolver.config.converter`: the converters (raw value -> typed value) and
  :class:`Endpoint`.
- :mod:`~resolver.config.source`: the file, environment and flag layers, errors naming
  file, line and key, and :func:`build_settings`.
- :mod:`~resolver.config.render`: ``check-config``'s TOML with a comment per layer.
"""

from resolver.config.converter import Endpoint, IPNetwork
from resolver.config.render import settings_toml
from resolver.config.settings import (
    CONVERTERS,
    ENV_PREFIX,
    NON_SETTING_VARIABLES,
    README_ORDER,
    Settings,
)
from resolver.config.source import (
    ConfigError,
    build_layered_settings,
    build_settings,
    values_from_env,
    values_from_file,
    values_from_flags,
)

__all__ = [
    "CONVERTERS",
    "ENV_PREFIX",
    "NON_SETTING_VARIABLES",
    "README_ORDER",
    "ConfigError",
    "Endpoint",
    "IPNetwork",
    "Settings",
    "build_layered_settings",
    "build_settings",
    "settings_toml",
    "values_from_env",
    "values_from_file",
    "values_from_flags",
]
