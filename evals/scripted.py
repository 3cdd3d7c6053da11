"""TEST DOUBLE: scripted tier models that answer from the dataset's reference (notebooks, CI smoke).

These models never see a real model's behaviour: they read the item out of the request and
reply with the reference answer, wrong on a deterministic share of items per tier (see
``accuracy``), with a fixed token usage per request. Numbers they produce show that the
harness works, not how good any model is.

Example:
    >>> from tierflow.evals import run
    >>> from tierflow.evals.scripted import models_for
    >>> run("triage", limit=1, profile="openai", models=models_for("triage")).quality
    1.0
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field

from tierflow.evals._suites import langgraph_root, load_items
from tierflow.protocol import ToolName
from tierflow.testing import ScriptedChatModel, tool_reply

__all__ = [
    "OracleChatModel",
    "models_for",
    "oracle_responder",
    "DEFAULT_ACCURACY",
    "USAGE",
    "PERFECT",
    "BenchOracle",
    "bench_models_for",
    "BENCH_ACCURACY",
]

USAGE = (1000, 100)  # input, output tokens reported for every request
PERFECT = {"nano": 1.0, "mini": 1.0, "flagship": 1.0}
DEFAULT_ACCURACY = {"nano": 0.6, "mini": 0.85, "flagship": 1.0}
_CATEGORIES = ["billing", "account", "bug", "outage", "feature_request", "security", "other"]
_LADDER = ["nano", "mini", "flagship"]

Responder = Callable[[list[BaseMessage]], AIMessage]


class OracleChatModel(ScriptedChatModel):
    """A scripted model whose every request is answered by ``responder`` (never runs out)."""

    responder: Any = Field(default=None, exclude=True)

    def _take(self, messages: list[BaseMessage]) -> Any:
        return self.responder


def _right(item_id: str, tier: str, accuracy: Mapping[str, float]) -> bool:
    # Deterministic coin per (item, tier): the same items are wrong on every run.
    return zlib.crc32(f"{item_id}|{tier}".encode()) % 1000 < accuracy.get(tier, 1.0) * 1000


def _reply(name: str, args: dict[str, Any]) -> AIMessage:
    return tool_reply(name, args, usage=USAGE)


def _finish(messages: list[BaseMessage], output: dict[str, Any]) -> AIMessage:
    system = str(messages[0].content)
    if "Tools: " in system and "'next_action'" in system:  # forced mode (local profile)
        return _reply("next_action", {"step": {"action": "finish", "result": output}})
    return _reply("finish", output)


def _task(messages: list[BaseMessage]) -> tuple[str, dict[str, Any]]:
    """The subagent's task schema name and payload, from its opening message."""
    opening = next(str(m.content) for m in messages[1:] if str(m.content).startswith("Task ("))
    head, _, body = opening.partition(":\n")
    payload, _ = json.JSONDecoder().raw_decode(body)
    return head.removeprefix("Task (").rstrip(")"), payload


def _triage(tier: str, accuracy: Mapping[str, float]) -> Responder:
    items = {i["id"]: i for i in load_items("triage")}

    def respond(messages: list[BaseMessage]) -> AIMessage:
        schema, task = _task(messages)
        ticket_id = task["ticket"]["id"] if schema == "DraftTask" else task["id"]
        ref = items[ticket_id]["reference"]
        ok = _right(ticket_id, tier, accuracy)
        if schema == "DraftTask":
            return _finish(messages, {"subject": "Re: your ticket", "body": "We are on it."})
        if "category" in str(messages[0].content):  # the classify prompt; extract's never says it
            category = (
                ref["category"] if ok else _CATEGORIES[(_CATEGORIES.index(ref["category"]) + 1) % 7]
            )
            complex_ = ref["needs_reply_draft"] and ref["urgency"] not in ("high", "critical")
            return _finish(
                messages, {"category": category, "urgency": ref["urgency"], "complex": complex_}
            )
        fields = dict(ref["fields"])
        if not ok:  # a wrong product never trips the extract verifier, so cost stays comparable
            fields["product"] = None if fields["product"] else "Acme Compute"
        return _finish(messages, fields)

    return respond


def _line_of(path: str, contains: str, near: int) -> int:
    lines = (langgraph_root() / path).read_text(errors="replace").splitlines()
    hits = [n for n, text in enumerate(lines, 1) if contains.strip() in text]
    return min(hits, key=lambda n: abs(n - near)) if hits else near


