"""`langgraph dev` serves langgraph.json's graphs offline; the SDK drives them through it.

codebase_qa runs against a stand-in model server (no llama.cpp), triage against a real one.

The server is started from the repository root (it resolves ``./graphs/*.py`` against its
working directory) with profile ``ci`` of :mod:`tests.integration.test_cli_local`: every tier on
the ``llama_nano`` server. It writes ``.langgraph_api/`` there; the folder is removed afterwards
unless it existed before.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_local import (
    OUTCOMES,
    PRICES,
    REPO,
    TICKET_IDS,
    Cli,
    answer_for,
    check_records,
    ci_env,
    ci_profile_toml,
    reference_tickets,
    served_model,
    thread_of,
)
from tests.skips import unavailable
from tierflow.testing import free_port

pytestmark = pytest.mark.integration

TICKET_ID = "t-020"  # a critical outage: a draft and a draft_review interrupt are likely
STARTUP_S = 90.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ok", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group (uvicorn workers included), then kill it."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def _langgraph_dev(config_text: str, root: Path) -> Iterator[str]:
    """`langgraph dev` on a free loopback port with ``config_text`` as tierflow.toml."""
    langgraph = Path(sys.executable).with_name("langgraph")
    if not langgraph.is_file() or importlib.util.find_spec("langgraph_api") is None:
        unavailable(
            "langgraph dev needs: pip install 'langgraph-cli[inmem]' (tierflow[dev])",
            "the langgraph dev test",
        )
    config = root / "tierflow.toml"
    config.write_text(config_text)
    env = ci_env(config, root / "data")
    env["LANGGRAPH_CLI_NO_ANALYTICS"] = "1"
    env["STAND_IN_KEY"] = "sk-stand-in"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state_dir = REPO / ".langgraph_api"
    had_state_dir = state_dir.exists()
    log_path = root / "langgraph_dev.log"
    cmd = [str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--config", str(REPO / "langgraph.json")]
    with log_path.open("wb") as log:
        # --no-reload: other files of the tree may change while the test runs.
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"langgraph dev did not become healthy at {url}/ok:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)
        # Shown when the test fails (or with -rP): the server's own account of the run.
        print(_ANSI.sub("", log_path.read_text(errors="replace"))[-3000:])
        if not had_state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dev_server(llama_nano: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev` with every tier on the real llama_nano server; yields its URL."""
    text = ci_profile_toml(llama_nano, served_model(llama_nano))
    with _langgraph_dev(text, tmp_path_factory.mktemp("langgraph_dev")) as url:
        yield url


@pytest.fixture(scope="module")
def dev_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """`langgraph dev` whose tiers are a stand-in model server answering as the codebase_qa
    oracle (no llama.cpp needed); yields (its URL, the stand-in)."""
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import StandIn, profile_toml

    with StandIn(responder=oracle_responder("codebase_qa")) as server:
        text = profile_toml("ci", server.base_url, PRICES, timeout_s=30.0, max_retries=2)
        with _langgraph_dev(text, tmp_path_factory.mktemp("langgraph_dev_standin")) as url:
            yield url, server


