"""The one contract every check of an answer keeps: ``(input, output, context) -> Verdict``.

A check is a :class:`Check`, sync, with no model call of its own unless it says so. One
:class:`Verdict` (accepted or not, why, how sure) comes back from every kind of check, and
:func:`verdict_event` records each one the same way. A declared function may return a
:class:`Verdict` or a reason (``str``: rejected) or None (accepted); :func:`as_check` is the one
adapter from the latter to the former. The node kinds (:mod:`tierflow.nodes.verifier`) and the
``create_agent`` middleware (:mod:`tierflow.middleware`) share it.

Example:
    >>> as_check(lambda request, answer, state: "too short")("q", "a", {})
    Verdict(ok=False, reason='too short', confidence=None, repairable=True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast

from tierflow.errors import SpecError
from tierflow.protocol import EventKind
from tierflow.state import event

__all__ = [
    "Check", "CheckFn", "CheckSite", "Verdict", "as_check", "verdict_event", "schema_problems",
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
        repairable: whether a model's repair can address the rejection. False: no retry can
            make this answer pass (only a person can judge it), so the repairs end and the
            answer stands unverified; a retry would be money spent on the same verdict.
    """

    ok: bool
    reason: str | None = None
    confidence: float | None = None
    repairable: bool = True

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
    def reject(
        cls, reason: str, confidence: float | None = None, *, repairable: bool = True
    ) -> Verdict:
        """A rejected answer, with what is wrong with it (``repairable``: see the class)."""
        return cls(False, reason, confidence, repairable)


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
    AGENT = "agent"  # tierflow.middleware.TierMiddleware(verifier=...), on an agent's reply


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
        **({} if verdict.ok or verdict.repairable else {"repairable": False}),
        cost_usd=round(cost_usd, 8),
        requests=requests,
        **fields,
    )


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
