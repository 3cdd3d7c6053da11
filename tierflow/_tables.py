"""Profile tables before validation: one merged over another, a tier ``like`` another."""

from __future__ import annotations

from typing import Any

from tierflow.errors import ConfigError

__all__ = ["deep_merge", "inherited"]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, table by table (the later source wins per field)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def inherited(tiers: dict[str, Any], name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """Tier ``name``'s table over the table it is ``like`` (the same model at other settings).

    ``[tiers.mini-high]`` with ``like = "mini"`` and ``reasoning_effort = "high"`` is mini's
    table with one setting changed; ``like`` may chain, never loop.
    """
    spec = dict(tiers[name])
    base = spec.pop("like", None)
    if base is None:
        return spec
    if base not in tiers or not isinstance(tiers[base], dict):
        raise ConfigError(
            f"tiers.{name}.like",
            f"names tier '{base}', which is not declared",
            f"use one of {', '.join(sorted(t for t in tiers if t != name))}",
        )
    if base in (*seen, name):
        chain = " -> ".join((*seen, name, base))
        raise ConfigError(f"tiers.{name}.like", f"tiers are like each other in a loop ({chain})",
                          "make one of them a full table (model, base_url, price)")  # fmt: skip
    return deep_merge(inherited(tiers, base, (*seen, name)), spec)
