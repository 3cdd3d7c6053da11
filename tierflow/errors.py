"""The exception tree: every tierflow error is a TierflowError and says what to fix."""

from __future__ import annotations

__all__ = [
    "TierflowError",
    "ConfigError",
    "ModelCallError",
    "GraphNotFoundError",
]


class TierflowError(Exception):
    """Root of all tierflow errors."""


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

    def __init__(self, tier: str, model: str, cause: BaseException) -> None:
        self.tier = tier
        self.model = model
        self.cause = cause
        self.records: list = []  # usage records of the failed attempts, to keep in state
        super().__init__(f"tier '{tier}' ({model}) failed: {type(cause).__name__}: {cause}")


class GraphNotFoundError(TierflowError):
    """A graph name is not registered in langgraph.json."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"no graph named '{name}'. Known graphs: {', '.join(known) or '(none)'}; "
            "add it to langgraph.json under 'graphs'."
        )
