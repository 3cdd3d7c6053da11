"""`tierflow serve`: Aegra replicas on PostgreSQL and Redis, driven by the official SDK.

Fixtures start PostgreSQL (the session's), Redis, a stand-in OpenAI-compatible model server
(answering as the codebase_qa oracle, slowly enough that runs are in flight when a replica is
killed) and two replicas through :mod:`tierflow.serve`, the code `tierflow serve` runs. The
server environment (Python >= 3.12, Aegra) is made once under ``.tierflow/server-venv``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_local import PRICES, REPO, ci_env
from tests.skips import unavailable
from tierflow.testing import free_port

pytestmark = pytest.mark.integration

REPLY_DELAY_S = 0.3  # per model request: a run takes a few seconds, so a kill lands mid-run


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free port (Debian ``redis-server``), stopped by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable(
            "redis-server not installed (apt-get install -y redis-server)", "the serve tests"
        )
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no"], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Any]:
    from tierflow.evals.scripted import oracle_responder
    from tierflow.faults import StandIn

    oracle = oracle_responder("codebase_qa")

    def slow(request: dict[str, Any]) -> dict[str, Any]:
        time.sleep(REPLY_DELAY_S)
        return oracle(request)

    with StandIn(responder=slow) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(
    postgres_url: str, redis_url: str, stand_in: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Config, environment and the server Python shared by the tests (replicas per test)."""
    from tierflow.faults import profile_toml
    from tierflow.serve import ServerConfig, server_env

    root = tmp_path_factory.mktemp("serve")
    config = root / "tierflow.toml"
    config.write_text(profile_toml("ci", stand_in.base_url, PRICES, timeout_s=30.0, max_retries=2))
    env = ci_env(config, root / "data")
    env["STAND_IN_KEY"] = "sk-stand-in"
    cfg = ServerConfig(
        database_url=postgres_url, redis_url=redis_url, env_dir=REPO / ".tierflow" / "server-venv",
        lease_s=6, jobs_per_replica=20,
    )  # fmt: skip
    started = time.monotonic()
    python = server_env(cfg, REPO / "langgraph.json")
    print(f"server environment ready in {time.monotonic() - started:.1f} s: {python}")
    yield {"cfg": cfg, "env": env, "python": python, "root": root}


def _start(deployment: dict[str, Any], name: str) -> Any:
    from tierflow.serve import Replica

    port = free_port()
    log = deployment["root"] / f"{name}.log"
    replica = Replica(
        deployment["python"], deployment["cfg"], REPO / "langgraph.json", port, log,
        {k: v for k, v in deployment["env"].items() if k.startswith(("TIERFLOW_", "STAND_IN"))},
    )  # fmt: skip
    replica.wait_ready()
    return replica


