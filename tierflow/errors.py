"""The exception tree: every tierflow error is a TierflowError and says what to fix."""

from __future__ import annotations

from tierflow._failures import failure_cause, unreachable_fix
from tierflow.protocol import FailureCause

__all__ = [
    "TierflowError",
    "ConfigError",
    "ModelCallError",
    "GraphNotFoundError",
    "CircuitOpenError",
    "SpecError",
    "InputError",
]


class TierflowError(Exception):
    """Root of all tierflow errors."""


class SpecError(TierflowError, ValueError):
    """A declaration in code is invalid: a graph, node, subagent, verifier, policy or suite.

    Raised when the declaration is made (import or build time), before any model call; the
    message names the declaration, the bad value and what to write instead. Also a
    ``ValueError``, as these errors were before the tree had them.
    """


class InputError(TierflowError, ValueError):
    """What a run or an eval was given is invalid: its input, a dataset item, a split, a limit.

    The message names the value and what to pass instead. Also a ``ValueError``.
    """


class ConfigError(TierflowError):
    """A tier or profile declaration is invalid.

    Attributes:
        field: dotted path of the offending field, e.g. ``tiers.mini.price.output``.
        fix: what to change.
    """

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"config field '{field}': {problem}. Fix: {fix}")


class ModelCallError(TierflowError):
    """A model request failed after its retries."""

    def __init__(
        self, tier: str, model: str, cause: BaseException, endpoint: str | None = None
    ) -> None:
        self.tier = tier
        self.model = model
        self.cause = cause
        self.endpoint = endpoint
        self.records: list = []  # usage records of the failed attempts, to keep in state
        text = f"tier '{tier}' ({model}) failed: {type(cause).__name__}: {cause}"
        if endpoint and failure_cause(cause) is FailureCause.NEVER_SENT:
            text += f" (could not reach {endpoint}; {unreachable_fix(tier, endpoint)})"
        super().__init__(text)


class CircuitOpenError(TierflowError):
    """An endpoint is skipped: its circuit breaker opened after consecutive failures."""

    def __init__(self, endpoint: str, model: str) -> None:
        self.endpoint, self.model = endpoint, model
        super().__init__(
            f"{endpoint} ({model}) is skipped: its last calls failed in a row (circuit breaker "
            "open); it is probed again after the tier's breaker_cooldown_s"
        )


class GraphNotFoundError(TierflowError):
    """A graph name is not registered in langgraph.json."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"no graph named '{name}'. Known graphs: {', '.join(known) or '(none)'}; "
            "add it to langgraph.json under 'graphs'."
        )
