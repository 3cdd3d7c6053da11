"""The supervisor workload of overhead.py and fanout.py, and its two bare LangGraph twins.

One run: the supervisor delegates ``tasks`` items (alternating an ``echo`` subagent on nano and
an ``upper`` subagent on mini) in one turn, each subagent finishes in one call, the supervisor
says done, the flagship answers: ``tasks + 3`` model calls.

The bare twins replay the very requests tierflow made (messages, bound tool schemas, tool
choice; recorded by the scripted models) in plain LangGraph: planner -> Send per task ->
planner -> answer, with each task either a compiled one-node subgraph or a plain node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from _common import RETRY, USAGE, thread
from langchain_core.messages import BaseMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel
from typing_extensions import TypedDict

from tierflow.nodes.subagent import Subagent
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph
from tierflow.runtime import RunContext
from tierflow.testing import ScriptedChatModel, tool_reply

__all__ = [
    "Workload",
    "Replay",
    "record",
    "build_tierflow",
    "build_bare",
    "run_tierflow",
    "run_bare",
]

REQUEST = "Process every item."


class Note(BaseModel):
    """An item to process."""

    text: str


class Echo(BaseModel):
    """The item, repeated."""

    echoed: str


class Upper(BaseModel):
    """The item, upper-cased."""

    upper: str


class Reply(BaseModel):
    """The final answer."""

    answer: str


SUBAGENTS = (
    Subagent(
        name="echo",
        description="repeats a text",
        tier="nano",
        task_schema=Note,
        output_schema=Echo,
        prompt="Repeat the text.",
    ),
    Subagent(
        name="upper",
        description="upper-cases a text",
        tier="mini",
        task_schema=Note,
        output_schema=Upper,
        prompt="Upper-case the text.",
    ),
)


@dataclass(frozen=True)
class Workload:
    """``tasks`` parallel subagent tasks; subagent replies take ``delay_s`` (asyncio sleep)."""

    tasks: int
    delay_s: float = 0.0

    @property
    def calls(self) -> int:
        """Model calls per run."""
        return self.tasks + 3

    def spec(self) -> Supervisor:
        """The supervisor declaration."""
        return Supervisor(
            subagents=SUBAGENTS,
            prompt="Delegate every item to a subagent, then say done.",
            answer_schema=Reply,
            answer_prompt="Say what was done.",
            max_turns=3,
            max_tasks_per_turn=self.tasks,
        )

    def _delegations(self) -> list[dict[str, Any]]:
        return [
            {"subagent": SUBAGENTS[i % 2].name, "task": {"text": f"item {i}"}}
            for i in range(self.tasks)
        ]

    def models(self, runs: int) -> dict[str, ScriptedChatModel]:
        """Scripted tiers holding the replies of ``runs`` sequential runs."""
        plan = [
            tool_reply("decide", {"plan": "p", "delegate": self._delegations(), "done": False},
                       usage=USAGE),
            tool_reply("decide", {"plan": "done", "delegate": [], "done": True}, usage=USAGE),
            tool_reply("final_answer", {"answer": "all items processed"}, usage=USAGE),
        ]  # fmt: skip
        n_echo = (self.tasks + 1) // 2
        echo = tool_reply("finish", {"echoed": "item"}, usage=USAGE)
        upper = tool_reply("finish", {"upper": "ITEM"}, usage=USAGE)
        return {
            "flagship": ScriptedChatModel(script=plan * runs, label="flagship"),
            "nano": ScriptedChatModel(
                script=[echo] * (n_echo * runs), label="nano", delay_s=self.delay_s
            ),
            "mini": ScriptedChatModel(
                script=[upper] * ((self.tasks - n_echo) * runs), label="mini", delay_s=self.delay_s
            ),
        }


def context(models: Mapping[str, ScriptedChatModel]) -> RunContext:
    """The openai profile (no concurrency gate, no key needed with doubles), no backoff."""
    return RunContext(profile="openai", models=dict(models), retry=RETRY)


def calls_made(models: Mapping[str, ScriptedChatModel]) -> int:
    """Requests the scripted models received so far."""
    return sum(len(m.requests) for m in models.values())


def build_tierflow(workload: Workload, checkpointer: Any) -> Any:
    """The compiled tierflow supervisor graph."""
    return build_supervisor_graph(workload.spec()).compile(checkpointer=checkpointer)


async def run_tierflow(graph: Any, models: Mapping[str, Any], durability: str) -> None:
    """One supervisor run; fails loudly unless it answered."""
    out = await graph.ainvoke(
        {"request": REQUEST}, thread(), context=context(models), durability=durability
    )
    if out.get("status") != "answered":
        raise RuntimeError(f"tierflow run ended {out.get('status')!r}: {out.get('events')}")


@dataclass(frozen=True)
class Call:
    """One recorded request: who got it and what it was."""

    tier: str
    messages: list[BaseMessage]
    tools: list[dict[str, Any]]
    tool_choice: Any


@dataclass(frozen=True)
class Replay:
    """The requests of one tierflow run, in the order the bare twins make them."""

    decide: tuple[Call, Call]
    workers: list[Call]
    answer: Call


async def record(workload: Workload, checkpointer: Any) -> Replay:
    """Run tierflow once and keep its requests for the bare twins to replay."""
    models = workload.models(1)
    await run_tierflow(build_tierflow(workload, checkpointer), models, "async")

    def calls(tier: str) -> list[Call]:
        return [
            Call(tier, list(r.messages), list(r.tools), r.tool_choice)
            for r in models[tier].requests
        ]

    flag = calls("flagship")
    if len(flag) != 3 or calls_made(models) != workload.calls:
        raise RuntimeError(
            f"unexpected tierflow calls: {calls_made(models)} (flagship {len(flag)})"
        )
    return Replay((flag[0], flag[1]), calls("nano") + calls("mini"), flag[2])


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class BareState(TypedDict, total=False):
    """State of the bare twin."""

    request: str
    turn: int
    plan: str
    results: Annotated[dict[str, Any], _merge]
    answer: dict[str, Any]


class TaskInput(TypedDict):
    """What a Send carries to one task."""

    index: int


class TaskOutput(TypedDict, total=False):
    """What one task adds to the parent state."""

    results: Annotated[dict[str, Any], _merge]


class TaskState(TaskInput, TaskOutput, total=False):
    """Working state of one task subgraph."""


def _args(msg: Any) -> dict[str, Any]:
    return dict(msg.tool_calls[0]["args"]) if msg.tool_calls else {}


def build_bare(
    replay: Replay, models: Mapping[str, ScriptedChatModel], checkpointer: Any, subgraphs: bool
) -> Any:
    """The bare twin: same requests to the same scripted models, tools bound once."""

    def bind(call: Call) -> Any:
        return models[call.tier].bind_tools(call.tools, tool_choice=call.tool_choice)

    decide, answer_model = bind(replay.decide[0]), bind(replay.answer)
    workers = {c.tier: bind(c) for c in replay.workers}

    async def planner(state: BareState) -> dict[str, Any]:
        turn = state.get("turn", 0)
        msg = await decide.ainvoke(replay.decide[min(turn, 1)].messages)
        return {"turn": turn + 1, "plan": _args(msg).get("plan", "")}

    def route(state: BareState) -> Any:
        if state["turn"] == 1:
            return [Send("task", {"index": i}) for i in range(len(replay.workers))]
        return "answer"

    async def task(state: TaskInput) -> dict[str, Any]:
        call = replay.workers[state["index"]]
        msg = await workers[call.tier].ainvoke(call.messages)
        return {"results": {f"t{state['index']}": {"tier": call.tier, "output": _args(msg)}}}

    async def answer(state: BareState) -> dict[str, Any]:
        return {"answer": _args(await answer_model.ainvoke(replay.answer.messages))}

    builder = StateGraph(BareState)
    builder.add_node("planner", planner)
    if subgraphs:
        sub = StateGraph(TaskState, input_schema=TaskInput, output_schema=TaskOutput)
        sub.add_node("step", task)  # type: ignore[arg-type]
        sub.add_edge(START, "step")
        sub.add_edge("step", END)
        builder.add_node("task", sub.compile(name="task"))
    else:
        builder.add_node("task", task)  # type: ignore[arg-type]
    builder.add_node("answer", answer)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", route, ["task", "answer"])
    builder.add_edge("task", "planner")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer)


async def run_bare(graph: Any, durability: str) -> None:
    """One bare run."""
    out = await graph.ainvoke({"request": REQUEST}, thread(), durability=durability)
    if not out.get("answer"):
        raise RuntimeError("bare run ended without an answer")
