"""Budgets across whole runs: per-run ledgers, clamped output, unattended stops, linear state."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import RetryPolicy

from tierflow.evals._suites import load_items
from tierflow.evals.scripted import PERFECT, OracleChatModel, models_for
from tierflow.graphs import codebase_qa, triage
from tierflow.runtime import RunContext
from tierflow.tiers import TierPolicy
from tierflow.usage import spent_usd

FAST = RetryPolicy(initial_interval=0, jitter=False, max_attempts=1)
UNATTENDED = TierPolicy("unattended", human=False)


def tickets(n: int) -> list[dict[str, Any]]:
    items = load_items("triage", limit=n)
    return [{k: i[k] for k in ("id", "subject", "body", "customer_email")} for i in items]


def worst_case_models(suite: str) -> dict[str, OracleChatModel]:
    """Oracle tiers that bill the input they really got and always the full ``max_tokens``."""
    out = {}
    for tier, model in models_for(suite, accuracy=PERFECT).items():

        def respond(messages: list[BaseMessage], _r: Any = model.responder) -> Any:
            reply = _r(messages).model_copy()
            reply.usage_metadata = None  # input counted from the request itself
            return reply

        out[tier] = OracleChatModel(script=[], label=tier, responder=respond, spend_max_tokens=True)
    return out


def ctx(models: dict[str, Any], policy: TierPolicy = UNATTENDED) -> RunContext:
    return RunContext(profile="openai", models=models, retry=FAST, policy=policy)


def cfg(thread: str | None = None) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread or uuid.uuid4().hex}}


async def test_random_budgets_never_overspend_and_always_make_progress(saver) -> None:
    rng = random.Random(7)
    graph = triage.build().compile(checkpointer=saver)
    models = worst_case_models("triage")
    seen_exhausted = seen_done = 0
    for _ in range(40):
        budget = round(10 ** rng.uniform(-3.3, -1.3), 6)  # $0.0005 .. $0.05
        out = await graph.ainvoke(
            {"tickets": tickets(2), "budget_usd": budget}, cfg(), context=ctx(models)
        )
        assert "__interrupt__" not in out  # unattended: the gate never waits
        spent = spent_usd(out["usage"])
        assert spent <= budget + 1e-12, (budget, spent)
        assert out["usage"], f"a ${budget} budget made no request at all"
        assert all(r["output_tokens"] > 0 for r in out["usage"])
        seen_exhausted += out["status"] == "budget_exhausted"
        seen_done += out["status"] == "done"
    assert seen_exhausted and seen_done  # the range covers both outcomes


async def test_unattended_budget_stop_ends_budget_exhausted_with_the_finished_work(saver) -> None:
    graph = triage.build().compile(checkpointer=saver)
    out = await graph.ainvoke(
        {"tickets": tickets(3), "budget_usd": 0.002},
        cfg(),
        context=ctx(worst_case_models("triage")),
    )

    assert out["status"] == "budget_exhausted"
    statuses = {t["status"] for t in out["tickets_out"].values()}
    assert "budget_exhausted" in statuses
    exhausted = [t for t in out["tickets_out"].values() if t["status"] == "budget_exhausted"]
    assert all("budget exhausted" in t["error"] for t in exhausted)
    assert spent_usd(out["usage"]) <= 0.002


async def test_unattended_supervisor_answers_from_finished_work_or_ends_exhausted(
    saver,
    tmp_path: Any,
) -> None:
    graph = codebase_qa.build().compile(checkpointer=saver)
    models = worst_case_models("codebase_qa")
    item = load_items("codebase_qa", limit=1)[0]
    from tierflow.evals._suites import langgraph_root

    inp = {"request": item["question"], "env": {"root": str(langgraph_root())}}
    out = await graph.ainvoke({**inp, "budget_usd": 0.004}, cfg(), context=ctx(models))

    assert "__interrupt__" not in out
    assert out["status"] == "budget_exhausted"
    assert spent_usd(out["usage"]) <= 0.004


async def test_a_reused_thread_starts_a_new_budget_for_a_new_run(saver) -> None:
    graph = triage.build().compile(checkpointer=saver)
    models, thread = models_for("triage", accuracy=PERFECT), uuid.uuid4().hex
    budget = 0.0025  # one run costs ~$0.0015: a second would not fit if spend carried over
    first = await graph.ainvoke(
        {"tickets": tickets(1), "budget_usd": budget}, cfg(thread), context=ctx(models)
    )
    run_cost = spent_usd(first["usage"])
    assert first["status"] == "done" and budget / 2 < run_cost <= budget

    second = await graph.ainvoke(
        {"tickets": tickets(1), "budget_usd": budget}, cfg(thread), context=ctx(models)
    )

    assert second["status"] == "done", second["tickets_out"]
    assert second["run_id"] != first["run_id"]
    assert len(second["usage"]) == 2 * len(first["usage"])  # the thread keeps its history
    mine = [r for r in second["usage"] if r["run_id"] == second["run_id"]]
    assert spent_usd(mine) == pytest.approx(run_cost)


async def test_parallel_runs_in_one_process_keep_their_own_ledgers(saver) -> None:
    graph = triage.build().compile(checkpointer=saver)
    models = models_for("triage", accuracy=PERFECT)

    async def one(thread: str | None) -> dict[str, Any]:
        config = cfg(thread) if thread else {}
        return await graph.ainvoke(
            {"tickets": tickets(1), "budget_usd": 0.0025}, config, context=ctx(models)
        )

    # Two runs on different threads, and two with no checkpointer thread at all, side by side.
    compiled_plain = triage.build().compile()
    outs = await asyncio.gather(
        one(uuid.uuid4().hex),
        one(uuid.uuid4().hex),
        compiled_plain.ainvoke({"tickets": tickets(1), "budget_usd": 0.0025}, context=ctx(models)),
        compiled_plain.ainvoke({"tickets": tickets(1), "budget_usd": 0.0025}, context=ctx(models)),
    )
    assert [o["status"] for o in outs] == ["done"] * 4
    assert len({o["run_id"] for o in outs}) == 4


@pytest.mark.parametrize("budget", [1.0, None])
async def test_a_timed_out_request_is_charged_at_its_reservation(
    tmp_path: Any, budget: float | None
) -> None:
    from langchain_core.messages import HumanMessage

    from tierflow.budget import ledger_for
    from tierflow.calling import CallSite, call_model
    from tierflow.errors import ModelCallError
    from tierflow.runtime import engine_for
    from tierflow.testing import ScriptedChatModel, tool_reply

    toml = tmp_path / "tierflow.toml"
    toml.write_text("[profiles.openai.tiers.nano]\ntimeout_s = 0.02\nmax_retries = 0\n")
    nano = ScriptedChatModel(script=[tool_reply("x", {})], label="nano", delay_s=0.5)
    unused = {t: ScriptedChatModel(script=[], label=t) for t in ("mini", "flagship")}
    run = RunContext(
        profile="openai", config_file=str(toml), models={"nano": nano, **unused}, retry=FAST
    )
    state = {"run_id": uuid.uuid4().hex, "budget_usd": budget}

    with pytest.raises(ModelCallError) as info:
        await call_model(engine_for(run), CallSite("n", "nano"), state, [HumanMessage("hi")])

    (rec,) = info.value.records
    assert rec["billing"] == "estimated" and rec["error"].startswith("TimeoutError")
    assert rec["cost_usd"] > 0
    assert ledger_for(state).spent_usd == pytest.approx(rec["cost_usd"])


_OUT = {"results", "usage", "events", "budget_usd"}


def _kind(writes: Any) -> str:
    """What one put_writes holds: a subagent phase's result, a task's output, or other writes."""
    channels = {c for c, _ in writes if not c.startswith("branch:")}  # edge triggers: no data
    if channels == {"__return__"}:
        return "phase"  # one step / tool round / escalation of a subagent task (a LangGraph task)
    results = dict(writes).get("results") or {}
    if channels <= _OUT and results and all("subagent" in r for r in results.values()):
        return "task"  # a finished subagent task hands back its result, records and events
    return "other"


class MeasuringSaver(InMemorySaver):
    """An in-memory checkpointer that counts the bytes each put and each put_writes writes."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[str, list[int]] = {}

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        values = checkpoint["channel_values"]
        size = sum(len(self.serde.dumps_typed(values[k])[1]) for k in new_versions if k in values)
        self.sizes.setdefault("checkpoint", []).append(size)
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        size = sum(len(self.serde.dumps_typed(v)[1]) for _, v in writes)
        self.sizes.setdefault(_kind(writes), []).append(size)
        super().put_writes(config, writes, task_id, task_path)


