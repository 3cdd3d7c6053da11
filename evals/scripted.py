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

import zlib
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field

from tierflow.errors import InputError
from tierflow.evals._suites import SUITES, Suite, load_items
from tierflow.oracle import USAGE
from tierflow.oracle import reply as _reply
from tierflow.oracle import right as _right
from tierflow.oracle import task_of as _task
from tierflow.testing import ScriptedChatModel

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
    "ORACLE_BENCHMARKS",
]

PERFECT = {"nano": 1.0, "mini": 1.0, "flagship": 1.0}
DEFAULT_ACCURACY = {"nano": 0.6, "mini": 0.85, "flagship": 1.0}
_LADDER = ["nano", "mini", "flagship"]

Responder = Callable[[list[BaseMessage]], AIMessage]


class OracleChatModel(ScriptedChatModel):
    """A scripted model whose every request is answered by ``responder`` (never runs out)."""

    responder: Any = Field(default=None, exclude=True)

    def _take(self, messages: list[BaseMessage]) -> Any:
        return self.responder


def _suite(suite: str) -> Suite:
    scripted = sorted(n for n, s in SUITES.items() if s.oracle or s.benchmark)
    if suite not in SUITES or not (SUITES[suite].oracle or SUITES[suite].benchmark):
        raise InputError(f"no scripted models for suite {suite!r}; choose from {scripted}")
    return SUITES[suite]


def models_for(
    suite: str, accuracy: Mapping[str, float] | None = None, tiers: tuple[str, ...] = tuple(_LADDER)
) -> dict[str, Any]:
    """TEST DOUBLE: one reference-answering model per tier for ``suite``.

    The responders are the oracle the suite's graph declares (``EvalSuite(oracle=...)``); a
    public benchmark's are :func:`bench_models_for`'s.

    Args:
        suite: a suite with an oracle: ``triage``, ``codebase_qa``, ``routing``, a benchmark.
        accuracy: tier -> share of items answered right (default :data:`PERFECT`); the wrong
            ones are picked by a hash of (item id, tier), so runs are reproducible.
        tiers: tiers to build.
    """
    known = _suite(suite)
    if known.benchmark is not None:
        return bench_models_for(suite, accuracy)
    assert known.oracle is not None  # _suite checked
    acc = dict(PERFECT if accuracy is None else accuracy)
    items = load_items(suite)
    return {
        t: OracleChatModel(
            script=[], label=f"oracle-{suite}-{t}", responder=known.oracle(items, t, acc)
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
            raise InputError(
                f"model {request.get('model')!r} names no tier of {sorted(responders)}"
            )
        messages = [_convert_dict_to_message(m) for m in request["messages"]]
        return _convert_message_to_dict(responders[tier](messages))

    return respond


# --- public benchmarks (gsm8k, mmlu, mbpp, bfcl) -------------------------------------------
# The benchmarks these oracles answer; a graph whose spec runs one (EvalSuite(benchmark=...))
# gets them, whatever its name (bfcl_native runs bfcl).
ORACLE_BENCHMARKS = ("gsm8k", "mmlu", "mbpp", "bfcl")
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


def _bench_index(suite: str, benchmark: str) -> dict[str, dict[str, Any]]:
    key = {"mbpp": "description"}.get(benchmark, "question")
    items = [*load_items(suite, None, "calib"), *load_items(suite, None, "report")]
    return {SUITES[suite].make_input(i)["task"][key]: i for i in items}


def _bench_answer(
    benchmark: str, item: Mapping[str, Any], right: bool, native: bool = False
) -> AIMessage:
    if benchmark == "gsm8k":
        value = float(item["answer"]) + (0 if right else 1)
        return AIMessage(f"Work: (scripted)\nAnswer: {value:g}", usage_metadata=_usage())
    if benchmark == "mmlu":
        letters = "ABCD"
        letter = item["answer"] if right else letters[(letters.index(item["answer"]) + 1) % 4]
        return AIMessage(letter, usage_metadata=_usage())
    if benchmark == "mbpp":
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


def _bench_key(benchmark: str, messages: list[BaseMessage]) -> str:
    """The item key (question or description) in a benchmark graph's opening message."""
    opening = str(messages[1].content)
    if benchmark == "gsm8k":
        return opening.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:")
    if benchmark == "mmlu":
        return opening.split("\nQuestion: ", 1)[1].rsplit("\nA. ", 1)[0]
    if benchmark == "mbpp":
        return opening.split("\nYour code should pass this test:", 1)[0]
    if _native(messages):
        return opening
    return str(_task(messages)[1]["question"])


def _native(messages: list[BaseMessage]) -> bool:
    """A BFCL request through ``bfcl_native``: the question alone, the functions as tools."""
    return not str(messages[1].content).startswith("Task (")


def _bench(suite: str, benchmark: str, tier: str, accuracy: Mapping[str, float]) -> Any:
    index: dict[str, dict[str, Any]] = {}

    def respond(messages: list[BaseMessage], temperature: float | None, seed: Any) -> AIMessage:
        if not index:
            index.update(_bench_index(suite, benchmark))
        item = index[_bench_key(benchmark, messages)]
        right = _right(item["id"], tier, accuracy)
        if temperature:  # a verifier's sample
            agree = _coin(item["id"], tier, seed) < (_AGREE_RIGHT if right else _AGREE_WRONG)
            right = right if agree else not right
        native = benchmark == "bfcl" and _native(messages)
        return _bench_answer(benchmark, item, right, native)

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
    benchmark = SUITES[suite].benchmark if suite in SUITES else None
    if benchmark not in ORACLE_BENCHMARKS:
        known = sorted(n for n, s in SUITES.items() if s.benchmark in ORACLE_BENCHMARKS)
        raise InputError(f"no benchmark oracle for {suite!r}; use one of {known}")
    acc = dict(BENCH_ACCURACY if accuracy is None else accuracy)
    return {
        t: BenchOracle(
            script=[], label=f"oracle-{suite}-{t}", responder=_bench(suite, str(benchmark), t, acc)
        )
        for t in _LADDER
    }
