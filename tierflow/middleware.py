"""Tier escalation and dollar budgets for LangChain v1 agents (``langchain.agents.create_agent``).

Two middlewares, usable alone or together (in this order):

- :class:`TierMiddleware` runs each of the agent's model calls on a tier of a tierflow profile,
  checks the reply (schema, loop, your verifier) and climbs the ladder (nano -> mini -> flagship)
  when it fails, as tierflow's supervisor escalates a subagent's task.
- :class:`BudgetMiddleware` holds the run to a dollar budget with tierflow's ledger: every
  request reserves its worst case first, with ``max_tokens`` clamped to what is left, and settles
  after; at the limit it asks a human (a LangGraph interrupt) or follows a declared policy.

Both write tierflow's records into the agent's state (:class:`TierflowAgentState`): ``usage``
(one :class:`~tierflow.usage.UsageRecord` per request attempt: tier, model, tokens, cached
tokens, cost, latency, escalation reason) and ``events`` (the run view's timeline).

Example:
    >>> from langchain.agents import create_agent
    >>> from tierflow.testing import ScriptedChatModel, text_reply
    >>> models = {"nano": ScriptedChatModel(script=[text_reply("I don't know")]),
    ...           "mini": ScriptedChatModel(script=[text_reply("Paris")]),
    ...           "flagship": ScriptedChatModel(script=[])}
    >>> agent = create_agent(model=models["flagship"], middleware=[
    ...     TierMiddleware("openai", models=models,
    ...                    verifier=lambda request, reply, state: None if "Paris" in reply.text
    ...                    else "name the city"),
    ...     BudgetMiddleware(0.05, at_limit="stop", profile="openai")])
    >>> out = agent.invoke({"messages": [("user", "Capital of France?")]})
    >>> out["messages"][-1].text, [(r["tier"], r["escalation_reason"]) for r in out["usage"]]
    ('Paris', [('nano', None), ('mini', 'verifier_rejected')])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

try:
    from langchain.agents.middleware.types import (
        AgentMiddleware,
        ExtendedModelResponse,
        ModelRequest,
        ModelResponse,
        hook_config,
    )
except ImportError as exc:  # pragma: no cover - the optional extra is missing
    raise ImportError(
        "tierflow.middleware needs LangChain v1: pip install 'tierflow[langchain]'"
    ) from exc
from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy
from pydantic import BaseModel

from tierflow._middleware_budget import Deferred, Meter
from tierflow._middleware_checks import ReplyChecks
from tierflow._middleware_tab import TierflowAgentState, open_tab, run_sync
from tierflow._middleware_tier import Ladder, climb_ladder
from tierflow.budget import begin_run, end_run
from tierflow.checks import CheckFn, as_check
from tierflow.config import TierConfig, load_config
from tierflow.errors import SpecError
from tierflow.protocol import BudgetAction
from tierflow.runtime import Engine
from tierflow.tiers import TierPolicy

__all__ = ["TierMiddleware", "BudgetMiddleware", "TierflowAgentState", "AtLimit"]

AtLimit = Literal["interrupt", "stop", "cheaper"]
_AT_LIMIT: dict[str, TierPolicy] = {
    "interrupt": TierPolicy(human=True, on_budget=None),
    BudgetAction.STOP.value: TierPolicy(human=False, on_budget=BudgetAction.STOP.value),
    BudgetAction.CHEAPER.value: TierPolicy(human=False, on_budget=BudgetAction.CHEAPER.value),
}
AsyncHandler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
SyncHandler = Callable[[ModelRequest[Any]], ModelResponse[Any]]
Result = ModelResponse[Any] | ExtendedModelResponse[Any]


def _profile(profile: str | TierConfig | None) -> TierConfig:
    if isinstance(profile, TierConfig):
        return profile
    return load_config(profile, require_keys=False)


def _resolve(
    profile: str | TierConfig | None,
    models: Mapping[str, BaseChatModel] | None,
    ladder: Sequence[str] | None,
    start: str | None,
) -> tuple[Engine, str]:
    """The engine of a TierMiddleware (its ladder in place of the profile's) and its start tier."""
    config = _profile(profile)
    rungs = tuple(ladder or config.ladder)
    unknown = [t for t in (*rungs, *(models or {})) if t not in config.tiers]
    if unknown or not rungs:
        raise SpecError(
            f"TierMiddleware names tier {unknown[0] if unknown else '(none)'!r}; profile "
            f"'{config.profile}' declares {', '.join(config.tiers)}: use those in ladder= and models="
        )
    if start is not None and start not in rungs:
        raise SpecError(f"TierMiddleware start={start!r} is not on its ladder {list(rungs)}")
    if not isinstance(profile, TierConfig) and any(t not in (models or {}) for t in rungs):
        load_config(config.profile)  # a real endpoint will be called: its API key must be set
    config = config.model_copy(update={"ladder": rungs})
    return Engine(config, models), start or rungs[0]


class TierMiddleware(AgentMiddleware[TierflowAgentState, Any, Any]):
    """Run an agent's model calls on a tier ladder, climbing when a reply fails its checks.

    Each model call of the agent starts on the current tier (``start``, or where an earlier
    climb of this run ended when ``sticky``) and runs there through the rest of the middleware
    stack, so ``response_format``, tools and inner middleware work unchanged. The reply is
    checked; a failing one climbs one tier (``tierflow.tiers.climb``) with the reason tierflow's
    supervisor records: ``schema_validation`` (a tool call naming no offered tool or with bad
    arguments, a reply that does not fit ``response_format`` or ``response_schema``),
    ``loop_detected`` (a tool call repeated more than ``max_repeats`` times since the user's last
    message), ``verifier_rejected`` (your verifier, on final answers) and ``error`` (the request
    failed after the tier's retries and fallback endpoints). The top tier's reply is kept even
    if it fails (``state["status"] == "unverified"``); its error is raised.

    Middleware listed after it runs on each tier's request (a :class:`BudgetMiddleware` must:
    one listed first is refused, with that fix); middleware listed before it sees one request.
    Under ``stream_mode="messages"`` a reply that is then rejected was streamed too; its
    metadata's ``tierflow_tier`` says which tier gave it.

    Args:
        profile: a tierflow profile name (``openai``, ``local``, one in tierflow.toml) or a
            :class:`~tierflow.config.TierConfig`; default: tierflow's resolution order.
        models: tier -> chat model to use instead of the profile's endpoint (your own clients,
            or :class:`~tierflow.testing.ScriptedChatModel` in tests).
        ladder: the tiers to climb, cheapest first (default: the profile's ladder).
        start: the first tier (default: the bottom of the ladder).
        verifier: a :class:`~tierflow.checks.Check` ``(request text, answer, agent state)``
            returning a :class:`~tierflow.checks.Verdict`, a reason (rejected) or None
            (accepted); the answer is the structured response when there is one, else the
            AIMessage. It runs on final answers (replies that call no tool), off the event loop.
        response_schema: a pydantic model a final answer's text must be JSON of.
        max_repeats: times one tool call (same name and arguments) may be repeated in a turn.
        repairs: times a failing reply is sent back to the same tier, with why, before climbing.
        sticky: later calls of the run stay on the tier a climb reached (tierflow's subagents
            do); False starts every call at ``start``.
        retry: retry policy of transient errors (default: each tier's ``max_retries``).

    Raises:
        SpecError: a tier not in the profile, or a bad setting.
        ConfigError: a tier that will call its endpoint has no API key set.

    Example:
        >>> from tierflow.testing import ScriptedChatModel
        >>> TierMiddleware("openai", ladder=("nano", "flagship"),
        ...                models={"nano": ScriptedChatModel(script=[]),
        ...                        "flagship": ScriptedChatModel(script=[])}).start
        'nano'
    """

    state_schema = TierflowAgentState

    def __init__(
        self,
        profile: str | TierConfig | None = None,
        *,
        models: Mapping[str, BaseChatModel] | None = None,
        ladder: Sequence[str] | None = None,
        start: str | None = None,
        verifier: CheckFn | None = None,
        response_schema: type[BaseModel] | None = None,
        max_repeats: int = 1,
        repairs: int = 0,
        sticky: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        if max_repeats < 0 or repairs < 0:
            raise SpecError(
                f"TierMiddleware max_repeats={max_repeats}, repairs={repairs}: use 0 or more"
            )
        if verifier is not None and not callable(verifier):
            raise SpecError(
                "TierMiddleware verifier: pass a function (request, answer, state) -> reason | None"
            )
        if response_schema is not None and not (
            isinstance(response_schema, type) and issubclass(response_schema, BaseModel)
        ):
            raise SpecError(
                f"TierMiddleware response_schema={response_schema!r}: pass a pydantic model class"
            )
        engine, first = _resolve(profile, models, ladder, start)
        checks = ReplyChecks(as_check(verifier) if verifier else None, response_schema, max_repeats)
        self._ladder = Ladder(engine, dict(models or {}), first, checks, retry, repairs, sticky)

    @property
    def start(self) -> str:
        """The tier each run's first model call is made on."""
        return self._ladder.start

    @property
    def ladder(self) -> tuple[str, ...]:
        """The tiers it climbs, cheapest first."""
        return self._ladder.engine.config.ladder

    def before_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """New input starts a new run: at the start tier, no climb yet."""
        return {"tier": None, "escalation": None, "status": None, **begin_run(state)}

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Back to the model when a climb waits for a budget decision (nothing was replayed)."""
        return {"jump_to": "model"} if (state.get("escalation") or {}).get("deferred") else None

    async def awrap_model_call(self, request: ModelRequest[Any], handler: AsyncHandler) -> Result:
        """Run the request up the ladder until a reply passes its checks."""
        with open_tab(type(self).__name__) as (tab, own):
            if not own:
                raise SpecError(
                    f"{tab.owner} is listed before TierMiddleware: list TierMiddleware first, "
                    "middleware=[TierMiddleware(...), BudgetMiddleware(...)], so the budget "
                    "meters each tier's request"
                )
            tab.engine = self._ladder.engine
            tab.model_for = self._ladder.attempt
            try:
                response = await climb_ladder(self._ladder, tab, request, handler)
            except Deferred as wait:
                tab.writes["escalation"] = {**tab.writes.get("escalation", {}),
                                            "to": wait.tier, "deferred": True}  # fmt: skip
                response = ModelResponse(result=[])
            return tab.result(response)

    def wrap_model_call(self, request: ModelRequest[Any], handler: SyncHandler) -> Result:
        """:meth:`awrap_model_call` for ``agent.invoke`` (the same code, run to completion)."""

        async def ahandler(req: ModelRequest[Any]) -> ModelResponse[Any]:
            return handler(req)

        return run_sync(lambda: self.awrap_model_call(request, ahandler))


class BudgetMiddleware(AgentMiddleware[TierflowAgentState, Any, Any]):
    """Hold each agent run to a dollar budget with tierflow's ledger; never spend past it.

    Every model request first reserves its worst case on the run's ledger (an inflated input
    estimate plus ``max_tokens`` output), with ``max_tokens`` clamped to what the budget left
    can pay on the request's tier, and settles to its usage record after. When a request does
    not fit (not even :data:`tierflow.budget.MIN_OUTPUT_TOKENS` of output), ``at_limit``
    decides: ``"interrupt"`` asks a human with tierflow's budget interrupt (resume with
    ``Command(resume={"action": "raise", "budget_usd": 1.0})``, ``{"action": "cheaper"}`` or
    ``{"action": "stop"}``; needs a checkpointer), ``"stop"`` ends the run with a final message
    (``state["status"] == "budget_exhausted"``) and ``"cheaper"`` steps down the ladder while a
    cheaper tier fits, then stops.

    A run is one ``invoke`` of new input (``run_id``); its budget is ``budget_usd``, unless the
    input sets ``budget_usd``. Requests are priced at ``tier``'s prices of the profile, or, after
    a :class:`TierMiddleware` (list it first), at the prices of the tier each one runs on.

    Args:
        budget_usd: the run's budget in dollars (> 0).
        at_limit: ``"interrupt"``, ``"stop"`` or ``"cheaper"`` (see above).
        profile: the tierflow profile whose prices apply (default: tierflow's resolution order).
        tier: the tier the agent's own model is priced as, without a TierMiddleware (default:
            the profile's flagship).

    Raises:
        SpecError: a budget that is not positive, an unknown ``at_limit`` or tier.

    Example:
        >>> BudgetMiddleware(0.05, at_limit="stop", profile="openai").budget_usd
        0.05
    """

    state_schema = TierflowAgentState

    def __init__(
        self,
        budget_usd: float,
        *,
        at_limit: AtLimit = "interrupt",
        profile: str | TierConfig | None = None,
        tier: str | None = None,
    ) -> None:
        if not isinstance(budget_usd, int | float) or not budget_usd > 0:
            raise SpecError(
                f"BudgetMiddleware budget_usd={budget_usd!r}: give a dollar amount above 0"
            )
        if at_limit not in _AT_LIMIT:
            raise SpecError(
                f"BudgetMiddleware at_limit={at_limit!r}: use one of {', '.join(_AT_LIMIT)}"
            )
        config = _profile(profile)
        tier = tier or config.flagship
        if tier not in config.tiers:
            raise SpecError(
                f"BudgetMiddleware tier={tier!r}: profile '{config.profile}' declares {', '.join(config.tiers)}"
            )
        self.budget_usd = float(budget_usd)
        self.at_limit = at_limit
        self._meter = Meter(Engine(config), _AT_LIMIT[at_limit], tier)

    def before_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """New input starts a new run with its own ledger and this budget (unless it sets one)."""
        return {"status": None, **begin_run(state, self.budget_usd)}

    def after_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The run is over: forget its ledger (its records stay in state)."""
        end_run(state)
        return None

    async def awrap_model_call(self, request: ModelRequest[Any], handler: AsyncHandler) -> Result:
        """Reserve, clamp, call, record and settle one request."""
        with open_tab(type(self).__name__) as (tab, own):
            response = await self._meter.run(tab, request, handler)
            return tab.result(response) if own else response

    def wrap_model_call(self, request: ModelRequest[Any], handler: SyncHandler) -> Result:
        """:meth:`awrap_model_call` for ``agent.invoke`` (the same code, run to completion)."""

        async def ahandler(req: ModelRequest[Any]) -> ModelResponse[Any]:
            return handler(req)

        return run_sync(lambda: self.awrap_model_call(request, ahandler))
