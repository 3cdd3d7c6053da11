"""A first answer drafted part by part: one short plain-text call per part, composed, then checked.

A small model that fumbles a whole structured answer (it copies the question into the
``answer`` field, or the schema's ``#/$defs/Citation`` into a path) can still answer one narrow
question from a few lines of evidence. :class:`PartDrafts` declares that split for a
supervisor: ``parts`` turns the state into one self-contained prompt per part of the request,
the draft tier answers each in a sentence (the calls run concurrently), and ``compose`` builds
the answer schema from the sentences. The composed answer goes through the same
``answer_normalize`` and ``answer_verifier`` as any answer; when the check rejects it, the
draft is written part by part again on the supervisor's tier (when it was below it), and the
repairs after that are whole answers on that tier, told what the check found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel

from tierflow.calling import CallSite, call_model
from tierflow.errors import ModelCallError
from tierflow.nodes.human import event
from tierflow.protocol import EventKind, RunStatus
from tierflow.runtime import RunContext, context_of, engine_for

__all__ = ["PartDrafts", "draft_parts"]


@dataclass(frozen=True)
class PartDrafts:
    """How a supervisor's first answer is drafted part by part.

    Attributes:
        parts: ``state -> [prompt, ...]``, one self-contained prompt per part of the request
            (the part's question and its evidence). An empty list: the first answer is one
            whole structured answer, as without part drafts.
        compose: ``(state, texts) -> answer``, the answer schema built from the part answers,
            in the order of ``parts``.
        prompt: the system prompt of every part call.
        max_tokens: the output cap of one part's answer.
    """

    parts: Callable[[Mapping[str, Any]], Sequence[str]]
    compose: Callable[[Mapping[str, Any], Sequence[str]], BaseModel]
    prompt: str = (
        "You answer one question about a codebase from the facts and lines given. Reply with "
        "one short sentence that gives the answer exactly as the code writes it, then the "
        "path:line you rely on. Never repeat the question."
    )
    max_tokens: int = 160


async def draft_parts(
    runtime: Runtime[RunContext],
    node: str,
    tier: str,
    state: Mapping[str, Any],
    prompts: Sequence[str],
    spec: PartDrafts,
    escalation_reason: str | None = None,
) -> tuple[dict[str, Any], list[str] | None]:
    """Answer each prompt on ``tier``; returns the state update and the texts (None: no draft).

    The texts are None when a part's call failed (the update then carries an ``error`` event
    and the caller climbs to a whole answer) or was stopped by the budget (the update's
    ``status`` says so and the run ends as a budget stop would).
    """
    engine, ctx = engine_for(runtime.context), context_of(runtime)
    site = CallSite(node=node, tier=tier, escalation_reason=escalation_reason)

    async def one(prompt: str) -> Any:
        messages = [SystemMessage(spec.prompt), HumanMessage(prompt)]
        return await call_model(engine, site, state, messages, retry=ctx.retry,
                                policy=ctx.policy, max_tokens=spec.max_tokens)  # fmt: skip

    outcomes = await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)
    usage: list[Any] = []
    update: dict[str, Any] = {"usage": usage}
    texts: list[str] | None = []
    for out in outcomes:
        if isinstance(out, ModelCallError):
            usage += out.records
            update["events"] = [event(EventKind.ERROR, node=node, error=str(out))]
            texts = None
            continue
        if isinstance(out, BaseException):
            raise out
        usage += out.records
        if out.budget_usd is not None:
            update["budget_usd"] = out.budget_usd
        if out.stopped or out.message is None:
            update["status"] = RunStatus(out.stopped or RunStatus.STOPPED).value
            texts = None
        elif texts is not None:
            texts.append(str(out.message.content or "").strip())
    return update, texts
