"""What one model-node run of a ``create_agent`` graph did: its attempts, records and writes.

The tierflow middlewares of one agent share a :class:`Tab` per model-node run (a context
variable): the outermost opens it and returns everything it collected as one state update,
because LangChain keeps only the last inner ``Command`` when an outer middleware calls its
handler more than once (a climb), and a lost usage record would be a lost dollar.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from langchain.agents.middleware.types import (
    AgentState,
    ExtendedModelResponse,
    ModelResponse,
    OmitFromInput,
    PrivateStateAttr,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables.config import merge_configs, var_child_runnable_config
from langgraph.types import Command

from tierflow._call import CallSite
from tierflow._call_trace import trace_config
from tierflow.budget import Ledger
from tierflow.config import TierSpec
from tierflow.runtime import Engine
from tierflow.state import max_budget, merge_events
from tierflow.usage import merge_usage

__all__ = [
    "TierflowAgentState", "Attempt", "Tab", "open_tab", "reply_of", "run_sync", "traced",
    "MODEL_NODE",
]  # fmt: skip

# create_agent's model node: what usage records and budget questions name as the node.
MODEL_NODE = "model"

T = TypeVar("T")


class TierflowAgentState(AgentState[Any]):
    """The agent state keys tierflow's middlewares add (the names tierflow's graphs use).

    Attributes:
        usage: one usage record per model request attempt (:class:`tierflow.usage.UsageRecord`
            fields); ``tierflow.usage.summarize(state["usage"], by="tier")`` reports them.
        events: the timeline (``escalation``, ``verified``, ``budget`` events), as in the run view.
        budget_usd: the run's budget (input may set it; a human's raise only grows it).
        run_id: the run the ledger counts against (a new one for every new input).
        tier: the tier the run's model calls are on now (where the last climb ended).
        escalation: the last climb (``from``, ``to``, ``reason``, ``detail``); private.
        status: how the budget ended the run (``stopped``, ``budget_exhausted``), else None.
    """

    # LangGraph reads a channel's reducer from the last annotation.
    usage: Annotated[list[dict[str, Any]], OmitFromInput, merge_usage]
    events: Annotated[list[dict[str, Any]], OmitFromInput, merge_events]
    budget_usd: Annotated[float | None, max_budget]
    run_id: Annotated[str | None, OmitFromInput]
    tier: Annotated[str | None, OmitFromInput]
    escalation: Annotated[dict[str, Any] | None, PrivateStateAttr]
    status: Annotated[str | None, OmitFromInput]


@dataclass
class Attempt:
    """One request a TierMiddleware is making: an inner BudgetMiddleware meters it."""

    site: CallSite
    model: BaseChatModel
    model_name: str
    endpoint: str
    kwargs: Callable[[int], dict[str, Any]]  # the request's output cap as model settings
    metered: bool = False  # an inner BudgetMiddleware reserved, recorded and settled it


@dataclass
class Tab:
    """What the tierflow middlewares of one model-node run collected."""

    owner: str  # the class name of the middleware that opened it (the outermost)
    engine: Engine | None = None  # a TierMiddleware's: its profile prices every request
    attempt: Attempt | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    writes: dict[str, Any] = field(default_factory=dict)  # other state keys (tier, status, ...)
    stopped: str | None = None  # the budget ended the run (a RunStatus value)
    # The tier's model by name, for a budget step-down (set by a TierMiddleware).
    model_for: Callable[[str], Attempt] | None = None

    def update(self) -> dict[str, Any]:
        """The state update of everything collected."""
        return {"usage": self.records, "events": self.events, **self.writes}

    def result(self, response: ModelResponse[Any]) -> ExtendedModelResponse[Any]:
        """``response`` with the collected writes as its command."""
        return ExtendedModelResponse(model_response=response, command=Command(update=self.update()))


_TAB: contextvars.ContextVar[Tab | None] = contextvars.ContextVar("tierflow_tab", default=None)


@contextmanager
def open_tab(owner: str) -> Iterator[tuple[Tab, bool]]:
    """The tab of this model-node run, and whether this middleware opened it (the outermost)."""
    tab = _TAB.get()
    if tab is not None:
        yield tab, False
        return
    tab = Tab(owner)
    token = _TAB.set(tab)
    try:
        yield tab, True
    finally:
        _TAB.reset(token)


@contextmanager
def traced(attempt: Attempt, spec: TierSpec, ledger: Ledger | None = None) -> Iterator[None]:
    """Tag the request's trace as the engine tags its own (tier, model, price, budget left).

    The handler invokes the model with the config in context, so the tags and metadata are set
    there for the request's duration (only when a tracer or callback listens).
    """
    site = attempt.site
    extra = trace_config(site, site.tier, attempt.model_name, attempt.endpoint,
                         ledger or Ledger(None), spec)  # fmt: skip
    if extra is None:
        yield
        return
    extra.pop("run_name", None)  # the model's own run name stays
    parent = var_child_runnable_config.get()
    token = var_child_runnable_config.set(merge_configs(parent, extra))  # type: ignore[arg-type]
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def reply_of(response: ModelResponse[Any]) -> AIMessage | None:
    """The model's reply in a handler's response (its first AIMessage)."""
    return next((m for m in response.result if isinstance(m, AIMessage)), None)


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the async implementation from a sync hook (``agent.invoke``), one code path.

    The context (LangGraph's config, so ``interrupt`` works) travels with the coroutine; inside
    a running event loop (a notebook) it runs on a worker thread with its own loop.
    """

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ctx.run, asyncio.run, main()).result()