async def measure(n: int) -> MeasuringSaver:
    saver = MeasuringSaver()
    graph = triage.build().compile(checkpointer=saver)
    out = await graph.ainvoke(
        {"tickets": tickets(n)}, cfg(), context=ctx(models_for("triage", accuracy=PERFECT))
    )
    assert out["status"] == "done" and len(out["tickets_out"]) == n
    return saver


async def test_bytes_written_per_task_step_do_not_grow_with_finished_tasks() -> None:
    small, large = await measure(5), await measure(40)

    for kind in ("phase", "task"):
        # A subagent phase writes its own task's work, and a finished task its own result,
        # whatever the number of tasks already done.
        assert small.sizes[kind] and large.sizes[kind], kind
        assert max(large.sizes[kind]) <= 1.2 * max(small.sizes[kind]), kind
    # The run as a whole writes bytes in proportion to its tickets, not their square.
    per_ticket_small = sum(map(sum, small.sizes.values())) / 5
    per_ticket_large = sum(map(sum, large.sizes.values())) / 40
    assert per_ticket_large <= 1.5 * per_ticket_small


class WriteSpy(InMemorySaver):
    """An in-memory checkpointer that keeps every put_writes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[tuple[str, Any]]] = []

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self.seen.append(list(writes))
        super().put_writes(config, writes, task_id, task_path)


async def test_tasks_write_only_their_input_and_what_flows_back() -> None:
    """Every write is a row in a durable checkpointer: a task writes its phases and its output."""
    spy = WriteSpy()
    graph = triage.build().compile(checkpointer=spy)
    out = await graph.ainvoke(
        {"tickets": tickets(3)}, cfg(), context=ctx(models_for("triage", accuracy=PERFECT))
    )
    assert out["status"] == "done"
    subagents = {"classify", "extract", "draft"}
    sends = [v for w in spy.seen for c, v in w if c == "__pregel_tasks" and v.node in subagents]
    names = [s.node for s in sends]
    assert names.count("classify") == names.count("extract") == 3 and "draft" in names
    for send in sends:
        assert set(send.arg) == {"task_id", "task", "run"}, send.arg  # budget figures in run
    outputs = [w for w in spy.seen if _kind(w) == "task"]
    finished = [r["subagent"] for w in outputs for r in dict(w)["results"].values()]
    assert sorted(finished) == sorted(names)  # each task hands back its result once
    assert all("budget_usd" not in dict(w) for w in outputs)  # nobody raised it
    # Each phase's result is one write, once: here each task is one model step.
    phases = [w for w in spy.seen if _kind(w) == "phase"]
    assert all(len(w) == 1 for w in phases)
    assert len(phases) == len(sends) == len([r for r in out["usage"] if r["subagent"]])


async def test_a_new_request_on_a_used_supervisor_thread_is_a_fresh_run(saver) -> None:
    from tierflow.evals._suites import langgraph_root

    graph = codebase_qa.build().compile(checkpointer=saver)
    models, config = models_for("codebase_qa", accuracy=PERFECT), cfg()
    first_item, second_item = load_items("codebase_qa", limit=2)
    env = {"root": str(langgraph_root())}
    first = await graph.ainvoke(
        {"request": first_item["question"], "env": env, "budget_usd": 0.5}, config,
        context=ctx(models),
    )  # fmt: skip
    cost = spent_usd(first["usage"])
    assert first["status"] == "answered" and 0.5 > cost

    second = await graph.ainvoke(
        {"request": second_item["question"], "env": env, "budget_usd": cost * 1.5}, config,
        context=ctx(models),
    )  # fmt: skip

    assert second["status"] == "answered", second.get("events")
    assert second["run_id"] != first["run_id"]
    assert second["answer"] != first["answer"]
    mine = [r for r in second["usage"] if r["run_id"] == second["run_id"]]
    assert spent_usd(mine) <= cost * 1.5
    # Only this run's tasks are in its results (the first run's were cleared).
    assert set(second["results"]) == {r["task_id"] for r in mine if r["task_id"]}
    first_tasks = [r["task"] for r in first["results"].values()]
    assert all(r["task"] not in first_tasks for r in second["results"].values())


class EnumSpotter(InMemorySaver):
    """Records every Enum member about to be checkpointed (strict msgpack loading rejects them)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def _walk(self, value: Any, where: str) -> None:
        from enum import Enum

        if isinstance(value, Enum):
            self.found.append(f"{where}: {value!r}")
        elif isinstance(value, dict):
            for k, v in value.items():
                self._walk(k, where)
                self._walk(v, f"{where}.{k}")
        elif isinstance(value, list | tuple | set):
            for v in value:
                self._walk(v, where)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            self._walk(vars(value), where)

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self._walk(dict(checkpoint), "checkpoint")
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self._walk(list(writes), "writes")
        super().put_writes(config, writes, task_id, task_path)