async def test_codebase_qa_through_langgraph_dev_with_the_sdk(
    dev_standin: tuple[str, Any],
) -> None:
    """List, run with streaming, interrupt at the budget gate, resume, read state and usage."""
    from langgraph_sdk import get_client

    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    url, server = dev_standin
    client = get_client(url=url, api_key=None, timeout=120)
    assert "codebase_qa" in {a["graph_id"] for a in await client.assistants.search()}
    suite = SUITES["codebase_qa"]
    item = load_items("codebase_qa")[0]
    thread_id = (await client.threads.create())["thread_id"]

    # A budget too small for the first call: the gate interrupts before any request.
    tiny = {**suite.make_input(item), "budget_usd": 0.00001}
    chunks = [
        c async for c in client.runs.stream(
            thread_id, "codebase_qa", input=tiny, stream_mode=["updates", "custom"]
        )
    ]  # fmt: skip
    assert server.requests == 0
    state = await client.threads.get_state(thread_id)
    (pending,) = state["interrupts"]
    assert pending["value"]["kind"] == "budget"

    resume = {pending["id"]: {"action": "raise", "budget_usd": 0.5}}
    chunks = [
        c async for c in client.runs.stream(
            thread_id, "codebase_qa", command={"resume": resume}, stream_mode=["updates", "custom"]
        )
    ]  # fmt: skip
    assert not [c for c in chunks if c.event == "error"], [c.data for c in chunks]
    assert any(c.event == "custom" for c in chunks)  # tierflow's progress events stream too
    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert not state["interrupts"] and not state["next"]
    assert values["status"] == "answered", values.get("answer_problems")
    assert suite.score(item, values).quality == 1.0
    usage = values["usage"]
    assert usage and all(r["error"] is None for r in usage)
    assert {r["model"] for r in usage} <= {f"stand-in-{t}" for t in PRICES}
    assert len(usage) == server.requests  # every request the server answered is recorded once

    # Policy, budget and unattended set per run from the SDK (the run context is plain data).
    thread_id = (await client.threads.create())["thread_id"]
    context = {"policy": "all-flagship", "unattended": True, "budget_usd": 0.5}
    out: Any = await client.runs.wait(
        thread_id, "codebase_qa", input=suite.make_input(item), context=context
    )
    assert out["status"] == "answered" and "__interrupt__" not in out
    assert {r["tier"] for r in out["usage"]} == {"flagship"}
    assert out["budget_usd"] == 0.5


def test_cli_runs_resumes_and_shows_a_thread_on_the_server_with_remote(
    dev_standin: tuple[str, Any], tmp_path: Path
) -> None:
    """`tierflow run|resume|show --remote URL`: the run happens on the server, through the SDK."""
    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    url, server = dev_standin
    item = load_items("codebase_qa")[0]
    work = tmp_path / "cwd"  # nothing local: no tierflow.toml, no checkpoints here
    work.mkdir()
    env = ci_env(tmp_path / "unused.toml", work / "data")
    del env["TIERFLOW_CONFIG"], env["TIERFLOW_PROFILE"]  # the packaged profiles price the tables
    cli = Cli(cwd=work, env=env, data_dir=work / "data")
    before = server.requests
    request = json.dumps(SUITES["codebase_qa"].make_input(item))

    # A budget too small for the first call: the server's budget gate interrupts.
    out = cli("run", "codebase_qa", request, "--budget-usd", "0.00001", "--remote", url, expect=3)
    thread = thread_of(out)
    assert "waiting for a human" in out and '"kind": "budget"' in out
    assert server.requests == before
    out = cli(
        "resume", thread, "--answer", '{"action": "raise", "budget_usd": 0.5}', "--remote", url
    )
    assert "status: answered" in out, out
    shown = cli("show", thread, "--remote", url)
    assert "status: answered" in shown and f"thread: {thread}" in shown
    assert not (work / "data").exists()  # nothing was checkpointed locally

    # The thread is the server's: the SDK sees the same records the CLI printed.
    from langgraph_sdk import get_sync_client

    values = get_sync_client(url=url, api_key=None).threads.get_state(thread)["values"]
    assert values["status"] == "answered"
    assert len(values["usage"]) == server.requests - before
    cli("show", "no-such-thread", "--remote", url, expect=2)
    out = cli(
        "run", "codebase_qa", "where?", "--root", str(tmp_path), "--remote", "http://127.0.0.1:9",
        expect=2,
    )  # fmt: skip
    assert "no LangGraph server answers at http://127.0.0.1:9" in out


def _tickets(*ids: str) -> list[dict[str, Any]]:
    refs = reference_tickets()
    return [{k: refs[i][k] for k in ("id", "subject", "body", "customer_email")} for i in ids]


