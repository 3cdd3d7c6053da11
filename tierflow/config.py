"""Tier declarations: profiles from TOML, overridden by the environment, validated at load time.

Resolution order (one place): built-in profile file -> ``tierflow.toml`` in the working
directory (or ``$TIERFLOW_CONFIG``) -> ``TIERFLOW_*`` environment variables -> per-run overrides.

Example:
    >>> from tierflow.config import load_config
    >>> cfg = load_config("openai", require_keys=False)
    >>> cfg.tier("mini").price.output
    4.5
"""

from __future__ import annotations

import copy
import ipaddress
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierflow._tables import deep_merge as _deep_merge
from tierflow._tables import inherited as _inherited
from tierflow._toml import read_toml
from tierflow.errors import ConfigError, SpecError

__all__ = [
    "Price",
    "Endpoint",
    "TierSpec",
    "ReasoningEffort",
    "ServiceTier",
    "Verbosity",
    "TierConfig",
    "Settings",
    "load_config",
    "default_profile",
    "BUILTIN_PROFILES",
    "is_loopback",
]

_PROFILE_DIR = Path(__file__).parent / "profiles"
BUILTIN_PROFILES = tuple(sorted(p.stem for p in _PROFILE_DIR.glob("*.toml")))

ToolMode = Literal["native", "forced"]
# What OpenAI's API accepts (models differ: gpt-5 has minimal, gpt-5.1+ none, newer ones xhigh).
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
# "default" is the standard price; "flex" is billed at Batch prices and may answer 429.
ServiceTier = Literal["auto", "default", "flex", "priority"]
Verbosity = Literal["low", "medium", "high"]
# The service tiers billed at a price of their own (TierSpec.<tier>_price), else at ``price``.
_PRICED_TIERS = ("flex", "priority")


def is_loopback(url: str) -> bool:
    """True for a URL on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=256)
def public_url(url: str) -> str:
    """``url`` without credentials (``http://user:secret@host/v1`` -> ``http://host/v1``).

    What usage records, traces and error messages show: they are checkpointed and exported.
    """
    parsed = urlparse(url)
    if parsed.username is None and parsed.password is None:
        return url
    host = parsed.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    return parsed._replace(netloc=netloc).geturl()


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SpecError(f"'{url}' is not an http(s) URL; write it like http://127.0.0.1:8080/v1")
    return url.rstrip("/")


class Price(BaseModel):
    """USD per 1M tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


class Endpoint(BaseModel):
    """A fallback endpoint for a tier (tried in order when the primary fails)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    # None: the tier's service_tier. A flex tier's standard-tier fallback sets "default".
    service_tier: ServiceTier | None = None

    _url = field_validator("base_url")(classmethod(lambda cls, v: _check_url(v)))


def _check_priced(service_tier: str | None, info: ValidationInfo) -> None:
    if service_tier in _PRICED_TIERS and info.data.get(f"{service_tier}_price") is None:
        raise PydanticCustomError(
            "service_tier_price",
            f"service_tier '{service_tier}' is billed at {service_tier}_price, which is not set",
            {"fix": f"add {service_tier}_price = {{ input = ..., cached_input = ..., output = ... }}"
                    " (USD per 1M tokens; OpenAI's flex price is its Batch price) or remove "
                    "service_tier"},
        )  # fmt: skip


class TierSpec(BaseModel):
    """One tier: which model, where, at what price, under which limits.

    ``reasoning_effort``, ``service_tier`` and ``verbosity`` are sent to the provider only when
    set (so local servers never see them). ``price`` is the standard price; a tier requesting
    ``service_tier="flex"`` or ``"priority"`` needs ``flex_price`` / ``priority_price`` too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    model: str
    base_url: str
    api_key_env: str | None = None
    price: Price
    flex_price: Price | None = None
    priority_price: Price | None = None
    reasoning_effort: ReasoningEffort | None = None
    service_tier: ServiceTier | None = None
    verbosity: Verbosity | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    requests_per_second: float | None = Field(default=None, gt=0)
    fallbacks: tuple[Endpoint, ...] = ()
    tool_mode: ToolMode = "native"
    max_output_tokens: int = Field(default=1024, gt=0)
    local_model: str | None = None
    max_concurrency: int | None = Field(default=None, gt=0)
    concurrency_group: str | None = None
    # Circuit breaker (tierflow.breaker): skip an endpoint after this many consecutive
    # transient failures (0: never), for this long before one probe call.
    breaker_failures: int = Field(default=5, ge=0)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)

    _url = field_validator("base_url")(classmethod(lambda cls, v: _check_url(v)))

    @field_validator("service_tier", "fallbacks")
    @classmethod
    def _priced(cls, value: Any, info: ValidationInfo) -> Any:
        asked = [e.service_tier for e in value] if isinstance(value, tuple) else [value]
        for tier in asked:
            _check_priced(tier, info)
        return value

    def price_for(self, service_tier: str | None) -> Price:
        """The price of a request served at ``service_tier``: its own price, else ``price``."""
        own = getattr(self, f"{service_tier}_price") if service_tier in _PRICED_TIERS else None
        return own or self.price

    @property
    def ceiling_price(self) -> Price:
        """What the budget reserves at: the dearer of ``price`` and the requested tier's price.

        A flex request may end on its standard-tier fallback, so it reserves the standard price.
        """
        asked = self.price_for(self.service_tier)
        return Price(
            **{k: max(getattr(asked, k), getattr(self.price, k)) for k in Price.model_fields}
        )

    @property
    def model_settings(self) -> dict[str, str]:
        """The settings that change the answer (sent as ChatOpenAI parameters), only those set."""
        settings = {"reasoning_effort": self.reasoning_effort, "verbosity": self.verbosity}
        return {k: v for k, v in settings.items() if v is not None}

    def service_tier_at(self, endpoint: Endpoint) -> str | None:
        """The service tier requested at ``endpoint`` (its own, else the tier's)."""
        return endpoint.service_tier or self.service_tier

    @property
    def is_local(self) -> bool:
        """True when the endpoint is on this machine (no API key needed)."""
        return is_loopback(self.base_url)

    def api_key(self) -> str:
        """The API key to send; loopback servers accept any placeholder."""
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        return "not-needed-for-local"