@pytest.fixture
def two_replicas(deployment: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    a, b = _start(deployment, "a"), _start(deployment, "b")
    try:
        yield a, b
    finally:
        for r in (a, b):
            r.stop()
            print(f"--- {r.url} log tail ---\n{r.log.read_text(errors='replace')[-1500:]}")


def _interrupts(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Pending interrupts (Aegra lists them under the tasks waiting on them)."""
    found = list(state.get("interrupts") or [])
    return found or [i for t in state.get("tasks") or () for i in t.get("interrupts") or ()]


def _question() -> dict[str, Any]:
    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    return SUITES["codebase_qa"].make_input(load_items("codebase_qa")[0])


async def test_an_interrupt_raised_on_one_replica_is_resumed_through_another_after_kill_9(
    two_replicas: tuple[Any, Any], stand_in: Any
) -> None:
    from langgraph_sdk import get_client

    a, b = two_replicas
    ca, cb = (get_client(url=r.url, api_key=None, timeout=120) for r in (a, b))
    registered = {"codebase_qa", "routing", "triage"}
    assert registered <= {x["graph_id"] for x in await ca.assistants.search()}
    assert registered <= {x["graph_id"] for x in await cb.assistants.search()}

    # triage and routing through the other replica: their budget gates interrupt (and stop)
    # before any model call, so the stand-in (a codebase_qa oracle) is not asked.
    from tests.integration.test_langgraph_dev import _tickets

    tid = (await cb.threads.create())["thread_id"]
    out = await cb.runs.wait(
        tid, "triage", input={"tickets": _tickets("t-020"), "budget_usd": 1e-6}
    )
    kinds: set[str] = set()
    for _ in range(4):  # classify and extract each stop at their gate
        pending = _interrupts(await cb.threads.get_state(tid))
        if not pending:
            break
        kinds |= {i["value"]["kind"] for i in pending}
        out = await cb.runs.wait(
            tid, "triage", command={"resume": {i["id"]: {"action": "stop"} for i in pending}}
        )
    assert kinds == {"budget"}
    assert {t["status"] for t in out["tickets_out"].values()} == {"stopped"}, out
    from tierflow.evals import SUITES
    from tierflow.evals._suites import load_items

    tid = (await cb.threads.create())["thread_id"]
    routing = SUITES["routing"].make_input(load_items("routing")[0])
    # The run context travels through Aegra: unattended, the router stops at its gate.
    out = await cb.runs.wait(
        tid, "routing", input={**routing, "budget_usd": 1e-6}, context={"unattended": True}
    )
    assert "__interrupt__" not in out and out["error"].startswith("budget_exhausted"), out

    thread = (await ca.threads.create())["thread_id"]
    before = stand_in.requests
    out = await ca.runs.wait(thread, "codebase_qa", input={**_question(), "budget_usd": 0.00001})
    (pending,) = out["__interrupt__"]
    assert pending["value"]["kind"] == "budget" and stand_in.requests == before

    a.kill()  # kill -9: the interrupt lives in PostgreSQL, not in the replica
    assert [i["id"] for i in _interrupts(await cb.threads.get_state(thread))] == [pending["id"]]
    started = time.monotonic()
    out = await cb.runs.wait(
        thread,
        "codebase_qa",
        command={"resume": {pending["id"]: {"action": "raise", "budget_usd": 0.5}}},
    )
    print(f"resumed through {b.url} in {time.monotonic() - started:.1f} s")
    assert out["status"] == "answered", out.get("answer_problems")
    usage = out["usage"]
    assert len({r["id"] for r in usage}) == len(usage) == stand_in.requests - before
    assert sum(r["cost_usd"] for r in usage) <= 0.5


async def test_forty_runs_spread_over_two_replicas_all_finish_when_one_is_killed(
    two_replicas: tuple[Any, Any], stand_in: Any, deployment: dict[str, Any]
) -> None:
    from langgraph_sdk import get_client

    a, b = two_replicas
    ca, cb = (get_client(url=r.url, api_key=None, timeout=300) for r in (a, b))
    # The calls of one uninterrupted run, to compare each run of the batch with.
    ref_thread = (await ca.threads.create())["thread_id"]
    reference = await ca.runs.wait(
        ref_thread, "codebase_qa", input={**_question(), "budget_usd": 0.5}
    )
    assert reference["status"] == "answered"
    calls = len(reference["usage"])

    threads: list[str] = []
    for i in range(40):
        client = ca if i % 2 == 0 else cb
        tid = (await client.threads.create())["thread_id"]
        await client.runs.create(tid, "codebase_qa", input={**_question(), "budget_usd": 0.5})
        threads.append(tid)
    time.sleep(1.5)
    b.kill()  # kill -9 with runs in flight: the survivor takes over their leases
    killed_at = time.monotonic()

    deadline = killed_at + 180
    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < len(threads) and time.monotonic() < deadline:
        for tid in threads:
            if tid in finished:
                continue
            state = await ca.threads.get_state(tid)
            if state["values"].get("status") and not state["next"]:
                finished[tid] = state["values"]
        time.sleep(1.0)
    recovery = time.monotonic() - killed_at
    print(f"all {len(finished)} runs finished {recovery:.1f} s after the kill")
    assert len(finished) == 40, f"{40 - len(finished)} runs did not finish in 180 s"
    for tid, values in finished.items():
        assert values["status"] == "answered", (tid, values.get("answer_problems"))
        usage = values["usage"]
        # No recorded request twice: a restarted run replays its finished phases, so it
        # records exactly the calls of an uninterrupted run, each once.
        assert len({r["id"] for r in usage}) == len(usage) == calls, tid
        assert sum(r["cost_usd"] for r in usage) <= 0.5

    # Runs spread over both replicas (Aegra's workers take jobs from one Redis queue), and
    # runs that B had started were finished by A after the kill.
    picked = {r: _picked_up(r.log, threads) for r in (a, b)}
    print({r.url: len(p) for r, p in picked.items()})
    assert picked[a] and picked[b]
    assert picked[a] & picked[b], "no run of the killed replica was taken over"
    assert picked[a] | picked[b] == set(threads)
    import psycopg

    with psycopg.connect(deployment["cfg"].database_url) as db:
        (rows,) = db.execute(
            "SELECT count(*) FROM tierflow_ledgers WHERE run_id = ANY(%s)",
            ([v["run_id"] for v in finished.values()],),
        ).fetchone()
    assert rows == 40  # every run's budget was kept in the shared ledger


def _picked_up(log: Path, threads: list[str]) -> set[str]:
    """The threads among ``threads`` whose runs this replica's workers picked up."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    lines = [line for line in text.splitlines() if "Worker picked up run" in line]
    return {t for t in threads if any(f"thread_id={t}" in line for line in lines)}


def _cli_replica(deployment: dict[str, Any], port: int) -> subprocess.Popen[str]:
    """`tierflow serve --replica --port PORT` as a user runs it, configured by environment."""
    env = {
        **deployment["env"],
        "TIERFLOW_SERVER__DATABASE_URL": deployment["cfg"].database_url,
        "TIERFLOW_SERVER__REDIS_URL": deployment["cfg"].redis_url,
        "TIERFLOW_SERVER__ENV_DIR": str(deployment["cfg"].env_dir),
    }
    script = Path(sys.executable).with_name("tierflow")
    return subprocess.Popen(
        [str(script), "serve", "--replica", "--port", str(port)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_the_cli_starts_a_replica_and_stops_it_with_its_server(
    deployment: dict[str, Any],
) -> None:
    """`tierflow serve --replica`: ready on its port; SIGTERM stops the server process too."""
    import urllib.request

    port = free_port()
    proc = _cli_replica(deployment, port)
    try:
        deadline = time.monotonic() + 120
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.5)
        assert ready, proc.stdout.read() if proc.poll() is not None else "not ready in 120 s"
        # The CLI says where it serves once the replica is ready (it may lag the port).
        printed = ""
        while "serving at" not in printed and time.monotonic() < deadline:
            printed += proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, printed + out
    assert f"serving at http://127.0.0.1:{port}" in printed
    with pytest.raises(OSError):  # the uvicorn process went with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2)


def test_a_replica_still_starting_is_stopped_with_the_cli(deployment: dict[str, Any]) -> None:
    """SIGTERM before the replica is ready: the CLI stops it on the way out (no orphan)."""
    port = free_port()
    proc = _cli_replica(deployment, port)
    deadline = time.monotonic() + 60
    while not _serving_on(port) and time.monotonic() < deadline:  # the replica was spawned
        time.sleep(0.05)
    assert _serving_on(port), "no replica process was started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert not _serving_on(port), "the replica outlived the CLI"


def _serving_on(port: int) -> bool:
    """Whether a replica process for ``port`` exists (by its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"aegra_api.main:app" in args and str(port).encode() in args:
            return True
    return False
