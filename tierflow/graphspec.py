"""A graph declared once: its builder, how the CLI reads its input, and its eval suite.

A graph module (``graphs/<name>/graph.py``) declares ``SPEC = GraphSpec(...)`` (a module with
several graphs declares ``SPECS``, name -> spec) and exposes ``SPEC.compile()`` under the name
``langgraph.json`` gives it. Everything else follows from the spec: ``tierflow run`` reads INPUT
by its :class:`InputRules`, ``tierflow eval`` and the scripted oracles of
:mod:`tierflow.evals.scripted` come from its :class:`EvalSuite`, and ``tierflow graphs --check``
(a unit test too) says which line ``langgraph.json`` lacks.

Example:
    >>> from langgraph.graph import END, START, StateGraph
    >>> from typing_extensions import TypedDict
    >>> class Echo(TypedDict, total=False):
    ...     request: str
    >>> def build() -> StateGraph:
    ...     builder = StateGraph(Echo)
    ...     builder.add_node("echo", lambda state: state)
    ...     builder.add_edge(START, "echo")
    ...     return builder.add_edge("echo", END)
    >>> SPEC = GraphSpec(name="echo", build=build)
    >>> SPEC.compile().name
    'echo'
    >>> SPEC.inputs == InputRules.from_schema(Echo)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tierflow.errors import SpecError

__all__ = ["GraphSpec", "InputRules", "EvalSuite", "Scored"]

Item = Mapping[str, Any]  # one dataset item
# (dataset items, tier, tier -> share answered right) -> responder(messages) -> AIMessage
Oracle = Callable[[list[dict[str, Any]], str, Mapping[str, float]], Callable[[list[Any]], Any]]


@dataclass(frozen=True)
class InputRules:
    """How ``tierflow run GRAPH INPUT`` turns INPUT into the graph's input.

    Attributes:
        list_key: a JSON list (or a .jsonl file) becomes ``{list_key: items}``; None refuses
            a list ("pass a JSON object instead").
        text_key: plain text becomes ``{text_key: text}`` (its length is checked against
            ``TIERFLOW_MAX_REQUEST_CHARS``).
        root_key: the key that gets ``{"root": <--root, default the working folder>}`` when
            the input lacks it (a graph that reads a source tree); None: no such key.
    """

    list_key: str | None = None
    text_key: str = "request"
    root_key: str | None = None

    @classmethod
    def from_schema(cls, schema: Any) -> InputRules:
        """The rules implied by an input schema (graphs without a spec): its one list key, ``env``."""
        hints = getattr(schema, "__annotations__", {})
        lists = [k for k, v in hints.items() if "list" in str(v).lower()]
        return cls(
            list_key=lists[0] if len(lists) == 1 else None,
            root_key="env" if "env" in hints else None,
        )


@dataclass(frozen=True)
class Scored:
    """Scores of one example: metric -> value, the primary metrics' mean, per-subagent quality."""

    scores: dict[str, float]
    quality: float
    subagent_quality: dict[str, float]
    prediction: Any


@dataclass(frozen=True)
class EvalSuite:
    """The eval suite of a graph: a dataset of its own, or a public benchmark evals reads.

    Attributes:
        dataset: jsonl file under ``evals/data`` (or a path); "" for a benchmark.
        make_input: dataset item -> graph input.
        score: (dataset item, final state) -> :class:`Scored`.
        oracle: scripted oracle (TEST DOUBLE): ``(items, tier, accuracy) -> responder``, the
            responder answering a request's messages with the reference answer.
        benchmark: a public benchmark of ``tierflow.evals.benchmarks`` (``gsm8k``, ``mmlu``,
            ``mbpp``, ``bfcl``); its loader, input, scorer and oracle are evals'.
        policies: the policies ``--policy all`` expands to (None: evals' default).
    """

    dataset: str = ""
    make_input: Callable[[Item], dict[str, Any]] | None = None
    score: Callable[[Item, Item], Scored] | None = None
    oracle: Oracle | None = None
    benchmark: str | None = None
    policies: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.benchmark is not None:
            if self.dataset or self.make_input or self.score or self.oracle:
                raise SpecError(
                    f"EvalSuite(benchmark={self.benchmark!r}) takes its data, input, scorer and "
                    "oracle from tierflow.evals.benchmarks: drop dataset/make_input/score/oracle"
                )
            return
        if not self.dataset or self.make_input is None or self.score is None:
            raise SpecError(
                "EvalSuite needs dataset=<jsonl under evals/data>, make_input= and score= "
                "(or benchmark=<name> for a public benchmark)"
            )


@dataclass(frozen=True)
class GraphSpec:
    """One graph, declared once.

    Attributes:
        name: the graph's name in ``langgraph.json`` and its root run's in traces.
        build: () -> the uncompiled ``StateGraph`` (the caller picks the checkpointer).
        inputs: how the CLI reads INPUT for it.
        suite: its eval suite, if it has one (``tierflow eval <name>``).
    """

    name: str
    build: Callable[[], Any]
    inputs: InputRules = field(default_factory=InputRules)
    suite: EvalSuite | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise SpecError("GraphSpec needs a name: the one langgraph.json lists the graph under")

    def compile(self) -> Any:
        """The compiled graph without a checkpointer, named :attr:`name` (what langgraph.json names)."""
        return self.build().compile(name=self.name)
