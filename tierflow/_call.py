"""What one model call is: who makes it, what it sends, what it returns, the events it emits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.config import get_stream_writer

__all__ = ["CallSite", "CallOutcome", "Request", "emit"]


@dataclass(frozen=True)
class CallSite:
    """Who is calling: recorded on every usage record and trace."""

    node: str
    tier: str
    subagent: str | None = None
    task_id: str | None = None
    escalation_reason: str | None = None


@dataclass
class CallOutcome:
    """Result of :func:`tierflow.calling.call_model`.

    ``message`` is None when the budget gate stopped the call: ``stopped`` is then
    ``"stopped"`` (a human chose stop) or ``"budget_exhausted"`` (the declared unattended
    policy, or a retry the budget left could not pay). ``records`` must be returned in the
    node's state update under ``usage``.
    """

    message: AIMessage | None
    records: list[dict[str, Any]]  # UsageRecord fields, as they are kept in state
    tier: str
    budget_usd: float | None
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)

    def state_update(self) -> dict[str, Any]:
        """The ``usage`` / ``budget_usd`` part of a node's update."""
        update: dict[str, Any] = {"usage": self.records}
        if self.budget_usd is not None:
            update["budget_usd"] = self.budget_usd
        return update


@dataclass(frozen=True)
class Request:
    """What a call sends, on whichever tier and endpoint serves it.

    Attributes:
        messages: the conversation.
        tools: OpenAI tool dicts offered.
        tool_choice: the tool the model must call, ``"any"``, or None.
        params: sampling parameters over the tier's own (``temperature``, ``seed``).
    """

    messages: Sequence[BaseMessage]
    tools: list[dict[str, Any]]
    tool_choice: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def emit(event: dict[str, Any]) -> None:
    """Send a progress event to the run's custom stream (best effort: never breaks a run)."""
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001
        pass