class TierConfig(BaseModel):
    """A validated profile: the tiers, cheapest first, plus where run data lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str
    ladder: tuple[str, ...]
    tiers: dict[str, TierSpec]
    data_dir: Path = Path(".tierflow")
    priced_as: str | None = None

    @model_validator(mode="after")
    def _ladder_matches_tiers(self) -> TierConfig:
        for name in self.ladder:
            if name not in self.tiers:
                raise SpecError(
                    f"ladder names tier '{name}' but only {sorted(self.tiers)} are declared; "
                    f"declare [tiers.{name}] or take it out of the ladder"
                )
        return self

    def tier(self, name: str) -> TierSpec:
        """Return the tier called ``name`` or raise a ConfigError listing the known ones."""
        try:
            return self.tiers[name]
        except KeyError:
            raise ConfigError(
                f"tiers.{name}", "unknown tier", f"use one of {', '.join(self.ladder)}"
            ) from None

    @property
    def flagship(self) -> str:
        """The most capable tier: the top of the ladder."""
        return self.ladder[-1]

    def next_tier(self, name: str) -> str | None:
        """The tier one step up the ladder, or None at the top."""
        i = self.ladder.index(name)
        return self.ladder[i + 1] if i + 1 < len(self.ladder) else None

    def cheaper_tier(self, name: str) -> str | None:
        """The tier one step down the ladder, or None at the bottom."""
        i = self.ladder.index(name)
        return self.ladder[i - 1] if i > 0 else None

    @cached_property
    def shared_models(self) -> dict[str, list[str]]:
        """Model name -> tiers that serve it, only where two or more tiers share one."""
        by_model: dict[str, list[str]] = {}
        for name in self.ladder:
            by_model.setdefault(self.tiers[name].model, []).append(name)
        return {m: t for m, t in by_model.items() if len(t) > 1}


class Settings(BaseSettings):
    """Runtime settings from ``TIERFLOW_*`` environment variables.

    ``TIERFLOW_TIERS__MINI__TIMEOUT_S=30`` overrides one field of one tier.
    """

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", env_nested_delimiter="__")

    profile: str | None = None
    config: Path | None = None
    data_dir: Path | None = None
    tiers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Longest request text accepted before anything is spent (the CLI refuses longer ones).
    max_request_chars: int = Field(default=20_000, gt=0)


def default_profile() -> str:
    """``openai`` when an OpenAI key is configured, else the ``local`` llama.cpp models."""
    return "openai" if os.environ.get("OPENAI_API_KEY") else "local"


def _raw_profile(profile: str, user_file: dict[str, Any]) -> dict[str, Any]:
    user_profiles = user_file.get("profiles", {})
    raw: dict[str, Any] = {}
    if profile in BUILTIN_PROFILES:
        raw = read_toml(_PROFILE_DIR / f"{profile}.toml")
    elif profile not in user_profiles:
        known = sorted(set(BUILTIN_PROFILES) | set(user_profiles))
        raise ConfigError(
            "profile",
            f"unknown profile '{profile}'",
            f"use one of {', '.join(known)} or declare [profiles.{profile}] in tierflow.toml",
        )
    return _deep_merge(raw, user_profiles.get(profile, {}))


def _error_from_validation(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    fixes = {
        "missing": "add this field",
        "extra_forbidden": "remove it or check its spelling",
        "greater_than_equal": "use a number >= 0",
        "greater_than": "use a number > 0",
    }
    ctx = err.get("ctx") or {}
    if err["type"] == "literal_error":
        fixes["literal_error"] = f"use one of {ctx.get('expected')}"
    fix = ctx.get("fix") or fixes.get(err["type"], "correct the value")
    return ConfigError(loc, err["msg"], fix)


def load_config(
    profile: str | None = None,
    *,
    config_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    require_keys: bool = True,
) -> TierConfig:
    """Load and validate a profile.

    Args:
        profile: profile name; defaults to ``$TIERFLOW_PROFILE`` then :func:`default_profile`.
        config_file: a ``tierflow.toml``; defaults to ``$TIERFLOW_CONFIG`` or ``./tierflow.toml``.
        overrides: per-run overrides, same shape as a profile table.
        require_keys: fail when a remote tier's API-key variable is unset (turn off to
            load a profile only for its prices).

    Raises:
        ConfigError: naming the field and the fix.
    """
    settings = Settings()
    profile = profile or settings.profile or default_profile()
    path = Path(config_file or settings.config or "tierflow.toml")
    user_file = read_toml(path) if path.exists() else {}
    if config_file and not path.exists():
        raise ConfigError("config", f"file {path} does not exist", "pass an existing tierflow.toml")

    raw = copy.deepcopy(_raw_profile(profile, user_file))
    raw = _deep_merge(raw, {"tiers": settings.tiers})
    raw = _deep_merge(raw, copy.deepcopy(overrides or {}))
    tiers_raw = raw.get("tiers") or {}
    if not tiers_raw:
        raise ConfigError(f"profiles.{profile}.tiers", "no tiers declared", "declare at least one")
    for name, spec in tiers_raw.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"tiers.{name}", "must be a table", f"write [tiers.{name}]")
    raw["tiers"] = tiers_raw = {name: _inherited(tiers_raw, name, ()) for name in tiers_raw}
    for name, spec in tiers_raw.items():
        spec["name"] = name
    raw.setdefault("ladder", list(tiers_raw))
    data_dir = settings.data_dir or user_file.get("data_dir") or ".tierflow"
    try:
        cfg = TierConfig(profile=profile, data_dir=Path(data_dir), **raw)
    except ValidationError as exc:
        raise _error_from_validation(exc) from exc
    if require_keys:
        _check_keys(cfg)
    return cfg


def _check_keys(cfg: TierConfig) -> None:
    for tier in cfg.tiers.values():
        endpoints = [(tier.base_url, tier.api_key_env, f"tiers.{tier.name}")]
        endpoints += [
            (fb.base_url, fb.api_key_env or tier.api_key_env, f"tiers.{tier.name}.fallbacks[{i}]")
            for i, fb in enumerate(tier.fallbacks)
        ]
        for url, key_env, field in endpoints:
            if is_loopback(url):
                continue
            if not key_env:
                raise ConfigError(
                    f"{field}.api_key_env",
                    f"remote endpoint {url} has no API-key variable",
                    "set api_key_env to the name of the environment variable holding the key",
                )
            if not os.environ.get(key_env):
                raise ConfigError(
                    f"{field}.api_key_env",
                    f"environment variable {key_env} is not set",
                    f"export {key_env}=... or choose the 'local' profile (--profile local)",
                )