def _codebase_qa(tier: str, accuracy: Mapping[str, float]) -> Responder:
    items = load_items("codebase_qa")
    by_question = {i["question"]: i for i in items}
    by_query = {i["evidence"][0]["contains"]: i for i in items}

    def item_of(messages: list[BaseMessage]) -> dict[str, Any]:
        text = str(messages[-1].content)
        match = re.search(r"Request:\n(.*?)(?:\n\n|$)", text, re.S)
        return by_question[match.group(1).strip()] if match else items[0]

    def cites(item: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"path": e["path"], "line": _line_of(e["path"], e["contains"], e["start_line"])}
                for e in item["evidence"]]  # fmt: skip

    def respond(messages: list[BaseMessage]) -> AIMessage:
        system = str(messages[0].content)
        if system.startswith("You answer questions about a source tree"):
            item = item_of(messages)
            if "Results so far" in str(messages[-1].content):
                return _reply(
                    ToolName.DECIDE,
                    {"plan": "The findings answer it.", "delegate": [], "done": True},
                )
            task = {"query": item["evidence"][0]["contains"], "file_glob": "*.py"}
            return _reply(ToolName.DECIDE, {"plan": "Find the evidence.", "done": False,
                                     "delegate": [{"subagent": "search", "task": task}]})  # fmt: skip
        if system.startswith("Answer every part of the question"):
            item = item_of(messages)
            answer = item["reference_answer"] if _right(item["id"], tier, accuracy) else "unknown"
            return _reply("final_answer", {"answer": answer, "citations": cites(item)})
        schema, task = _task(messages)
        if schema == "SearchTask":
            item = by_query.get(task["query"], items[0])
            found = [
                {**c, "snippet": e["contains"]}
                for c, e in zip(cites(item), item["evidence"], strict=True)
            ]
            return _finish(messages, {"findings": found, "summary": "found it"})
        return _finish(messages, {"facts": []})

    return respond


def _routing(tier: str, accuracy: Mapping[str, float]) -> Responder:
    items = {i["task"]: i for i in load_items("routing")}

    def respond(messages: list[BaseMessage]) -> AIMessage:
        task = str(messages[-1].content).split("Task: ", 1)[-1]
        item = items[task]
        choice = item["cheapest_tier"]
        if not _right(item["id"], tier, accuracy):
            choice = _LADDER[(_LADDER.index(choice) + 1) % 3]
        return _reply("TierChoice", {"tier": choice, "reason": "reference label (test double)"})

    return respond


_RESPONDERS = {"triage": _triage, "codebase_qa": _codebase_qa, "routing": _routing}


def models_for(
    suite: str, accuracy: Mapping[str, float] | None = None, tiers: tuple[str, ...] = tuple(_LADDER)
) -> dict[str, Any]:
    """TEST DOUBLE: one reference-answering model per tier for ``suite``.

    Args:
        suite: ``triage``, ``codebase_qa`` or ``routing``.
        accuracy: tier -> share of items answered right (default :data:`PERFECT`); the wrong
            ones are picked by a hash of (item id, tier), so runs are reproducible.
        tiers: tiers to build.
    """
    if suite in ("gsm8k", "mmlu", "mbpp", "bfcl", "bfcl_native"):
        return bench_models_for(suite, accuracy)
    if suite not in _RESPONDERS:
        raise ValueError(
            f"no scripted models for suite {suite!r}; choose from {sorted(_RESPONDERS)}"
        )
    acc = dict(PERFECT if accuracy is None else accuracy)
    return {
        t: OracleChatModel(
            script=[], label=f"oracle-{suite}-{t}", responder=_RESPONDERS[suite](t, acc)
        )
        for t in tiers
    }


def oracle_responder(
    suite: str, accuracy: Mapping[str, float] | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """TEST DOUBLE over HTTP: a :class:`tierflow.faults.StandIn` responder for ``suite``.

    It answers as the suite's oracle model of the tier a request names (the request's model
    ends in ``-<tier>``, e.g. ``stand-in-nano``).
    """
    from langchain_openai.chat_models.base import (
        _convert_dict_to_message,
        _convert_message_to_dict,
    )

    responders = {t: m.responder for t, m in models_for(suite, accuracy).items()}

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        tier = str(request.get("model", "")).rsplit("-", 1)[-1]
        if tier not in responders:
            raise ValueError(
                f"model {request.get('model')!r} names no tier of {sorted(responders)}"
            )
        messages = [_convert_dict_to_message(m) for m in request["messages"]]
        return _convert_message_to_dict(responders[tier](messages))

    return respond


# --- public benchmarks (gsm8k, mmlu, mbpp, bfcl) -------------------------------------------
# A benchmark oracle answers right on a deterministic share of items per tier. A verifier's
# extra sample (a request with a temperature) agrees with a right answer 85% of the time and
# with a wrong one 25% of the time, so agreement is informative but imperfect, as with real
# models.
BENCH_ACCURACY = {"nano": 0.55, "mini": 0.55, "flagship": 0.8}
_AGREE_RIGHT, _AGREE_WRONG = 0.85, 0.25


class BenchOracle(OracleChatModel):
    """An oracle that also sees each request's sampling parameters (temperature, seed)."""

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any], started: float) -> Any:
        temperature, seed = kwargs.get("temperature"), kwargs.get("seed")
        responder = self.responder
        self.responder = lambda msgs: responder(msgs, temperature, seed)
        try:
            return super()._reply(messages, kwargs, started)
        finally:
            self.responder = responder


def _coin(*parts: Any) -> float:
    return zlib.crc32("|".join(map(str, parts)).encode()) % 1000 / 1000


