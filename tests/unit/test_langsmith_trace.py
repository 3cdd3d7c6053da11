"""LangSmith tracing of a codebase_qa run, recorded by a local stand-in for the LangSmith API."""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import langsmith.run_trees
import langsmith.utils
import pytest
from langchain_core.tracers.langchain import wait_for_all_tracers
from langgraph.types import RetryPolicy

from tierflow.config import load_config
from tierflow.demo import DEMO_PROFILE, demo_models, demo_question, find_target
from tierflow.registry import load_builder
from tierflow.runner import Runner
from tierflow.runtime import RunContext
from tierflow.testing import free_port
from tierflow.tracing import graph_run_config, price_metadata

# The demo models script codebase_qa as shipped (draft on mini, no second planning turn).
pytestmark = pytest.mark.shipped_codebase_qa

ROOT = Path(__file__).resolve().parents[2] / "tools"
REPO = Path(__file__).resolve().parents[2]

# Everything the client's background thread reads from GET /info (langsmith/_internal/
# _background_thread.py): without batch_ingest_config the tracing thread crashes.
INFO = {
    "version": "0.10.0",
    "license_expiration_time": None,
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
    "instance_flags": {"zstd_compression_enabled": False},
}


class Recorder(ThreadingHTTPServer):
    """Answers /info and keeps every run posted or patched, by id."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.runs: dict[str, dict[str, Any]] = {}
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def merge(self, run_id: str, fields: dict[str, Any]) -> None:
        with self.lock:
            self.runs.setdefault(run_id, {}).update(fields)


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(f"GET {self.path}")
        self._reply(200, INFO if self.path.rstrip("/").endswith("/info") else {})

    def do_PATCH(self) -> None:  # noqa: N802
        body = self._body()
        self.server.paths.append(f"PATCH {self.path}")
        self.server.merge(self.path.rstrip("/").rsplit("/", 1)[-1], json.loads(body or b"{}"))
        self._reply(200, {})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        path = self.path.split("?")[0].rstrip("/")
        self.server.paths.append(f"POST {path}")
        if path.endswith("/runs/multipart"):
            self._multipart(body)
        elif path.endswith("/runs/batch"):
            batch = json.loads(body)
            for run in [*batch.get("post", []), *batch.get("patch", [])]:
                self.server.merge(str(run["id"]), run)
        elif path.endswith("/runs"):
            run = json.loads(body)
            self.server.merge(str(run["id"]), run)
        self._reply(200, {})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _multipart(self, body: bytes) -> None:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = json.loads(part.get_payload(decode=True) or b"null")
            kind, _, rest = name.partition(".")  # post.<id>[.inputs|.outputs|.extra|...]
            run_id, _, field = rest.partition(".")
            if kind not in ("post", "patch"):
                continue
            self.server.merge(run_id, {field: payload} if field else payload)


def _clear_langsmith_caches() -> None:
    langsmith.utils.get_env_var.cache_clear()
    langsmith.utils.get_tracer_project.cache_clear()


def serve_langsmith(
    server: Recorder, monkeypatch: pytest.MonkeyPatch, tracing: bool = True
) -> Iterator[Any]:
    """Serve ``server`` and point LangSmith's client at it (fixture body; yields the server)."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "true" if tracing else "false")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", server.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "test")
    monkeypatch.setenv("LANGSMITH_PROJECT", "tierflow-tests")
    # The client and env lookups are cached per process; start from a client for this server.
    monkeypatch.setattr(langsmith.run_trees, "_CLIENT", None)
    _clear_langsmith_caches()
    try:
        yield server
    finally:
        wait_for_all_tracers()
        _clear_langsmith_caches()
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    yield from serve_langsmith(Recorder(), monkeypatch)


async def _demo_run(tmp_path: Path) -> Any:
    models = demo_models(ROOT)
    ctx = RunContext(
        profile=DEMO_PROFILE,
        models=models,
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,  # the scripted search does the work
    )
    result = await Runner(tmp_path / "data", context=ctx).run(
        "codebase_qa",
        {
            "request": demo_question(find_target(ROOT)),
            "env": {"root": str(ROOT)},
            "budget_usd": 0.5,
        },
    )
    for model in models.values():
        model.assert_complete()
    return result


