"""Verifiers: checks of a subagent's answer that cost less than escalating it.

A verifier's verdict drives a cascade (:mod:`tierflow.nodes.cascade`): an answer it accepts
ends the task on the tier that gave it; one it rejects climbs to the next tier, or, with
``repairs``, is first sent back to the same tier with the reason it was rejected (the failing
test's error, say), so a cheap tier fixes its own answer before a dearer one starts over. Each
kind costs far less than a flagship request:

- ``format``: the answer parses and is not empty (no model call);
- ``agreement``: extra samples of the same request at a sampling temperature, on the same
  tier, must give the same answer (self-consistency; each sample is a recorded request);
- ``tests``: code passes the tests the task states, in a sandboxed subprocess (no model call);
- ``schema``: tool calls name an offered function, with its required arguments, no unknown
  ones, and values of the declared JSON types (no model call).

Example:
    >>> v = Verifier(kind="format", check=lambda task, out: None if out.get("answer") else "empty")
    >>> v.kind, v.samples
    ('format', 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

__all__ = ["Verifier", "Verdict", "schema_problems", "json_type_ok"]

Check = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]


class Verdict(NamedTuple):
    """What a verifier said of one answer: accepted, or the reason it was rejected."""

    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class Verifier:
    """Declaration of a cascade's verifier.

    Attributes:
        kind: ``format``, ``agreement``, ``tests`` or ``schema`` (see the module docstring).
        check: ``(task, output) -> reason | None``: the deterministic part (format, tests,
            schema); a reason rejects the answer before any sample is drawn.
        agree_on: ``output -> value`` compared across samples (``agreement``): e.g. the
            numeric answer, not the reasoning that led to it.
        samples: answers that must agree, the task's own included (``agreement``).
        temperature: sampling temperature of the extra samples.
        repairs: rejected answers sent back to the same tier, with the rejection's reason,
            before the cascade climbs (0: climb on the first rejection).
    """

    kind: str
    check: Check | None = None
    agree_on: Callable[[Mapping[str, Any]], Any] | None = None
    samples: int = 1
    temperature: float = 0.7
    repairs: int = 0

    def __post_init__(self) -> None:
        if self.repairs < 0:
            raise ValueError(f"verifier repairs={self.repairs}: use 0 or more")
        if self.kind not in ("format", "agreement", "tests", "schema"):
            raise ValueError(f"verifier kind {self.kind!r}: use format, agreement, tests or schema")
        if self.kind == "agreement" and (self.agree_on is None or self.samples < 2):
            raise ValueError("an agreement verifier needs agree_on and samples >= 2")

    def settle(self, task: Mapping[str, Any], output: Mapping[str, Any] | None) -> Verdict | None:
        """The verdict of the deterministic part, or None when samples must decide."""
        if output is None:
            return Verdict(False, "no valid answer")
        if self.check is not None:
            reason = self.check(task, output)
            if reason:
                return Verdict(False, reason)
        return None if self.kind == "agreement" else Verdict(True)

    def agree(
        self, first: Mapping[str, Any], others: Sequence[Mapping[str, Any] | None]
    ) -> Verdict:
        """Verdict of ``agreement``: every extra sample gives the first answer's value."""
        assert self.agree_on is not None
        want = self.agree_on(first)
        for i, other in enumerate(others, start=2):
            if other is None:
                return Verdict(False, f"sample {i} gave no valid answer")
            got = self.agree_on(other)
            if got != want:
                return Verdict(False, f"samples disagree: {want!r} vs {got!r}")
        return Verdict(True)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def json_type_ok(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` has the JSON type (and enum) ``schema`` declares (unknown: accepted)."""
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return False
    if kind is None or kind not in _JSON_TYPES:
        return True
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if not isinstance(value, _JSON_TYPES[kind]):
        return False
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        items = cast(Sequence[Any], value)
        return all(json_type_ok(v, schema["items"]) for v in items)
    return True


def schema_problems(
    calls: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why tool ``calls`` do not fit the offered OpenAI ``tools`` dicts, or None when they do.

    Each call is ``{"name": ..., "arguments": {...}}``. Checked: the function exists, required
    parameters are given, no unknown ones, values have the declared types and enums.

    Example:
        >>> tools = [{"type": "function", "function": {"name": "area", "parameters": {
        ...     "type": "object", "properties": {"r": {"type": "number"}}, "required": ["r"]}}}]
        >>> schema_problems([{"name": "area", "arguments": {"r": 2}}], tools) is None
        True
        >>> schema_problems([{"name": "area", "arguments": {"r": "two"}}], tools)
        "area: argument 'r' is not of type number"
    """
    by_name = {t["function"]["name"]: t["function"] for t in tools}
    for call in calls:
        name, args = call.get("name"), call.get("arguments")
        fn = by_name.get(str(name))
        if fn is None:
            return f"no function named {name!r}; offered: {', '.join(sorted(by_name))}"
        if not isinstance(args, Mapping):
            return f"{name}: arguments must be an object"
        params = fn.get("parameters") or {}
        props: Mapping[str, Any] = params.get("properties") or {}
        missing = [p for p in params.get("required") or [] if p not in args]
        if missing:
            return f"{name}: missing required argument {missing[0]!r}"
        unknown = [a for a in args if a not in props]
        if unknown:
            return f"{name}: unknown argument {unknown[0]!r}"
        for arg, value in args.items():
            if not json_type_ok(value, props[arg]):
                return f"{name}: argument {arg!r} is not of type {props[arg].get('type')}"
    return None
