"""The exception tree: every tierflow error is a TierflowError and says what to fix."""

from __future__ import annotations

__all__ = [
    "TierflowError",
    "ConfigError",
    "BudgetExceededError",
    "ModelCallError",
    "OutputValidationError",
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


class BudgetExceededError(TierflowError):
    """A model call was refused because it could cross the run's budget."""

    def __init__(self, *, budget_usd: float, spent_usd: float, estimate_usd: float) -> None:
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        super().__init__(
            f"call refused: spent ${spent_usd:.6f} + estimated ${estimate_usd:.6f} would exceed "
            f"the budget of ${budget_usd:.6f}. Raise --budget-usd or use a cheaper tier."
        )


class ModelCallError(TierflowError):
    """A model request failed after its retries."""

    def __init__(self, tier: str, model: str, cause: BaseException) -> None:
        self.tier = tier
        self.model = model
        self.cause = cause
        self.records: list = []  # usage records of the failed attempts, to keep in state
        super().__init__(f"tier '{tier}' ({model}) failed: {type(cause).__name__}: {cause}")


class OutputValidationError(TierflowError):
    """A model answer did not match the required schema after the allowed repairs."""

    def __init__(self, schema: str, detail: str) -> None:
        self.schema = schema
        self.detail = detail
        super().__init__(f"model output does not match {schema}: {detail}")


class GraphNotFoundError(TierflowError):
    """A graph name is not registered in langgraph.json."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"no graph named '{name}'. Known graphs: {', '.join(known) or '(none)'}; "
            "add it to langgraph.json under 'graphs'."
        )
