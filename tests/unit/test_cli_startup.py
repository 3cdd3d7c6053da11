"""`tierflow` starts light: lazy package exports, lazy plugin commands, result keys from schemas."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import StateGraph
from typer.testing import CliRunner
from typing_extensions import TypedDict

import tierflow
from tierflow.cli import app
from tierflow.report import result_keys
from tierflow.state import EngineState

COMMANDS = [
    "run",
    "resume",
    "show",
    "graph",
    "serve",
    "graphs",
    "cache",
    "calibrate",
    "eval",
    "local",
]
HEAVY = ["langchain_core", "langchain_openai", "langgraph", "tierflow.evals", "tierflow.local.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "TERM": "dumb"}


def _tierflow() -> list[str]:
    script = Path(sys.executable).with_name("tierflow")  # the installed console script
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from tierflow.cli import app; app()"]


@pytest.mark.parametrize("name", tierflow.__all__)
def test_each_public_name_resolves_to_its_defining_module(name: str) -> None:
    value = getattr(tierflow, name)
    assert value is getattr(importlib.import_module(tierflow._EXPORTS[name]), name)
    assert name in dir(tierflow)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = tierflow.no_such_name  # type: ignore[attr-defined]


def test_importing_the_cli_loads_neither_langchain_nor_langgraph() -> None:
    code = (
        "import json, sys, tierflow, tierflow.cli; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    )
    assert json.loads(proc.stdout) == []


def test_help_lists_every_command_and_exits_0() -> None:
    proc = subprocess.run([*_tierflow(), "--help"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    listed = re.findall(r"^│ (\w+) ", proc.stdout, re.M)
    assert listed == COMMANDS, proc.stdout


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["eval", "--help"], ["--policy", "--limit", "--profile", "--plot", "--tolerance"]),
        (["local", "--help"], ["up", "down", "status"]),
        (["local", "up", "--help"], ["--profile", "--tier", "--wait-s"]),
    ],
)
def test_plugin_commands_show_their_options_once_loaded(args: list[str], shown: list[str]) -> None:
    result = CliRunner().invoke(app, args, env=_env())
    assert result.exit_code == 0, result.output
    for text in shown:
        assert text in result.output


def test_unknown_command_still_exits_2() -> None:
    result = CliRunner().invoke(app, ["no-such-command"], env=_env())
    assert result.exit_code == 2 and "No such command" in result.output


class _Input(TypedDict, total=False):
    request: str


class _Output(TypedDict, total=False):
    summary: str
    status: str
    results: dict[str, Any]
    usage: list[dict[str, Any]]


class _State(EngineState, _Input, total=False):
    turn: int
    scratch: str
    summary: str
    status: str


def test_result_keys_follow_a_declared_output_schema() -> None:
    assert result_keys(StateGraph(_State, output_schema=_Output)) == ["summary"]


def test_result_keys_fall_back_to_state_minus_input_and_bookkeeping() -> None:
    # Without an output_schema every state key but bookkeeping and the input is a result.
    assert result_keys(StateGraph(_State, input_schema=_Input)) == ["turn", "scratch", "summary"]
    assert result_keys(StateGraph(_State)) == ["request", "turn", "scratch", "summary"]


@pytest.mark.parametrize(
    ("graph", "keys"), [("triage", ["tickets_out"]), ("codebase_qa", ["answer", "plans"])]
)
def test_registered_graphs_print_their_output_schema_less_bookkeeping(
    graph: str, keys: list[str]
) -> None:
    from tierflow.registry import load_builder

    assert result_keys(load_builder(graph)) == keys


def test_unattended_runs_declare_a_budget_policy() -> None:
    from tierflow._cli_input import tier_policy as _policy
    from tierflow.errors import TierflowError

    assert _policy("tiered", unattended=False).budget_action() is None  # ask a human
    assert _policy("tiered", unattended=True).on_budget == "stop"
    assert _policy("tiered", unattended=True, on_budget="cheaper").on_budget == "cheaper"
    with pytest.raises(TierflowError, match="use 'stop' or 'cheaper'"):
        _policy("tiered", unattended=True, on_budget="later")


@pytest.mark.parametrize(
    ("status", "waiting", "code"),
    [
        ("answered", False, 0),
        ("done", False, 0),
        ("budget_exhausted", False, 0),
        ("failed", False, 1),
        ("stopped", False, 1),
        ("unverified", False, 4),
        ("unverified", True, 3),
        ("running", True, 3),
    ],
)
def test_run_and_resume_exit_codes_tell_outcomes_apart(
    status: str, waiting: bool, code: int
) -> None:
    from tierflow._cli_print import exit_code as _exit_code
    from tierflow.runner import Interrupt, RunResult

    pending = [Interrupt("i1", {"kind": "answer_review"})] if waiting else []
    assert _exit_code(RunResult("t", "codebase_qa", {"status": status}, pending)) == code


def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierflow._cli_input import parse_input
    from tierflow.errors import TierflowError

    bad = tmp_path / "tickets.jsonl"
    bad.write_text('{"id": "t1"}\n{"id": \n')
    with pytest.raises(TierflowError, match=r"tickets.jsonl:2: not valid JSON"):
        parse_input("triage", str(bad), None, None)
    with pytest.raises(TierflowError, match="INPUT is empty"):
        parse_input("codebase_qa", "   ", None, None)
    with pytest.raises(TierflowError, match="request is empty"):
        parse_input("codebase_qa", '{"request": " "}', tmp_path, None)
    with pytest.raises(TierflowError, match="does not exist"):
        parse_input("codebase_qa", "Where is X?", tmp_path / "nope", None)
    with pytest.raises(TierflowError, match="20,001 characters, over the limit of 20,000"):
        parse_input("codebase_qa", "x" * 20_001, tmp_path, None)
    monkeypatch.setenv("TIERFLOW_MAX_REQUEST_CHARS", "30000")
    assert len(parse_input("codebase_qa", "x" * 20_001, tmp_path, None)["request"]) == 20_001
    ok = parse_input("codebase_qa", "Where is X?", tmp_path, 0.5)
    assert ok == {
        "request": "Where is X?",
        "env": {"root": str(tmp_path.resolve())},
        "budget_usd": 0.5,
    }


def test_a_repaired_answer_is_not_reported_as_a_failed_check() -> None:
    from tierflow._cli_print import console
    from tierflow._cli_print import report as _report
    from tierflow.config import load_config
    from tierflow.runner import RunResult

    cfg = load_config("openai", require_keys=False)
    first = "the answer does not say what cost_usd does"
    with console.capture() as out:
        _report(
            RunResult("t", "codebase_qa", {"status": "answered", "answer_problems": [first]}), cfg
        )
    assert "earlier answer was sent back" in out.get() and "warning" not in out.get()
    with console.capture() as out:
        _report(
            RunResult("t", "codebase_qa", {"status": "unverified", "answer_problems": [first]}), cfg
        )
    assert "warning: the answer's check failed: the answer does not say" in out.get()


def test_a_user_graph_without_a_spec_keeps_the_implicit_input_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierflow._cli_input import parse_input
    from tierflow.errors import TierflowError

    (tmp_path / "batch_graph.py").write_text(
        "from typing import Any\n"
        "from langgraph.graph import StateGraph\n"
        "from typing_extensions import TypedDict\n"
        "class In(TypedDict, total=False):\n"
        "    items: list[dict[str, Any]]\n    env: dict[str, Any]\n    request: str\n"
        "b = StateGraph(In)\nb.add_node('n', lambda s: {})\nb.set_entry_point('n')\n"
        "graph = b.compile()\n"
    )
    (tmp_path / "langgraph.json").write_text(
        json.dumps({"graphs": {"batch": "./batch_graph.py:graph", "qa": "./batch_graph.py:graph"}})
    )
    (tmp_path / "items.jsonl").write_text('{"id": 1}\n')
    monkeypatch.chdir(tmp_path)
    got = parse_input("batch", "items.jsonl", None, None)
    assert got == {"items": [{"id": 1}], "env": {"root": str(tmp_path.resolve())}}
    assert parse_input("qa", "why?", tmp_path, 0.1)["request"] == "why?"
    with pytest.raises(TierflowError, match="graph 'nope' not found|nope"):
        parse_input("nope", "why?", None, None)