def _bench_index(suite: str) -> dict[str, dict[str, Any]]:
    from tierflow.evals._suites import SUITES

    key = {"mbpp": "description"}.get(suite, "question")
    items = [*load_items(suite, None, "calib"), *load_items(suite, None, "report")]
    return {SUITES[suite].make_input(i)["task"][key]: i for i in items}


def _bench_answer(
    suite: str, item: Mapping[str, Any], right: bool, native: bool = False
) -> AIMessage:
    if suite == "gsm8k":
        value = float(item["answer"]) + (0 if right else 1)
        return AIMessage(f"Work: (scripted)\nAnswer: {value:g}", usage_metadata=_usage())
    if suite == "mmlu":
        letters = "ABCD"
        letter = item["answer"] if right else letters[(letters.index(item["answer"]) + 1) % 4]
        return AIMessage(letter, usage_metadata=_usage())
    if suite == "mbpp":
        code = item["code"] if right else "def broken(*args):\n    return None\n"
        return AIMessage(f"```python\n{code}\n```", usage_metadata=_usage())
    calls = _reference_calls(item) if right else _wrong_calls(item)
    if native:  # the calls themselves, as native tool calls
        msg = AIMessage("", tool_calls=[{"name": c["name"], "args": c["arguments"],
                                         "id": f"call_{i}"} for i, c in enumerate(calls)])  # fmt: skip
        msg.usage_metadata = _usage()
        return msg
    return _reply("finish", {"calls": calls})


def _usage() -> Any:
    return {"input_tokens": USAGE[0], "output_tokens": USAGE[1], "total_tokens": sum(USAGE)}


def _reference_calls(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BFCL's first possible answer of each parameter, as calls (optional ones left out)."""
    alias = {v: k for k, v in item["tool_names"].items()}
    calls = []
    for answer in item["possible_answer"]:
        for name, params in answer.items():
            args = {p: vals[0] for p, vals in params.items() if vals and vals[0] != ""}
            calls.append({"name": alias.get(name, name), "arguments": args})
    return calls


def _wrong_calls(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = _reference_calls(item)
    if not calls:  # irrelevance: a wrong answer calls a function anyway
        fn = item["tools"][0]["function"]
        return [{"name": fn["name"], "arguments": {}}]
    first = dict(calls[0]["arguments"])
    if first and _coin(item["id"], "drop") < 0.5:
        first.pop(next(iter(first)))  # a missing argument: the schema verifier can catch it
    else:
        # Wrong values; a call with no arguments gets an unknown one.
        first = {k: _wrong_value(v) for k, v in first.items()} or {"__wrong__": 1}
    return [{"name": calls[0]["name"], "arguments": first}, *calls[1:]]


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return [*value, value[-1] if value else 0]
    if isinstance(value, dict):
        return {**value, "__wrong__": 1}
    return f"{value}x" if isinstance(value, str) else value


def _bench_key(suite: str, messages: list[BaseMessage]) -> str:
    """The item key (question or description) in a benchmark graph's opening message."""
    opening = str(messages[1].content)
    if suite == "gsm8k":
        return opening.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:")
    if suite == "mmlu":
        return opening.split("\nQuestion: ", 1)[1].rsplit("\nA. ", 1)[0]
    if suite == "mbpp":
        return opening.split("\nYour code should pass this test:", 1)[0]
    if _native(messages):
        return opening
    return str(_task(messages)[1]["question"])


def _native(messages: list[BaseMessage]) -> bool:
    """A BFCL request through ``bfcl_native``: the question alone, the functions as tools."""
    return not str(messages[1].content).startswith("Task (")


def _bench(suite: str, tier: str, accuracy: Mapping[str, float]) -> Any:
    index: dict[str, dict[str, Any]] = {}

    def respond(messages: list[BaseMessage], temperature: float | None, seed: Any) -> AIMessage:
        if not index:
            index.update(_bench_index(suite))
        item = index[_bench_key(suite, messages)]
        right = _right(item["id"], tier, accuracy)
        if temperature:  # a verifier's sample
            agree = _coin(item["id"], tier, seed) < (_AGREE_RIGHT if right else _AGREE_WRONG)
            right = right if agree else not right
        return _bench_answer(suite, item, right, suite.startswith("bfcl") and _native(messages))

    return respond


def bench_models_for(
    suite: str, accuracy: Mapping[str, float] | None = None
) -> dict[str, BenchOracle]:
    """TEST DOUBLE: reference-answering models per tier for a public benchmark suite.

    Right on a hash-picked share of items per tier (default :data:`BENCH_ACCURACY`); a
    verifier's sample agrees with a right answer 85% of the time and a wrong one 25%. BFCL's
    models answer both of its graphs: in the forced schema, or natively when the functions
    are offered as tools.
    """
    if suite not in ("gsm8k", "mmlu", "mbpp", "bfcl", "bfcl_native"):
        raise ValueError(f"no benchmark oracle for {suite!r}; use gsm8k, mmlu, mbpp or bfcl")
    acc = dict(BENCH_ACCURACY if accuracy is None else accuracy)
    return {
        t: BenchOracle(script=[], label=f"oracle-{suite}-{t}", responder=_bench(suite, t, acc))
        for t in _LADDER
    }
