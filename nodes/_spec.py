"""The declaration of a subagent (:class:`Subagent`) and the result it hands back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel

from tierflow.nodes.verifier import CheckFn

__all__ = ["ContextPolicy", "Subagent", "SubagentResult", "DETERMINISTIC"]

# The tier a task reports when it finished without a model (``Subagent.shortcut``).
DETERMINISTIC = "deterministic"


class ContextPolicy(StrEnum):
    """What a subagent sees besides its system prompt."""

    TASK = "task"  # only its typed task payload (default: cheapest, least distracting)
    TASK_AND_RESULTS = "task+results"  # plus the outputs of tasks already finished in this run
    FULL = "full"  # plus the supervisor's plan and the user's request


@dataclass(frozen=True)
class Subagent:
    """Declaration of one subagent.

    Attributes:
        name: node name and routing label.
        description: what it is good at (the supervisor routes on this).
        tier: the tier it starts on; escalation climbs from there.
        task_schema: typed payload the supervisor must fill.
        output_schema: what ``finish`` must return.
        prompt: system prompt.
        tools: tools, or a function of the run's ``env`` returning them (e.g. a sandbox root).
        context: :class:`ContextPolicy`.
        max_steps: model steps per tier before it must finish.
        max_repairs: invalid answers tolerated on one tier before escalating.
        verifier: a check (:class:`~tierflow.nodes.verifier.Check`) of the finished output:
            ``(task, output, env) -> Verdict``, or ``-> reason | None`` (a reason rejects);
            each verdict is a ``verified`` event.
        human_fallback: after the top tier, ask a human instead of failing the task.
        prefetch: ``(task, env) -> text`` of deterministic work (e.g. a first grep) shown with
            the task, so a small model starts from evidence instead of spending a step on it.
        shortcut: ``(task, env) -> output | None``: deterministic work that can finish the task
            by itself (e.g. grep found the definition asked for). An output that passes
            ``normalize`` and the verifier ends the task with no model call (``tier`` is
            ``"deterministic"``); otherwise the model starts as usual.
        normalize: ``(task, output, env) -> output`` deterministic clean-up applied to a
            finished output before the verifier (e.g. snap a cited line to where the quoted
            code really is).
        max_tool_chars: a tool result longer than this is cut (with a note) in the transcript.
        tool_timeout_s: a tool call that takes longer is abandoned and the model is told so
            (a sync tool's thread cannot be stopped, but the task goes on).
        max_context_chars: in ``forced`` mode (small local models, small context windows) the
            oldest steps are left out of the request, not the state, beyond this size.
        read_reply: for a subagent without tools: ``reply text -> output | None``. The model
            answers in plain text, in the form ``prompt`` asks for (no tool call, no JSON
            grammar: small models reason better and decode several times faster that way),
            and this turns the reply into the output (None: the reply is invalid).
        max_output_tokens: cap of each request's output, below the tier's own (None: the
            tier's): a one-letter answer needs a few tokens.
        render_task: ``task -> text`` of the opening message (default: the task as JSON under
            its schema's name); e.g. a question with lettered choices, as benchmarks pose it.
        answer_tools: ``task -> OpenAI tool dicts`` offered with native tool calling, whose
            calls ARE the answer (never run): the output is ``output_schema(calls=[{"name",
            "arguments"}, ...])``, none when the model replies in text. What a benchmark of
            tool calling (BFCL) measures against answers forced into a schema.
    """

    name: str
    description: str
    tier: str
    task_schema: type[BaseModel]
    output_schema: type[BaseModel]
    prompt: str
    tools: Sequence[BaseTool] | Callable[[Mapping[str, Any]], Sequence[BaseTool]] = ()
    context: ContextPolicy = ContextPolicy.TASK
    max_steps: int = 6
    max_repairs: int = 1
    verifier: CheckFn | None = None
    human_fallback: bool = True
    prefetch: Callable[[BaseModel, Mapping[str, Any]], str] | None = None
    shortcut: Callable[[BaseModel, Mapping[str, Any]], BaseModel | None] | None = None
    normalize: Callable[[BaseModel, BaseModel, Mapping[str, Any]], BaseModel] | None = None
    max_tool_chars: int = 4000
    tool_timeout_s: float = 30.0
    max_context_chars: int = 12000
    read_reply: Callable[[str], BaseModel | None] | None = None
    max_output_tokens: int | None = None
    render_task: Callable[[BaseModel], str] | None = None
    answer_tools: Callable[[BaseModel], list[dict[str, Any]]] | None = None

    def tools_for(self, env: Mapping[str, Any]) -> list[BaseTool]:
        """The tools of this subagent for a run's ``env``."""
        return list(self.tools(env) if callable(self.tools) else self.tools)


class SubagentResult(BaseModel):
    """What a subagent hands back to its parent graph."""

    task_id: str
    subagent: str
    task: dict[str, Any]
    status: Literal["done", "failed", "stopped", "budget_exhausted"]
    output: dict[str, Any] | None = None
    tier: str
    steps: int = 0
    escalations: list[dict[str, Any]] = []
    error: str | None = None