async def test_graphs_are_served_and_bad_input_is_a_clear_run_error(dev_server: str) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=dev_server, api_key=None, timeout=120)
    registered = set(json.loads((REPO / "langgraph.json").read_text())["graphs"])
    assert {"codebase_qa", "triage"} <= registered
    assistants = await client.assistants.search()
    assert registered <= {a["graph_id"] for a in assistants}

    thread_id = (await client.threads.create())["thread_id"]
    with pytest.raises(Exception, match=r"InvalidTicketError: invalid input at tickets\[0\]"):
        await client.runs.wait(thread_id, "triage", input={"tickets": [{"id": "t-1"}]})


async def test_budget_gate_over_the_api_interrupts_before_any_request(dev_server: str) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=dev_server, api_key=None, timeout=120)
    thread_id = (await client.threads.create())["thread_id"]
    budget = 0.0001
    out: Any = await client.runs.wait(
        thread_id, "triage", input={"tickets": _tickets(*TICKET_IDS), "budget_usd": budget}
    )

    state = await client.threads.get_state(thread_id)
    pending = state["interrupts"]
    assert pending and {i["id"] for i in out["__interrupt__"]} == {i["id"] for i in pending}
    assert {i["value"]["kind"] for i in pending} == {"budget"}
    assert all(i["value"]["spent_usd"] == 0 for i in pending), pending
    out = await client.runs.wait(
        thread_id, "triage", command={"resume": {i["id"]: {"action": "stop"} for i in pending}}
    )
    assert {t["status"] for t in out["tickets_out"].values()} == {"stopped"}
    assert not out.get("usage"), out.get("usage")


async def test_triage_through_langgraph_dev_with_the_sdk(dev_server: str, llama_nano: str) -> None:
    from langgraph_sdk import get_client

    client = get_client(url=dev_server, api_key=None, timeout=600)
    refs = reference_tickets()
    thread_id = (await client.threads.create())["thread_id"]
    out: Any = await client.runs.wait(
        thread_id, "triage", input={"tickets": _tickets(TICKET_ID), "budget_usd": 0.5}
    )
    for _ in range(4):
        state = await client.threads.get_state(thread_id)
        if not state["interrupts"]:
            break
        assert {i["id"] for i in out["__interrupt__"]} == {i["id"] for i in state["interrupts"]}
        answers = {i["id"]: answer_for(i["value"], refs) for i in state["interrupts"]}
        print("answering", sorted(i["value"]["kind"] for i in state["interrupts"]))
        out = await client.runs.wait(thread_id, "triage", command={"resume": answers})
    state = await client.threads.get_state(thread_id)
    assert not state["interrupts"] and not state["next"], state["interrupts"]

    assert isinstance(out, dict) and "__interrupt__" not in out, out
    outcome = out["tickets_out"][TICKET_ID]
    assert outcome["status"] in OUTCOMES
    assert outcome["status"] in {"sent", "no_reply_needed"}, outcome  # we answered everything
    records = out["usage"]
    check_records(records, llama_nano, served_model(llama_nano))
    assert {r["tier"] for r in records} <= set(PRICES)
    assert {"classify", "extract"} <= {r["node"] for r in records}
    assert state["values"]["usage"] == records


async def test_routing_through_langgraph_dev_with_the_sdk(dev_server: str) -> None:
    """The third graph of langgraph.json: one routing decision by a real local model."""
    from langgraph_sdk import get_client

    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    client = get_client(url=dev_server, api_key=None, timeout=600)
    item = load_items("routing")[0]
    thread_id = (await client.threads.create())["thread_id"]
    out: Any = await client.runs.wait(
        thread_id, "routing", input=SUITES["routing"].make_input(item),
        context={"unattended": True},
    )  # fmt: skip
    assert out.get("error") is None, out
    assert out["choice"] in PRICES
    state = await client.threads.get_state(thread_id)
    assert len(state["values"]["usage"]) >= 1 and not state["next"]
