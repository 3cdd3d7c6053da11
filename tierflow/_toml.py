"""Read a TOML file, with a syntax error reported as a ConfigError naming the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tierflow.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML at ``path``.

    Raises:
        ConfigError: the file is not valid TOML (the message names the file and the line).
    """
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            str(path), f"invalid TOML ({exc})", "fix the syntax on that line"
        ) from exc
