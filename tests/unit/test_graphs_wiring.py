"""graphs/ is wiring only: every module there is registered, declares specs and builds a graph.

A graph is declared once (its ``GraphSpec``): langgraph.json, the CLI's input rules, the eval
suites and the scripted oracles are checked against the specs here, so adding a graph needs no
edit to this file.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tierflow.graphspec import EvalSuite, GraphSpec, InputRules
from tierflow.registry import (
    graph_names,
    graph_specs,
    load_builder,
    load_spec,
    registry_problems,
)
from tierflow.runtime import RunContext
from tierflow.testing import ScriptedChatModel, text_reply, tool_reply

REPO = Path(__file__).resolve().parents[2]
# Each workflow is a package in LangGraph's app-template shape: graph.py wires it, its own
# modules beside it hold its logic.
GRAPH_FILES = sorted((REPO / "graphs").glob("*/graph.py"))
REGISTRY = REPO / "langgraph.json"
ENTRIES = json.loads(REGISTRY.read_text())["graphs"]
SPECS = graph_specs(REGISTRY)
# The project's own graphs; more may be added without editing this list.
OURS = {"bfcl", "bfcl_native", "codebase_qa", "gsm8k", "mbpp", "mmlu", "routing", "triage"}
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
    assert graph_names(REGISTRY) == sorted(SPECS) and OURS <= set(SPECS)


def test_langgraph_json_lists_exactly_the_specs_graphs() -> None:
    assert registry_problems(REGISTRY) == [], "fix langgraph.json as each line says"
    for name, entry in ENTRIES.items():
        file, _, attr = entry.partition(":")
        module = importlib.import_module(".".join(("tierflow", *Path(file).with_suffix("").parts)))
        assert getattr(module, attr).name == name, f"{entry} is not the graph of spec {name!r}"


def test_registry_check_says_which_line_to_add(tmp_path: Path) -> None:
    package = tmp_path / "graphs" / "echo_check"
    package.mkdir(parents=True)
    (package / "graph.py").write_text(
        "from langgraph.graph import StateGraph\n"
        "from typing_extensions import TypedDict\n"
        "from tierflow.graphspec import GraphSpec\n"
        "class S(TypedDict):\n    request: str\n"
        "def build():\n"
        "    b = StateGraph(S)\n    b.add_node('echo', lambda state: {})\n"
        "    b.set_entry_point('echo')\n    return b\n"
        "SPEC = GraphSpec(name='echo_check', build=build)\n"
        "echo = SPEC.compile()\n"
    )
    registry = tmp_path / "langgraph.json"
    registry.write_text(json.dumps({"graphs": {}}))
    (problem,) = registry_problems(registry)
    assert 'add "echo_check": "./graphs/echo_check/graph.py:echo"' in problem
    registry.write_text(json.dumps({"graphs": {"echo_check": "./graphs/echo_check/graph.py:echo"}}))
    assert registry_problems(registry) == []
    assert load_spec("echo_check", registry) is load_spec("echo_check", registry)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_declared_input_keys_are_in_the_input_schema(name: str) -> None:
    rules = SPECS[name].inputs
    keys = set(getattr(load_builder(name, REGISTRY).input_schema, "__annotations__", {}))
    declared = {k for k in (rules.list_key, rules.root_key) if k is not None}
    assert declared <= keys, f"{name}'s InputRules name keys its input schema lacks"


def test_a_graph_without_a_spec_gets_the_rules_its_schema_implies() -> None:
    from typing import Any

    from typing_extensions import TypedDict

    class Batch(TypedDict, total=False):
        items: list[dict[str, Any]]
        env: dict[str, Any]

    assert InputRules.from_schema(Batch) == InputRules(list_key="items", root_key="env")
    assert InputRules.from_schema(None) == InputRules()


def test_every_suite_and_oracle_comes_from_a_spec() -> None:
    from tierflow.evals import SUITES
    from tierflow.evals._bench_suites import BENCHMARKS
    from tierflow.evals._suites import DATA_DIR
    from tierflow.evals.scripted import ORACLE_BENCHMARKS, models_for

    with_suite = {n: s.suite for n, s in SPECS.items() if s.suite is not None}
    assert list(SUITES) == list(with_suite) and {"triage", "gsm8k"} <= set(SUITES)
    for name, declared in with_suite.items():
        suite = SUITES[name]
        assert (suite.name, suite.graph, suite.benchmark) == (name, name, declared.benchmark)
        if declared.benchmark is None:
            assert (DATA_DIR / declared.dataset).is_file(), f"{name}: no {declared.dataset}"
            assert suite.score is declared.score and suite.oracle is declared.oracle
        else:  # evals reads, scores and scripts the benchmark the spec names
            assert declared.benchmark in BENCHMARKS and declared.benchmark in ORACLE_BENCHMARKS
        assert set(models_for(name)) == {"nano", "mini", "flagship"}


def test_a_suite_is_declared_whole() -> None:
    from tierflow.errors import SpecError

    with pytest.raises(SpecError, match="needs dataset="):
        EvalSuite(dataset="x.jsonl")
    with pytest.raises(SpecError, match="drop dataset"):
        EvalSuite(benchmark="gsm8k", dataset="x.jsonl")
    with pytest.raises(SpecError, match="needs a name"):
        GraphSpec(name=" ", build=dict)


def test_tierflow_graphs_lists_routing() -> None:
    from typer.testing import CliRunner

    from tierflow.cli import app

    out = CliRunner().invoke(app, ["graphs"])
    assert out.exit_code == 0, out.output
    assert out.output.split() == graph_names() and "routing" in out.output.split()
    check = CliRunner().invoke(app, ["graphs", "--check"])
    assert check.exit_code == 0, check.output
    assert f"langgraph.json lists every GraphSpec ({len(ENTRIES)} graphs)" in check.output


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
