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
The contract itself (``Check``, ``Verdict``, ``as_check``, ``verdict_event``) is defined in
:mod:`tierflow.checks` and re-exported here.

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
  ones, and values of the declared JSON types (no model call);
- ``confidence``: the answering request's own token log-probabilities (:mod:`tierflow.trust`)
  give a confidence of the answer's span, kept at or above a calibrated ``threshold`` (no
  model call: 0 extra requests). The log-probabilities are read from the check's context
  under :data:`tierflow.trust.LOGPROBS`; without them (an endpoint that gives none) the answer
  is rejected, so it climbs rather than being trusted blind.

Example:
    >>> v = Verifier(kind="format", check=lambda task, out: None if out.get("answer") else "empty")
    >>> v.kind, v.samples
    ('format', 1)
    >>> v.settle({}, {"answer": ""})
    Verdict(ok=False, reason='empty', confidence=None, repairable=True)
    >>> as_check(lambda task, out, env: None)({}, {}, {}).ok
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The contract lives in the engine (tierflow.checks), so the create_agent middleware keeps it
# too; it is re-exported here, where the node kinds' declarations import it from.
from tierflow.checks import (
    Check,
    CheckFn,
    CheckSite,
    Said,
    Verdict,
    as_check,
    json_type_ok,
    schema_problems,
    verdict_event,
)
from tierflow.errors import SpecError
from tierflow.trust import LOGPROBS

__all__ = [
    "Check", "CheckFn", "CheckSite", "Signal", "Verdict", "Verifier", "as_check", "verdict_event",
    "schema_problems", "json_type_ok",
]  # fmt: skip


# A cascade verifier's deterministic part, as declared: ``(task, output) -> reason | None``.
TaskCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], Said]
# A confidence signal: ``(logprobs, output) -> confidence in [0, 1] | None`` (tierflow.trust).
Signal = Callable[[Any, Mapping[str, Any]], float | None]
_KINDS = ("format", "agreement", "tests", "schema", "confidence")


@dataclass(frozen=True)
class Verifier:
    """Declaration of a cascade's verifier.

    Attributes:
        kind: ``format``, ``agreement``, ``tests``, ``schema`` or ``confidence`` (see the
            module docstring).
        check: ``(task, output) -> reason | None`` (or a :class:`Verdict`): the deterministic
            part (format, tests, schema); a rejection stands before any sample is drawn.
        agree_on: ``output -> value`` compared across samples (``agreement``): e.g. the
            numeric answer, not the reasoning that led to it.
        samples: answers that must agree, the task's own included (``agreement``).
        temperature: sampling temperature of the extra samples.
        repairs: rejected answers sent back to the same tier, with the rejection's reason,
            before the cascade climbs (0: climb on the first rejection).
        signal: ``(logprobs, output) -> confidence | None`` (``confidence``), e.g.
            ``lambda lp, out: letter_confidence(lp, out["answer"])``.
        threshold: the least confidence accepted (``confidence``), chosen by calibration.
    """

    kind: str
    check: TaskCheck | None = None
    agree_on: Callable[[Mapping[str, Any]], Any] | None = None
    samples: int = 1
    temperature: float = 0.7
    repairs: int = 0
    signal: Signal | None = None
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.repairs < 0:
            raise SpecError(f"verifier repairs={self.repairs}: use 0 or more")
        if self.kind not in _KINDS:
            raise SpecError(f"verifier kind {self.kind!r}: use one of {', '.join(_KINDS)}")
        if self.kind == "agreement" and (self.agree_on is None or self.samples < 2):
            raise SpecError("an agreement verifier needs agree_on and samples >= 2")
        if self.kind == "confidence" and (self.signal is None or not 0 <= self.threshold <= 1):
            raise SpecError(
                "a confidence verifier needs signal=(logprobs, output) -> float and a "
                f"threshold from 0 to 1 (got {self.threshold!r})"
            )

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
        if self.kind == "confidence":
            return self.trust(output, (context or {}).get(LOGPROBS))
        return None if self.kind == "agreement" else Verdict.accept()

    def trust(self, output: Mapping[str, Any], logprobs: Any) -> Verdict:
        """Verdict of ``confidence``: the signal's confidence against the threshold.

        Example:
            >>> v = Verifier("confidence", signal=lambda lp, out: lp, threshold=0.8)
            >>> v.trust({}, 0.9), v.trust({}, 0.5).ok, v.trust({}, None).reason
            (Verdict(ok=True, reason=None, confidence=0.9, repairable=True), False, 'no log-probabilities to judge by')
        """
        assert self.signal is not None
        confidence = self.signal(logprobs, output) if logprobs is not None else None
        if confidence is None:
            return Verdict.reject("no log-probabilities to judge by")
        confidence = min(max(float(confidence), 0.0), 1.0)
        if confidence >= self.threshold:
            return Verdict.accept(confidence)
        reason = f"confidence {confidence:.3f} is below {self.threshold:.3f}"
        return Verdict.reject(reason, confidence)

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
