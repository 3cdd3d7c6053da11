"""Per-run settings (LangGraph context) and the engine that resolves tiers to chat models."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langgraph.types import RetryPolicy
from pydantic.json_schema import SkipJsonSchema

from tierflow._memo import IdentityMemo
from tierflow.cache import ResponseCache, open_cache, request_key
from tierflow.config import Endpoint, TierConfig, is_loopback, load_config
from tierflow.errors import ConfigError, InputError, SpecError
from tierflow.models import chat_model, endpoints_of
from tierflow.tiers import POLICIES, TierPolicy

__all__ = [
    "RunContext",
    "TierPolicy",
    "POLICIES",
    "Engine",
    "context_of",
    "engine_for",
    "transient_retry_policy",
]


if TYPE_CHECKING:
    PolicyField = TierPolicy  # what every reader of RunContext.policy gets (__post_init__)
else:
    PolicyField = TierPolicy | str  # what Studio, the SDK or a caller may send: also a name


@dataclass(frozen=True)
class RunContext:
    """Runtime settings of one run, passed as ``context=`` (never checkpointed).

    Every field but the test hooks is plain data, so LangGraph Studio and the SDK can set it per
    run (``client.runs.create(..., context={"policy": "all-nano", "budget_usd": 0.05})``).

    Attributes:
        profile: tier profile (``local``, ``openai`` or one declared in tierflow.toml).
        config_file: path of a tierflow.toml; default ``./tierflow.toml`` when present.
        policy: tier assignment and unattended behaviour (see :mod:`tierflow.tiers`), or the
            name of one in :data:`POLICIES` (``tiered``, ``all-nano``, ...); the default keeps
            the graph's own tiers and asks a human when needed.
        unattended: never wait for a human: the policy's ``human`` is switched off and its
            budget gate stops (unless it says ``cheaper``).
        budget_usd: the run's budget when its input sets none.
        shortcuts: let a subagent's deterministic ``shortcut`` finish a task with no model call
            (e.g. grep found the definition a search asks for), and a supervisor's
            ``first_round`` plan its first delegations with no planning call. Off, every task
            and plan goes to its model: what an eval of the tiers themselves, or a scripted
            test, wants.
        models: tier name -> chat model to use instead of the configured endpoint (tests; not
            part of the context's JSON schema).
        retry: override of the retry policy for model calls (tests use zero backoff; not part
            of the JSON schema).
        response_cache: SQLite file of the response cache (:mod:`tierflow.cache`): a request
            made before with the same model, messages, tools and parameters is answered from
            it, so comparing policies or resuming an interrupted benchmark pays once.
        calibration: a calibration file written by ``tierflow calibrate`` (start tier, router
            and verifier settings per subagent) for graphs that read one; None: the graph's
            default (``.tierflow/calibration/<graph>.json`` when it exists).
    """

    profile: str | None = None
    config_file: str | None = None
    models: SkipJsonSchema[Mapping[str, BaseChatModel] | None] = None
    retry: SkipJsonSchema[RetryPolicy | None] = None
    policy: PolicyField = TierPolicy()
    shortcuts: bool = True
    unattended: bool = False
    budget_usd: float | None = None
    response_cache: str | None = None
    calibration: str | None = None

    def __post_init__(self) -> None:
        policy: Any = self.policy
        if isinstance(policy, Mapping):  # a policy sent as JSON
            policy = TierPolicy(**policy)
        if isinstance(policy, str):
            if policy not in POLICIES:
                raise SpecError(
                    f"unknown policy {policy!r}: choose from {', '.join(POLICIES)} or pass a "
                    "TierPolicy"
                )
            policy = POLICIES[policy]
        if self.unattended and policy.human:
            policy = replace(policy, human=False, on_budget=policy.on_budget or "stop")
        if self.budget_usd is not None and not self.budget_usd > 0:
            raise InputError(
                f"budget_usd must be positive (got {self.budget_usd}); pass a dollar amount "
                "above 0, or None for no budget"
            )
        object.__setattr__(self, "policy", policy)


def context_of(runtime: Any) -> RunContext:
    """The run's context, or the defaults when a graph is invoked without ``context=``."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Mapping):  # a server that passed the JSON as it came
        return RunContext(**ctx)
    return ctx or RunContext()


def _is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: rate limits, 5xx, timeouts, dropped connections."""
    import httpx
    import openai
    from langchain_core import exceptions as lc

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    transient = (
        # A 200 whose body is not JSON (a proxy's error page, a cut-off body) or not the
        # response shape: the server may answer properly on the next attempt.
        json.JSONDecodeError,
        openai.APIResponseValidationError,
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

    def __init__(
        self,
        config: TierConfig,
        models: Mapping[str, BaseChatModel] | None = None,
        cache: ResponseCache | None = None,
    ):
        self.config = config
        self.cache = cache
        self._overrides = dict(models or {})
        self._clients: dict[tuple[str, str, str | None], BaseChatModel] = {}
        self._bound: dict[tuple[Any, ...], tuple[list[dict[str, Any]], Any]] = {}
        self._endpoints: dict[str, list[Endpoint]] = {}
        self._lock = threading.Lock()
        self._loop: int | None = None

    def _same_loop(self) -> None:
        """Drop clients built on another event loop (their async HTTP pools died with it).

        Two ``asyncio.run`` calls in one process (a notebook re-run, a script with two runs)
        would otherwise reuse a client whose connections belong to a closed loop.
        """
        try:
            loop = id(asyncio.get_running_loop())
        except RuntimeError:
            return
        if loop != self._loop:
            self._clients.clear()
            self._bound.clear()
            self._loop = loop

    def endpoints(self, tier: str) -> list[Endpoint]:
        """Endpoints tried for ``tier``; a test double counts as one endpoint."""
        hit = self._endpoints.get(tier)
        if hit is None:
            spec = self.config.tier(tier)
            if tier in self._overrides:
                hit = [Endpoint(base_url=spec.base_url, model=self.model_name(tier))]
            else:
                hit = endpoints_of(spec)
            self._endpoints[tier] = hit
        return list(hit)

    def model_name(self, tier: str) -> str:
        """The model name recorded for ``tier``."""
        override = self._overrides.get(tier)
        if override is not None:
            return str(getattr(override, "model_name", None) or type(override).__name__)
        return self.config.tier(tier).model

    def request_key(
        self,
        tier: str,
        messages: Sequence[BaseMessage],
        tools: Sequence[Mapping[str, Any]],
        tool_choice: str | None,
        params: Mapping[str, Any],
    ) -> tuple[str, str]:
        """The response cache's key of one request on ``tier`` (see :mod:`tierflow.cache`).

        A tier's reasoning effort and verbosity are part of it: ``mini`` and ``mini-high`` share
        a model, not answers. The service tier is not (the same model answers the same).
        """
        settings = self.config.tier(tier).model_settings
        return request_key(
            self.model_name(tier), messages, tools, tool_choice, {**settings, **params}
        )

    def bound(
        self, tier: str, endpoint: Endpoint, tools: list[dict[str, Any]], tool_choice: str | None
    ) -> Any:
        """The client of ``tier`` with ``tools`` bound (cached: tool dicts are built once)."""
        client = self.client(tier, endpoint)
        if not tools:
            return client
        key = (tier, endpoint.base_url, endpoint.service_tier, tuple(id(t) for t in tools),
               tool_choice)  # fmt: skip
        hit = self._bound.get(key)
        if hit is None or any(a is not b for a, b in zip(hit[0], tools, strict=True)):
            hit = (list(tools), client.bind_tools(tools, tool_choice=tool_choice))
            with self._lock:
                self._bound[key] = hit
        return hit[1]

    def request_kwargs(self, tier: str, endpoint: Endpoint, max_tokens: int) -> dict[str, Any]:
        """Per-request arguments: the output cap the budget gate clamped."""
        if tier not in self._overrides and is_loopback(endpoint.base_url):
            # llama-cpp-python's server ignores `max_completion_tokens` (what ChatOpenAI sends).
            return {"max_tokens": max_tokens, "extra_body": {"max_tokens": max_tokens}}
        return {"max_tokens": max_tokens}

    def client(self, tier: str, endpoint: Endpoint) -> BaseChatModel:
        """The chat client of ``tier`` at ``endpoint`` (built once per process)."""
        if tier in self._overrides:
            return self._overrides[tier]
        key = (tier, endpoint.base_url, endpoint.service_tier)  # a flex tier's standard fallback
        with self._lock:
            self._same_loop()
            if key not in self._clients:
                self._clients[key] = chat_model(self.config.tier(tier), endpoint)
            return self._clients[key]


_ENGINES: dict[tuple[Any, ...], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _stamp(path: str | None) -> tuple[int, int] | None:
    """The config file's (mtime, size): an edited tierflow.toml gets a new engine."""
    try:
        st = os.stat(path or "tierflow.toml")
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _overrides() -> tuple[tuple[str, str], ...]:
    """``TIERFLOW_*`` settings from the environment, which the config also reads."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("TIERFLOW_")))


def engine_for(ctx: RunContext | None) -> Engine:
    """The engine of a run context (cached: configs are loaded and validated once).

    A context object keeps the engine it first got, so every call of one run uses one
    configuration (and no call re-reads the environment); a new context picks up an edited
    tierflow.toml or ``TIERFLOW_*`` variables.
    """
    if ctx is None:
        return _engine(RunContext())
    return _ENGINE_OF(ctx)


def _engine(ctx: RunContext) -> Engine:
    # Test doubles are keyed by object identity; the cached engine keeps them alive, so an id
    # cannot be reused by another model while its entry exists.
    doubles = tuple(sorted((k, id(v)) for k, v in (ctx.models or {}).items()))
    key = (ctx.profile, ctx.config_file, _stamp(ctx.config_file), _overrides(), doubles,
           ctx.response_cache)  # fmt: skip
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            require_keys = not ctx.models
            cfg = load_config(ctx.profile, config_file=ctx.config_file, require_keys=require_keys)
            missing = [t for t in cfg.ladder if ctx.models and t not in ctx.models]
            if missing:
                # A tier without a double would quietly call its real endpoint.
                raise ConfigError(
                    "models",
                    f"test doubles are given for {', '.join(sorted(ctx.models or {}))} but not "
                    f"for {', '.join(missing)} of profile '{cfg.profile}'",
                    "give every tier of the ladder a model (e.g. ScriptedChatModel(script=[]) "
                    "for a tier that must not be called), or pass no models",
                )
            _ENGINES[key] = Engine(cfg, ctx.models, open_cache(ctx.response_cache))
        return _ENGINES[key]


_ENGINE_OF: IdentityMemo[Engine] = IdentityMemo(_engine)
