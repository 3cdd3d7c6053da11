"""What `tierflow` reads: INPUT by the graph's input rules, answers to interrupts, the policy.

A graph's :class:`~tierflow.graphspec.InputRules` come from the ``GraphSpec`` its module
declares (found through langgraph.json, never imported by name); a graph without one gets
the rules its input schema implies (its one list key, ``env``), as before specs existed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tierflow._cli_print import console
from tierflow.errors import InputError
from tierflow.graphspec import InputRules
from tierflow.registry import load_builder, load_spec

if TYPE_CHECKING:
    from tierflow.runner import RunResult
    from tierflow.runtime import TierPolicy

__all__ = ["input_rules", "parse_input", "answers", "tier_policy"]


def input_rules(graph: str) -> InputRules:
    """The input rules ``graph``'s spec declares, else the ones its input schema implies."""
    spec = load_spec(graph)
    if spec is not None:
        return spec.inputs
    return InputRules.from_schema(load_builder(graph).input_schema)


def _read_json_file(path: Path) -> Any:
    """A .json or .jsonl file's data; a malformed line is named by file and line number."""
    raw = path.read_text()
    if path.suffix != ".jsonl":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    items = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); each line "
                "of a .jsonl file is one JSON object"
            ) from None
    return items


def _read(graph: str, text: str) -> tuple[Any, InputRules | None]:
    """INPUT's data, and the graph's rules when reading it needed them (plain text)."""
    path = Path(text)
    if len(text) < 4096 and path.suffix in (".json", ".jsonl") and path.is_file():
        return _read_json_file(path), None
    if not text.strip():
        raise InputError("INPUT is empty: give the question or request to run")
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text), None
        except json.JSONDecodeError as exc:
            raise InputError(f"INPUT looks like JSON but is not valid: {exc}") from exc
    rules = input_rules(graph)
    return {rules.text_key: text}, rules


def parse_input(graph: str, text: str, root: Path | None, budget: float | None) -> dict[str, Any]:
    """INPUT is a JSON object, a .json/.jsonl file, or plain text (the request)."""
    data, rules = _read(graph, text)
    if isinstance(data, list):
        rules = input_rules(graph)
        if rules.list_key is None:
            raise InputError(
                f"graph '{graph}' does not take a list input; pass a JSON object instead"
            )
        data = {rules.list_key: data}
    if not isinstance(data, dict):
        raise InputError("INPUT must be a JSON object, a list of items, or plain text")
    rules = rules or input_rules(graph)
    _check_request(data.get(rules.text_key))
    if rules.root_key and rules.root_key not in data:
        data[rules.root_key] = {"root": _root(root)}
    if budget is not None:
        if budget <= 0:
            raise InputError("--budget-usd must be positive")
        data["budget_usd"] = budget
    return data


def _check_request(request: Any) -> None:
    if not isinstance(request, str):
        return
    from tierflow.config import Settings

    limit = Settings().max_request_chars
    if not request.strip():
        raise InputError("the request is empty: give the question or request to run")
    if len(request) > limit:
        raise InputError(
            f"the request is {len(request):,} characters, over the limit of {limit:,}: "
            "shorten it (put long material in files under --root), or raise "
            "TIERFLOW_MAX_REQUEST_CHARS"
        )


def _root(root: Path | None) -> str:
    base = (root or Path.cwd()).expanduser()
    if not base.is_dir():
        problem = "does not exist" if not base.exists() else "is not a folder"
        raise InputError(f"--root {str(root)!r} {problem}: pass the source tree to ask about")
    return str(base.resolve())


def answers(result: RunResult, answer: str | None, answer_for: list[str]) -> dict[str, Any]:
    """Interrupt id -> answer, from --answer, --answer-for, or a prompt on a terminal."""
    found: dict[str, Any] = {}
    if answer is not None:
        value = _json_value(answer)
        found = {i.id: value for i in result.interrupts}
    for item in answer_for:
        key, _, raw = item.partition("=")
        if key not in {i.id for i in result.interrupts}:
            raise InputError(f"no pending interrupt with id '{key}'")
        found[key] = _json_value(raw)
    if not found and result.interrupts and sys.stdin.isatty():
        for intr in result.interrupts:
            console.print_json(json.dumps(intr.value, default=str))
            found[intr.id] = _json_value(typer.prompt('answer (e.g. {"action": "approve"})'))
    return found


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word such as approve


def tier_policy(name: str, unattended: bool, on_budget: str | None = None) -> TierPolicy:
    """The named tier policy, made unattended and given its budget action as asked."""
    from tierflow.runtime import POLICIES

    if name not in POLICIES:
        raise InputError(f"unknown policy '{name}'; use one of {', '.join(POLICIES)}")
    if on_budget not in (None, "stop", "cheaper"):
        raise InputError(f"--on-budget {on_budget!r}: use 'stop' or 'cheaper'")
    base = POLICIES[name]
    human = base.human and not unattended
    # Unattended runs never wait at the budget gate: they stop (or step down) as declared.
    declared = on_budget or (None if human else "stop")
    return dataclasses.replace(base, human=human, on_budget=declared)
