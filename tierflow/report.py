"""What the CLI prints of a run: its result keys, and usage tables per tier and per node."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from tierflow.config import TierConfig, load_config
from tierflow.usage import as_records, reprice, summarize

__all__ = ["usage_table", "print_usage", "reference_config", "result_keys", "NOT_RESULTS"]

# Keys of a run's values that the CLI prints on their own (status, the answer's problems) or
# in the cost tables (tierflow.state.EngineState: usage, budget, events, run id), and
# per-task results, which the run view shows: the rest of a graph's output_schema is its result.
NOT_RESULTS = frozenset({"results", "status", "answer_problems"})


def _schema_keys(schema: Any) -> list[str]:
    """Keys of a TypedDict, dataclass or pydantic model, in declaration order (bases first)."""
    fields = getattr(schema, "model_fields", None)  # pydantic
    if isinstance(fields, dict):
        return list(fields)
    keys: dict[str, None] = {}
    for cls in reversed(getattr(schema, "__mro__", (schema,))):
        keys.update(dict.fromkeys(inspect.get_annotations(cls)))
    return list(keys)


def result_keys(builder: Any) -> list[str]:
    """The keys of a graph's values that are its result, in the order its schema declares them.

    The graph's ``output_schema`` minus engine bookkeeping. A graph that declares none (LangGraph
    then uses the state schema) gets its state keys minus bookkeeping and minus what the caller
    passed in, when an ``input_schema`` is declared.

    Example:
        >>> from typing_extensions import TypedDict
        >>> from langgraph.graph import StateGraph
        >>> class Out(TypedDict, total=False):
        ...     answer: str
        ...     status: str
        ...     usage: list
        >>> class State(Out, total=False):
        ...     request: str
        >>> result_keys(StateGraph(State, output_schema=Out))
        ['answer']
    """
    from tierflow.state import EngineState

    skip = set(_schema_keys(EngineState)) | NOT_RESULTS
    output = builder.output_schema
    if output is builder.state_schema and builder.input_schema is not builder.state_schema:
        skip |= set(_schema_keys(builder.input_schema))
    return [key for key in _schema_keys(output) if key not in skip]


def reference_config(config: TierConfig) -> TierConfig | None:
    """The profile a free (local) profile is also priced at, e.g. ``openai``."""
    if not config.priced_as:
        return None
    return load_config(config.priced_as, require_keys=False)


def usage_table(records: Iterable[Any], by: str, reference: TierConfig | None = None) -> Table:
    """One row per group (tier, node, ...) plus a total row."""
    recs = as_records(records)
    table = Table(title=f"Usage by {by}", title_justify="left")
    table.add_column(by, justify="left")
    for col in (
        "requests",
        "errors",
        "in tok",
        "cached",
        "out tok",
        "cost $",
        "p50 s",
        "p95 s",
        "escal.",
    ):
        table.add_column(col, justify="right")
    ref_rows = {s.key: s for s in summarize(reprice(recs, reference), by)} if reference else {}
    if reference:
        table.add_column(f"at {reference.profile} $", justify="right")
    for row in summarize(recs, by):
        cells = [
            row.key,
            str(row.requests),
            str(row.errors),
            str(row.input_tokens),
            str(row.cached_tokens),
            str(row.output_tokens),
            f"{row.cost_usd:.6f}",
            f"{row.p50_latency_s:.2f}",
            f"{row.p95_latency_s:.2f}",
            str(row.escalations),
        ]
        if reference:
            cells.append(f"{ref_rows[row.key].cost_usd:.6f}")
        table.add_row(*cells, style="bold" if row.key == "TOTAL" else None)
    return table


def print_usage(console: Console, records: list[Any], config: TierConfig) -> None:
    """Per-tier and per-node tables, with the note on shared local models."""
    reference = reference_config(config)
    console.print(usage_table(records, "tier", reference))
    console.print(usage_table(records, "node", reference))
    for model, tiers in config.shared_models.items():
        console.print(
            f"[dim]note: tiers {', '.join(tiers)} share one model ({model}) in profile "
            f"'{config.profile}'.[/dim]"
        )
    if reference:
        console.print(
            f"[dim]'at {reference.profile} $' = what these tokens would have cost on the "
            f"'{reference.profile}' profile's tiers of the same name.[/dim]"
        )
