"""Checks: the one contract every check of an answer keeps, and the cascade's verifiers.

A check is a :class:`Check`: ``(input, output, context) -> Verdict``, sync, with no model call
of its own unless it says so. One :class:`Verdict` (accepted or not, why, how sure) comes back
from every kind of check, and :func:`verdict_event` records each one the same way. What the
three arguments are, by where the check is declared:

- ``Subagent.verifier``: the task and the output (models), and the run's ``env``;
- ``Cascade.verifier``'s ``check``: the task and the output (dicts), and the run's ``env``
  (a declared ``(task, output)`` check reads none);
- ``Supervisor.answer_verifier``: the request (text) and the answer (model), and the run's
  state.

A declared function may return a :class:`Verdict` or, as before, a reason (``str``: rejected)
or None (accepted); :func:`as_check` is the one adapter from the latter to the former.

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
    >>> v.settle({}, {"answer": ""})
    Verdict(ok=False, reason='empty', confidence=None)
    >>> as_check(lambda task, out, env: None)({}, {}, {}).ok
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

from tierflow.errors import SpecError
from tierflow.nodes.human import event
from tierflow.protocol import EventKind

__all__ = [
    "Check", "CheckSite", "Verdict", "Verifier", "as_check", "verdict_event", "schema_problems",
    "json_type_ok",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check said of one answer.

    Attributes:
        ok: the answer is accepted.
        reason: why it was rejected (what to fix), or None; an accepted answer may say why too.
        confidence: how sure the check is, in [0, 1], or None when it does not say (the
            deterministic checks); what a trust signal reads.
    """

    ok: bool
    reason: str | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise SpecError(
                f"Verdict confidence={self.confidence!r}: give a number from 0 to 1, or None"
            )

    @classmethod
    def accept(cls, confidence: float | None = None) -> Verdict:
        """An accepted answer."""
        return cls(True, None, confidence)

    @classmethod
    def reject(cls, reason: str, confidence: float | None = None) -> Verdict:
        """A rejected answer, with what is wrong with it."""
        return cls(False, reason, confidence)


class Check(Protocol):
    """The one contract of a check: ``(input, output, context) -> Verdict`` (see the module)."""

    def __call__(self, input: Any, output: Any, context: Mapping[str, Any], /) -> Verdict:
        """The verdict on ``output``, the answer to ``input``, given ``context``."""
        ...


# What a check may be declared as: a Check, or a function giving a reason (rejected) or None.
Said = str | Verdict | None
CheckFn = Callable[[Any, Any, Mapping[str, Any]], Said]


def as_check(fn: CheckFn) -> Check:
    """``fn`` under the one contract: a reason rejects, None (or ``""``) accepts, a Verdict stands.

    The one adapter from the declarations that return ``str | None`` (a subagent's
    ``verifier``, a supervisor's ``answer_verifier``, a cascade verifier's ``check``).
    """

    def check(input: Any, output: Any, context: Mapping[str, Any], /) -> Verdict:
        said = fn(input, output, context)
        if isinstance(said, Verdict):
            return said
        return Verdict.reject(said) if said else Verdict.accept()

    check.__name__ = getattr(fn, "__name__", "check")
    check.__doc__ = getattr(fn, "__doc__", None)
    return check


class CheckSite(StrEnum):
    """Where a recorded check was declared (the ``check`` of a ``verified`` event)."""

    SUBAGENT = "subagent"  # Subagent.verifier, on a task's finished output
    CASCADE = "cascade"  # Cascade.verifier, on one tier's answer
    ANSWER = "answer"  # Supervisor.answer_verifier, on the run's final answer


def verdict_event(
    check: str,
    verdict: Verdict,
    *,
    cost_usd: float = 0.0,
    requests: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    """The ``verified`` timeline event of one check: its outcome and what it cost.

    Every check is recorded in this one shape: ``check`` (a :class:`CheckSite`), ``ok``,
    ``reason``, ``confidence``, ``cost_usd`` and ``requests`` (model requests the check made
    itself, e.g. agreement's samples; their usage records are in ``usage`` as ever), plus the
    ``fields`` of the site (``subagent``, ``tier``, ``task_id``, ``repair``).

    Example:
        >>> e = verdict_event(CheckSite.ANSWER, Verdict.reject("LIMIT is 30"))
        >>> e["kind"], e["check"], e["ok"], e["reason"], e["cost_usd"]
        ('verified', 'answer', False, 'LIMIT is 30', 0.0)
    """
    return event(
        EventKind.VERIFIED,
        check=check,
        ok=verdict.ok,
        reason=verdict.reason,
        confidence=verdict.confidence,
        cost_usd=round(cost_usd, 8),
        requests=requests,
        **fields,
    )


# A cascade verifier's deterministic part, as declared: ``(task, output) -> reason | None``.
TaskCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], Said]


@dataclass(frozen=True)
class Verifier:
    """Declaration of a cascade's verifier.

    Attributes:
        kind: ``format``, ``agreement``, ``tests`` or ``schema`` (see the module docstring).
        check: ``(task, output) -> reason | None`` (or a :class:`Verdict`): the deterministic
            part (format, tests, schema); a rejection stands before any sample is drawn.
        agree_on: ``output -> value`` compared across samples (``agreement``): e.g. the
            numeric answer, not the reasoning that led to it.
        samples: answers that must agree, the task's own included (``agreement``).
        temperature: sampling temperature of the extra samples.
        repairs: rejected answers sent back to the same tier, with the rejection's reason,
            before the cascade climbs (0: climb on the first rejection).
    """

    kind: str
    check: TaskCheck | None = None
    agree_on: Callable[[Mapping[str, Any]], Any] | None = None
    samples: int = 1
    temperature: float = 0.7
    repairs: int = 0

    def __post_init__(self) -> None:
        if self.repairs < 0:
            raise SpecError(f"verifier repairs={self.repairs}: use 0 or more")
        if self.kind not in ("format", "agreement", "tests", "schema"):
            raise SpecError(f"verifier kind {self.kind!r}: use format, agreement, tests or schema")
        if self.kind == "agreement" and (self.agree_on is None or self.samples < 2):
            raise SpecError("an agreement verifier needs agree_on and samples >= 2")

    def settle(
        self,
        task: Mapping[str, Any],
        output: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None = None,
    ) -> Verdict | None:
        """The verdict of the deterministic part, or None when samples must decide."""
        if output is None:
            return Verdict.reject("no valid answer")
        if self.check is not None:
            declared = self.check
            verdict = as_check(lambda t, o, _context: declared(t, o))(task, output, context or {})
            if not verdict.ok:
                return verdict
        return None if self.kind == "agreement" else Verdict.accept()

    def agree(
        self, first: Mapping[str, Any], others: Sequence[Mapping[str, Any] | None]
    ) -> Verdict:
        """Verdict of ``agreement``: every extra sample gives the first answer's value."""
        assert self.agree_on is not None
        want = self.agree_on(first)
        for i, other in enumerate(others, start=2):
            if other is None:
                return Verdict.reject(f"sample {i} gave no valid answer")
            got = self.agree_on(other)
            if got != want:
                return Verdict.reject(f"samples disagree: {want!r} vs {got!r}")
        return Verdict.accept()


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
