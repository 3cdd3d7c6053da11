"""Per-run settings (LangGraph context) and the engine that resolves tiers to chat models."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.types import RetryPolicy

from tierflow.config import Endpoint, TierConfig, load_config
from tierflow.models import chat_model, endpoints_of

__all__ = [
    "RunContext",
    "TierPolicy",
    "POLICIES",
    "Engine",
    "context_of",
    "engine_for",
    "transient_retry_policy",
]

CHEAPEST = "@cheapest"
TOP = "@flagship"


@dataclass(frozen=True)
class TierPolicy:
    """How a run assigns tiers to model-calling nodes (what evals compare).

    Attributes:
        name: label shown in reports.
        subagent_tier: tier for every subagent (``@cheapest``/``@flagship`` allowed); None keeps
            each subagent's declared tier.
        planner_tier: tier of the supervisor and the final answer; None means the flagship.
        escalate: let failing subagent tasks climb the ladder.
        human: after the top tier, interrupt for a human (off in unattended evals: the task fails).
    """

    name: str = "tiered"
    subagent_tier: str | None = None
    planner_tier: str | None = None
    escalate: bool = True
    human: bool = True

    def subagent(self, declared: str, config: TierConfig) -> str:
        """Starting tier of a subagent."""
        return _resolve(self.subagent_tier, config) or declared

    def planner(self, config: TierConfig) -> str:
        """Tier of the supervisor and answer nodes."""
        return _resolve(self.planner_tier, config) or config.flagship


def _resolve(tier: str | None, config: TierConfig) -> str | None:
    if tier == CHEAPEST:
        return config.ladder[0]
    if tier == TOP:
        return config.flagship
    return tier


POLICIES: dict[str, TierPolicy] = {
    "tiered": TierPolicy("tiered"),
    "all-flagship": TierPolicy("all-flagship", TOP, TOP, escalate=False, human=False),
    "all-nano": TierPolicy("all-nano", CHEAPEST, CHEAPEST, escalate=False, human=False),
    "cascade": TierPolicy("cascade", CHEAPEST, None, escalate=True, human=False),
}


@dataclass(frozen=True)
class RunContext:
    """Runtime settings of one run, passed as ``context=`` (never checkpointed).

    Attributes:
        profile: tier profile (``local``, ``openai`` or one declared in tierflow.toml).
        config_file: path of a tierflow.toml; default ``./tierflow.toml`` when present.
        models: tier name -> chat model to use instead of the configured endpoint (tests).
        retry: override of the retry policy for model calls (tests use zero backoff).
        policy: tier assignment (see :data:`POLICIES`); default keeps the graph's own tiers.
    """

    profile: str | None = None
    config_file: str | None = None
    models: Mapping[str, BaseChatModel] | None = None
    retry: RetryPolicy | None = None
    policy: TierPolicy = TierPolicy()
    extra: Mapping[str, Any] = field(default_factory=dict)


def context_of(runtime: Any) -> RunContext:
    """The run's context, or the defaults when a graph is invoked without ``context=``."""
    return getattr(runtime, "context", None) or RunContext()


def _is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: rate limits, 5xx, timeouts, dropped connections."""
    import httpx
    import openai
    from langchain_core import exceptions as lc

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    transient = (
        openai.APITimeoutError,
        openai.APIConnectionError,
        lc.ModelRateLimitError,
        lc.ModelTimeoutError,
        lc.ModelConnectionError,
        httpx.TransportError,
        TimeoutError,
        ConnectionError,
    )
    return isinstance(exc, transient)


def transient_retry_policy(tier_max_retries: int) -> RetryPolicy:
    """LangGraph's RetryPolicy with tierflow's transient-only ``retry_on``."""
    return RetryPolicy(max_attempts=tier_max_retries + 1, retry_on=_is_transient)


class Engine:
    """Resolved configuration plus cached chat clients for one profile."""

    def __init__(self, config: TierConfig, models: Mapping[str, BaseChatModel] | None = None):
        self.config = config
        self._overrides = dict(models or {})
        self._clients: dict[tuple[str, str], BaseChatModel] = {}
        self._lock = threading.Lock()

    def endpoints(self, tier: str) -> list[Endpoint]:
        """Endpoints tried for ``tier``; a test double counts as one endpoint."""
        spec = self.config.tier(tier)
        if tier in self._overrides:
            return [Endpoint(base_url=spec.base_url, model=self.model_name(tier))]
        return endpoints_of(spec)

    def model_name(self, tier: str) -> str:
        """The model name recorded for ``tier``."""
        override = self._overrides.get(tier)
        if override is not None:
            return str(getattr(override, "model_name", None) or type(override).__name__)
        return self.config.tier(tier).model

    def client(self, tier: str, endpoint: Endpoint) -> BaseChatModel:
        """The chat client of ``tier`` at ``endpoint`` (built once per process)."""
        if tier in self._overrides:
            return self._overrides[tier]
        key = (tier, endpoint.base_url)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = chat_model(self.config.tier(tier), endpoint)
            return self._clients[key]


_ENGINES: dict[tuple[Any, ...], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(ctx: RunContext | None) -> Engine:
    """The engine of a run context (cached: configs are loaded and validated once)."""
    ctx = ctx or RunContext()
    # Test doubles are keyed by object identity; the cached engine keeps them alive, so an id
    # cannot be reused by another model while its entry exists.
    doubles = tuple(sorted((k, id(v)) for k, v in (ctx.models or {}).items()))
    key = (ctx.profile, ctx.config_file, doubles)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            require_keys = not ctx.models
            cfg = load_config(ctx.profile, config_file=ctx.config_file, require_keys=require_keys)
            _ENGINES[key] = Engine(cfg, ctx.models)
        return _ENGINES[key]