async def test_checkpoints_hold_plain_strings_not_protocol_enums() -> None:
    from tierflow.evals._suites import langgraph_root

    saver = EnumSpotter()
    models = models_for("triage", accuracy=PERFECT)
    await (
        triage.build()
        .compile(checkpointer=saver)
        .ainvoke({"tickets": tickets(3), "budget_usd": 0.002}, cfg(), context=ctx(models))
    )
    # Attended: budget interrupts and draft reviews are checkpointed too.
    waiting = await triage.build().compile(checkpointer=saver).ainvoke(
        {"tickets": tickets(3), "budget_usd": 0.0009}, cfg(),
        context=ctx(models, TierPolicy("attended")),
    )  # fmt: skip
    assert waiting["__interrupt__"]
    item = load_items("codebase_qa", limit=1)[0]
    inp = {"request": item["question"], "env": {"root": str(langgraph_root())}}
    await (
        codebase_qa.build()
        .compile(checkpointer=saver)
        .ainvoke(inp, cfg(), context=ctx(models_for("codebase_qa", accuracy=PERFECT)))
    )
    assert saver.found == []


@pytest.mark.parametrize("unattended", [True, False])
async def test_the_router_follows_the_run_policy_at_its_budget_gate(unattended: bool) -> None:
    """Unattended: the routing call stops at the gate with a clear error; attended: it asks."""
    from tierflow.evals import SUITES
    from tierflow.graphs import routing

    graph = routing.build().compile(checkpointer=InMemorySaver())
    inp = {**SUITES["routing"].make_input(load_items("routing", limit=1)[0]), "budget_usd": 1e-6}
    context = RunContext(
        profile="openai", models=models_for("routing", accuracy=PERFECT), retry=FAST,
        unattended=unattended,
    )  # fmt: skip
    out = await graph.ainvoke(inp, cfg(), context=context)
    if unattended:
        assert "__interrupt__" not in out
        assert out["choice"] is None and out["error"].startswith("budget_exhausted: ")
    else:
        (gate,) = out["__interrupt__"]
        assert (gate.value["kind"], gate.value["node"]) == ("budget", "route")
    assert not out.get("usage")  # nothing was spent either way
