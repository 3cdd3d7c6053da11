"""graphs/ is wiring only: every module there is registered, declares specs and builds a graph."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tierflow.registry import graph_names, load_builder
from tierflow.runtime import RunContext
from tierflow.testing import ScriptedChatModel, text_reply, tool_reply

REPO = Path(__file__).resolve().parents[2]
# Each workflow is a package in LangGraph's app-template shape: graph.py wires it, its own
# modules beside it hold its logic.
GRAPH_FILES = sorted((REPO / "graphs").glob("*/graph.py"))
ENTRIES = json.loads((REPO / "langgraph.json").read_text())["graphs"]
# Top-level statements a wiring module may hold: docstring, imports, specs, schemas, build().
WIRING = (ast.Expr, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.ClassDef)


def _logic(tree: ast.Module) -> list[str]:
    """What in a graphs/ module is not wiring: ``file:line what``."""
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == "build":
            continue
        if not isinstance(stmt, WIRING) or (
            isinstance(stmt, ast.Expr) and not isinstance(stmt.value, ast.Constant)
        ):
            found.append(f"{stmt.lineno}: top-level {type(stmt).__name__}")
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                name = getattr(node, "name", "lambda")
                found.append(f"{node.lineno}: function {name}")
    return found


@pytest.mark.parametrize(
    "path",
    GRAPH_FILES,
    ids=lambda p: p.parent.name,
)
def test_graph_modules_define_no_functions_but_build(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert _logic(tree) == [], f"{path} holds logic; move it into a module beside it"
    names = {
        t.id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        for t in stmt.targets
        if isinstance(t, ast.Name)
    }
    builds = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "build"]
    exposed = {
        attr
        for file, _, attr in (v.partition(":") for v in ENTRIES.values())
        if (REPO / file).resolve() == path.resolve()
    }
    assert builds and exposed and exposed <= names, f"{path} must define build() and {exposed}"


def test_the_wiring_check_catches_helpers_and_lambdas() -> None:
    source = "import re\nX = 1\nf = lambda: 1\ndef helper():\n    pass\ndef build():\n    pass\n"
    assert _logic(ast.parse(source)) == ["3: function lambda", "4: top-level FunctionDef"]


def test_every_graph_module_is_registered() -> None:
    files = sorted({v.partition(":")[0] for v in ENTRIES.values()})
    assert files == [f"./{p.relative_to(REPO)}" for p in GRAPH_FILES]
    assert graph_names(REPO / "langgraph.json") == [
        "bfcl", "bfcl_native", "codebase_qa", "gsm8k", "mbpp", "mmlu", "routing", "triage"
    ]  # fmt: skip


def test_tierflow_graphs_lists_routing() -> None:
    from typer.testing import CliRunner

    from tierflow.cli import app

    out = CliRunner().invoke(app, ["graphs"])
    assert out.exit_code == 0, out.output
    assert out.output.split() == [
        "bfcl", "bfcl_native", "codebase_qa", "gsm8k", "mbpp", "mmlu", "routing", "triage"
    ]  # fmt: skip


def test_routing_graph_is_compiled_without_checkpointer() -> None:
    from tierflow.graphs import routing

    assert routing.graph.name == "routing" and routing.graph.checkpointer is None
    builder = load_builder("routing", REPO / "langgraph.json")
    assert set(builder.nodes) == {"begin", "route"}


async def test_routing_graph_picks_a_tier_and_reports_a_bad_reply(
    make_ctx: Callable[..., RunContext], scripted: Callable[..., ScriptedChatModel]
) -> None:
    from tierflow.graphs.routing import RoutingState, graph

    flagship = scripted(
        "flagship",
        [
            tool_reply("TierChoice", {"tier": "mini", "reason": "one field"}, usage=(10, 2)),
            text_reply("mini, I think", usage=(10, 2)),
        ],
    )
    ctx = make_ctx({"flagship": flagship}, profile="openai")
    task: RoutingState = {"task": "extract the order id", "subagent": "extract"}
    good = await graph.ainvoke(task, context=ctx)
    assert (good["choice"], good["error"]) == ("mini", None)
    assert [(r["node"], r["tier"]) for r in good["usage"]] == [("route", "flagship")]
    prompt = str(flagship.requests[0].messages[0].content)
    assert prompt.startswith("You route subagent tasks") and "nano, mini, flagship" in prompt
    bad = await graph.ainvoke(task, context=ctx)
    assert bad["choice"] is None and "no TierChoice call" in bad["error"]
