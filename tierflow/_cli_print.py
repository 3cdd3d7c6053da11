"""What `tierflow` prints: live progress, the result and its cost tables, resume hints, exit codes."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from tierflow._failures import unreachable_fix, unreached_endpoints
from tierflow.errors import TierflowError
from tierflow.protocol import InterruptKind, RunStatus, StreamEvent
from tierflow.registry import load_builder

if TYPE_CHECKING:
    from tierflow.config import TierConfig
    from tierflow.runner import RunResult

__all__ = [
    "console",
    "fail",
    "on_event",
    "report",
    "exit_code",
    "EXIT_FAILED",
    "EXIT_UNREACHABLE",
    "EXIT_WAITING",
    "EXIT_UNVERIFIED",
]

# Wide enough for the cost tables when output is piped (rich would fall back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 160)

# Exit codes of `run` and `resume`, so scripts can tell outcomes apart (bad input is 2).
EXIT_FAILED = 1  # the run ended failed or stopped
EXIT_UNREACHABLE = 2  # no request of the run reached a provider: a config (or server) problem
EXIT_WAITING = 3  # the run waits for a human: answer with `tierflow resume`
EXIT_UNVERIFIED = 4  # an answer exists but its claims could not be checked against the source


def exit_code(result: RunResult) -> int:
    """Exit code: 0 finished, 1 failed, 2 no provider reached, 3 waiting, 4 unverified."""
    status = str(result.values.get("status") or "")
    if _unreached(result.values):
        return EXIT_UNREACHABLE
    if result.interrupts:
        return EXIT_WAITING
    if status in (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.REJECTED):
        return EXIT_FAILED
    return EXIT_UNVERIFIED if status == RunStatus.UNVERIFIED else 0


def _unreached(values: dict[str, Any]) -> dict[str, list[str]] | None:
    """Endpoint -> tiers when no request of this run (the thread's last) ever connected."""
    run_id = values.get("run_id")
    records = [r for r in values.get("usage") or [] if not run_id or r.get("run_id") == run_id]
    return unreached_endpoints(records)


def unreachable_message(values: dict[str, Any]) -> str | None:
    """What to fix when no request of the run reached a provider, else None."""
    unreached = _unreached(values)
    if not unreached:
        return None
    named = "; ".join(
        f"{url} (tier{'s' if len(tiers) > 1 else ''} {', '.join(tiers)}) could not be "
        f"reached: {unreachable_fix(tiers[0], url)}"
        for url, tiers in unreached.items()
    )
    return f"no request of this run reached a provider: {named}"


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as the error it is and exit 2 (bad input or config)."""
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


def on_event(event: dict[str, Any]) -> None:
    """One line of live progress per model call or retry."""
    kind = event.get("event")
    if kind == StreamEvent.MODEL_CALL:
        who = event.get("subagent") or event.get("node")
        console.print(
            f"  [cyan]{who:<10}[/cyan] [magenta]{event['tier']:<8}[/magenta] {event['model']:<28} "
            f"{event['latency_s']:6.2f}s {event['tokens']:6d} tok  ${event['cost_usd']:.6f}  "
            f"(spent ${event['spent_usd']:.6f}{_of_budget(event)})"
        )
    elif kind == StreamEvent.MODEL_ERROR:
        where = escape(f"{event.get('node')} [{event.get('tier')}]")
        console.print(f"  [yellow]retry[/yellow] {where}: {escape(str(event.get('error')))}")


def _of_budget(event: dict[str, Any]) -> str:
    budget = event.get("budget_usd")
    if not budget:
        return ""
    return f" of ${budget:.4f}, {min(1.0, event['spent_usd'] / budget):.0%}"


_RESUME_EXAMPLES: dict[str, tuple[str, str]] = {
    InterruptKind.BUDGET: (
        '{"action": "raise", "budget_usd": 1.0}',
        "raise (with budget_usd), cheaper, stop",
    ),
}
_REVIEW_EXAMPLE = ('{"action": "approve"}', "approve, edit (with value), reject")


def _resume_hints(result: RunResult) -> list[str]:
    """An example resume command that answers every pending interrupt with a valid option."""
    if not result.interrupts:
        return []
    answers, options = [], {}
    for intr in result.interrupts:
        kind = intr.value.get("kind") if isinstance(intr.value, dict) else None
        example, opts = _RESUME_EXAMPLES.get(str(kind), _REVIEW_EXAMPLE)
        answers.append(f"--answer-for {intr.id}='{example}'")
        options[str(kind)] = opts
    hints = [f"resume with: tierflow resume {result.thread_id} {' '.join(answers)}"]
    hints += [f"  {kind} options: {opts}" for kind, opts in sorted(options.items())]
    return hints


# Interrupt fields kept in the payload for programs but too long to print.
_VERBOSE = ("result_schema", "resume_with")


def report(result: RunResult, cfg: TierConfig) -> None:
    """The result's keys, status, route, answer checks, pending interrupts and cost tables."""
    from tierflow.report import print_usage, result_keys

    values = result.values
    try:
        keys = result_keys(load_builder(result.graph))
    except TierflowError:  # a graph the remote server has and this project does not
        keys = [k for k in values if k not in ("usage", "events", "status", "run_id")]
    for key in keys:
        if values.get(key):
            console.rule(key)
            console.print_json(json.dumps(values[key], default=str))
    if values.get("status"):
        console.print(f"status: [bold]{values['status']}[/bold]")
    if values.get("route"):  # a routed graph: which tier it started on, and by what calibration
        route = values["route"]
        console.print(f"routed to {route.get('tier')} by policy {route.get('policy')} "
                      f"(calibration: {values.get('calibration') or 'none'})")  # fmt: skip
    _print_problems(values)
    for intr in result.interrupts:
        console.rule(f"waiting for a human (interrupt {intr.id})")
        shown = (
            {k: v for k, v in intr.value.items() if k not in _VERBOSE}
            if isinstance(intr.value, dict)
            else intr.value
        )
        console.print_json(json.dumps(shown, default=str))
    for hint in _resume_hints(result):
        console.print(escape(hint))
    print_usage(console, values.get("usage") or [], cfg)
    console.print(f"thread: [bold]{result.thread_id}[/bold]")
    unreachable = unreachable_message(values)
    if unreachable:
        console.print(f"[red]error:[/red] {escape(unreachable)}")


def _print_problems(values: dict[str, Any]) -> None:
    problems = values.get("answer_problems") or []
    if problems and values.get("status") == RunStatus.ANSWERED:
        # Problems of an earlier attempt: the answer shown was repaired (or a human decided).
        console.print(f"[dim]an earlier answer was sent back: {escape(problems[0])}[/dim]")
    else:
        for problem in problems:
            console.print(f"[yellow]warning:[/yellow] the answer's check failed: {escape(problem)}")
