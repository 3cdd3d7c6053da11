"""``tierflow eval``: run a suite under one or more tier policies, print the table, plot, recommend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["eval_command"]


def eval_command(
    suite: Annotated[str, typer.Argument(help="codebase_qa, triage or routing")],
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help="tier policy (repeatable), or 'all'"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="first N dataset items only")] = None,
    profile: Annotated[
        str | None, typer.Option(help="tier profile (default: openai or local)")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG path (default .tierflow/evals/<suite>-frontier.png)")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="quality tolerance of the recommendation")
    ] = 0.05,
) -> None:
    """Evaluate tier policies on a suite: quality, cost at openai prices, latency, escalations."""
    from tierflow.evals import compare
    from tierflow.evals._runner import resolve_policies
    from tierflow.evals._suites import SUITES
    from tierflow.evals.report import frontier_plot, recommend, render_table

    # Wide enough for the policy table when output is piped (rich would use 80 columns).
    console = Console(width=None if sys.stdout.isatty() else 160)
    if suite not in SUITES:
        raise typer.BadParameter(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    try:
        policies = resolve_policies(policy or ["tiered"])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    _start_local_servers(console, profile)
    from tierflow.evals import progress_bar

    with progress_bar(console) as bar:  # examples done, spend, ETA per policy
        results = compare(suite, policies, limit=limit, profile=profile, progress=bar)
    console.print(render_table(results))
    target = frontier_plot(results, plot or Path(".tierflow") / "evals" / f"{suite}-frontier.png")
    console.print(f"frontier plot: {target}")
    for rec in recommend(results, tolerance=tolerance):
        console.print(rec.evidence, soft_wrap=True)


def _start_local_servers(console: Console, profile: str | None) -> None:
    """Start the llama.cpp tier servers when the profile has local tiers (like `tierflow run`)."""
    from tierflow.config import load_config
    from tierflow.local import ensure_running

    message = ensure_running(load_config(profile, require_keys=False))
    if message:
        console.print(f"[dim]{message}[/dim]")


def _main() -> None:  # pragma: no cover - `python -m tierflow.evals.cli`
    typer.run(eval_command)


if __name__ == "__main__":  # pragma: no cover
    _main()