def _wait_for_runs(server: Recorder, wanted: int, timeout_s: float = 15.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        wait_for_all_tracers()
        with server.lock:
            done = {k: dict(v) for k, v in server.runs.items() if v.get("end_time")}
            llm = [r for r in done.values() if r.get("run_type") == "llm"]
        if len(llm) >= wanted or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


def _chain(runs: dict[str, dict], run: dict) -> list[str]:
    names = []
    while run.get("parent_run_id"):
        run = runs[str(run["parent_run_id"])]
        names.append(run["name"])
    return names


async def test_trace_tree_and_tierflow_metadata(recorder: Recorder, tmp_path: Path) -> None:
    result = await _demo_run(tmp_path)
    runs = _wait_for_runs(recorder, wanted=5)
    assert "GET /info" in recorder.paths
    llm = [r for r in runs.values() if r.get("run_type") == "llm"]
    assert len(llm) == 5, recorder.paths

    roots = [r for r in runs.values() if not r.get("parent_run_id")]
    assert len(roots) == 1
    root = roots[0]
    for run in runs.values():  # one trace; dotted_order nests every run under its parent
        assert str(run["trace_id"]) == str(root["id"])
        if run.get("parent_run_id"):
            parent = runs[str(run["parent_run_id"])]
            assert run["dotted_order"].startswith(parent["dotted_order"] + ".")

    by_node: dict[str, list[dict]] = {}
    for run in llm:
        meta = run["extra"]["metadata"]
        by_node.setdefault(meta["tierflow_node"], []).append(run)
        for key in (
            "tierflow_tier",
            "tierflow_model",
            "tierflow_node",
            "tierflow_subagent",
            "tierflow_budget_remaining_usd",
            "tierflow_escalation_reason",
        ):
            assert key in meta, (key, meta)
        assert f"tier:{meta['tierflow_tier']}" in run["tags"]
        assert f"node:{meta['tierflow_node']}" in run["tags"]
        assert meta["thread_id"] == result.thread_id  # LangGraph adds the thread to metadata
        assert (
            run["name"] == f"{meta['tierflow_subagent'] or meta['tierflow_node']} "
            f"[{meta['tierflow_tier']}]"
        )
    assert sorted(by_node) == ["answer", "search", "supervisor"]

    search = by_node["search"]
    assert [
        r["extra"]["metadata"]["tierflow_tier"]
        for r in sorted(search, key=lambda r: r["dotted_order"])
    ] == ["mini", "mini", "flagship"]
    escalated = [r for r in search if r["extra"]["metadata"]["tierflow_tier"] == "flagship"][0]
    assert escalated["extra"]["metadata"]["tierflow_escalation_reason"] == "verifier_rejected"
    assert "subagent:search" in escalated["tags"]
    assert escalated["extra"]["metadata"]["tierflow_model"] == "demo-flagship"
    assert 0 < escalated["extra"]["metadata"]["tierflow_budget_remaining_usd"] < 0.5

    # root graph -> subagent node (search) -> its step (a LangGraph task) -> the model call;
    # the supervisor's Send makes the subagent a sibling of the supervisor node, not its child.
    chain = _chain(runs, escalated)
    assert chain == ["step", "search", root["name"]], chain
    assert chain[-1] == root["name"]
    supervisor_call = by_node["supervisor"][0]
    assert _chain(runs, supervisor_call)[:1] == ["supervisor"]
    # the model call's usage is on its outputs, so LangSmith can price it
    usage = escalated["outputs"]["generations"][0][0]["message"]["kwargs"]["usage_metadata"]
    assert usage["input_tokens"] == 900 and usage["output_tokens"] == 60


async def test_graph_run_config_names_the_trace(recorder: Recorder) -> None:
    models = demo_models(ROOT)
    ctx = RunContext(
        profile=DEMO_PROFILE,
        models=models,
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,  # the scripted search does the work
    )
    compiled = load_builder("codebase_qa").compile()
    config = graph_run_config(
        "codebase_qa", "thread-42", {"configurable": {"thread_id": "thread-42"}, "tags": ["mine"]}
    )
    question = demo_question(find_target(ROOT))
    out = await compiled.ainvoke(
        {"request": question, "env": {"root": str(ROOT)}}, config, context=ctx
    )
    assert out["status"] == "answered"
    runs = _wait_for_runs(recorder, wanted=5)
    root = next(r for r in runs.values() if not r.get("parent_run_id"))
    assert root["name"] == "codebase_qa"
    assert {"graph:codebase_qa", "mine"} <= set(root["tags"])
    llm = [r for r in runs.values() if r.get("run_type") == "llm"]
    assert len(llm) == 5
    for run in llm:  # run-level metadata is inherited by every model call
        meta = run["extra"]["metadata"]
        assert meta["tierflow_graph"] == "codebase_qa"
        assert meta["tierflow_thread_id"] == "thread-42"


def test_price_metadata() -> None:
    spec = load_config("openai", require_keys=False).tier("mini")
    assert price_metadata(spec) == {
        "tierflow_price_input_usd_per_mtok": 0.75,
        "tierflow_price_cached_input_usd_per_mtok": 0.075,
        "tierflow_price_output_usd_per_mtok": 4.5,
    }


SCRIPT = textwrap.dedent("""
    import asyncio, sys, tempfile
    from pathlib import Path
    from langgraph.types import RetryPolicy
    from tierflow.demo import DEMO_PROFILE, demo_models, demo_question, find_target
    from tierflow.runner import Runner
    from tierflow.runtime import RunContext

    root = Path(sys.argv[1])
    ctx = RunContext(profile=DEMO_PROFILE, models=demo_models(root),
                     retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
                     shortcuts=False)
    result = asyncio.run(Runner(tempfile.mkdtemp(), context=ctx).run(
        "codebase_qa", {"request": demo_question(find_target(root)), "env": {"root": str(root)}}))
    print("STATUS", result.values["status"], flush=True)
""")


@pytest.mark.parametrize("daemon", ["true", None])
def test_unreachable_endpoint_neither_fails_nor_hangs(daemon: str | None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    env.update(
        LANGSMITH_TRACING="true",
        LANGSMITH_API_KEY="test",
        LANGSMITH_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    if daemon:
        env["LANGSMITH_USE_DAEMON"] = daemon
    # A hang (an endpoint that never answers) costs minutes; the client gives up on a closed
    # port after ~12 s. No tighter wall-clock bound: it would fail on a loaded machine.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "STATUS answered" in done.stdout


async def test_model_runs_carry_tierflow_costs_for_langsmith(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real ChatOpenAI calls (to a stand-in server): each LLM run's usage_metadata has the
    input/output/total cost LangSmith reads, equal to the run's usage records."""
    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import StandIn, standin_context

    monkeypatch.setenv("STAND_IN_KEY", "sk-stand-in")
    suite = SUITES["codebase_qa"]
    with StandIn(responder=oracle_responder(suite.name)) as server:
        retry = RetryPolicy(initial_interval=0, jitter=False, max_attempts=1)
        ctx = standin_context(tmp_path, "priced", server.base_url, retry, timeout_s=5.0)
        item = load_items(suite.name)[0]
        result = await Runner(tmp_path / "data", context=ctx).run(
            suite.graph, {**suite.make_input(item), "budget_usd": 0.5}
        )
    usage = result.values["usage"]
    runs = _wait_for_runs(recorder, wanted=len(usage))
    llm = [r for r in runs.values() if r.get("run_type") == "llm"]
    assert len(llm) == len(usage) >= 3
    traced = sorted(
        r["outputs"]["generations"][0][0]["message"]["kwargs"]["usage_metadata"]["total_cost"]
        for r in llm
    )
    assert traced == pytest.approx(sorted(rec["cost_usd"] for rec in usage), abs=1e-9)
    assert all(cost > 0 for cost in traced)
    first = llm[0]["outputs"]["generations"][0][0]["message"]["kwargs"]["usage_metadata"]
    assert first["total_cost"] == pytest.approx(first["input_cost"] + first["output_cost"])
    # Serialized under langchain-openai's class, as LangSmith expects.
    assert llm[0]["serialized"]["id"][:3] == ["langchain", "chat_models", "openai"], llm[0][
        "serialized"
    ]["id"]


async def test_a_graph_invoked_directly_is_named_in_the_trace(recorder: Recorder) -> None:
    from tierflow.graphs.codebase_qa import graph

    ctx = RunContext(
        profile=DEMO_PROFILE,
        models=demo_models(ROOT),
        retry=RetryPolicy(initial_interval=0, jitter=False, max_attempts=1),
        shortcuts=False,
    )
    question = demo_question(find_target(ROOT))
    out = await graph.ainvoke(
        {"request": question, "env": {"root": str(ROOT)}},
        {"configurable": {"thread_id": "direct-1"}},
        context=ctx,
    )
    assert out["status"] == "answered"
    runs = _wait_for_runs(recorder, wanted=5)
    root = next(r for r in runs.values() if not r.get("parent_run_id"))
    assert root["name"] == "codebase_qa"  # not LangGraph's default "LangGraph"
    assert root["extra"]["metadata"]["thread_id"] == "direct-1"


async def test_a_routed_run_says_its_calibration_in_the_trace(
    recorder: Recorder, tmp_path: Path
) -> None:
    from tierflow.calibration import Calibration, SubagentCalibration, save_calibration
    from tierflow.evals.scripted import bench_models_for
    from tierflow.graphs.benchmarks.graph import gsm8k as graph

    cal = save_calibration(
        Calibration(suite="gsm8k", profile="openai", target_quality=0.95, items=1,
                    subagents={"solve": SubagentCalibration(start_tier="flagship")}),
        tmp_path / "gsm8k.json",
    )  # fmt: skip
    ctx = RunContext(profile="openai", models=bench_models_for("gsm8k"), policy="static",
                     calibration=str(tmp_path / "gsm8k.json"))  # fmt: skip
    from tierflow.evals._suites import load_items

    question = load_items("gsm8k", 1, "report")[0]["question"]
    out = await graph.ainvoke({"task": {"question": question}, "task_id": "g1"},
                              {"configurable": {"thread_id": "routed-1"}}, context=ctx)  # fmt: skip
    assert out["tier"] == "flagship" and out["calibration"] == cal.label()
    runs = _wait_for_runs(recorder, wanted=1)
    route = next(r for r in runs.values() if r["name"] == "route")
    assert cal.label() in json.dumps(route.get("outputs"), default=str)
    llm = next(r for r in runs.values() if r.get("run_type") == "llm")
    assert llm["extra"]["metadata"]["tierflow_tier"] == "flagship"
