"""MCP servers' tools in subagents: a real stdio server (tests/mcp_server.py), scripted models.

Each server is a child process that starts in about a second, so most tests share one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from tests.profiles import NATIVE_PROFILE
from tierflow.errors import SpecError
from tierflow.nodes.subagent import Subagent, build_subagent, subagent_input
from tierflow.testing import free_port, tool_reply
from tierflow.tools.mcp import McpFailure, McpPolicy, McpToolError, McpToolset

SERVER = [sys.executable, str(Path(__file__).resolve().parents[1] / "mcp_server.py")]


class Numbers(BaseModel):
    a: float
    b: float


class Sum(BaseModel):
    total: float


@pytest.fixture(scope="module")
def shared() -> Iterator[McpToolset]:
    with McpToolset(SERVER, policy=McpPolicy(timeout_s=0.5, max_output_chars=60)) as toolset:
        yield toolset


def by_name(toolset: McpToolset) -> dict[str, Any]:
    return {t.name: t for t in toolset.tools}


def adder(tools: list[Any], **kwargs: Any) -> Subagent:
    return Subagent(name="adder", description="adds numbers", tier="nano", task_schema=Numbers,
                    output_schema=Sum, prompt="Add the numbers with the add tool.", tools=tools,
                    **kwargs)  # fmt: skip


def act(action: str, **args: Any) -> Any:
    return tool_reply("next_action", {"step": {"action": action, **args}})


def last_text(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content)


async def run(spec: Subagent, ctx: Any, thread: Any, task: BaseModel) -> dict[str, Any]:
    graph = build_subagent(spec).compile(checkpointer=InMemorySaver())
    out = await graph.ainvoke(subagent_input("t1", task, {}), thread(), context=ctx)
    return out["results"]["t1"]


def native_ctx(make_ctx: Any, nano: Any, tmp_path: Path) -> Any:
    (tmp_path / "tierflow.toml").write_text(NATIVE_PROFILE)
    return make_ctx({"nano": nano}, profile="native", tiers=("nano", "mini"),
                    config_file=str(tmp_path / "tierflow.toml"))  # fmt: skip


def gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_tools_are_listed_with_their_schemas(shared: McpToolset) -> None:
    tools = by_name(shared)

    assert list(tools) == ["add", "sleep", "cancelled", "fail", "greet", "pid", "crash"]
    add, greet = tools["add"], tools["greet"]
    assert add.description == "Add two numbers."
    assert add.args_schema["properties"]["a"]["type"] == "number"
    assert add.args_schema["required"] == ["a", "b"]
    # Schema-forced mode (small models) offers the same arguments as pydantic fields.
    fields = greet.get_input_schema().model_fields
    assert fields["name"].is_required() and fields["times"].default == 1
    assert add.invoke({"a": 2, "b": 3}) == "5.0"


@pytest.mark.usefixtures("isolated_env")
async def test_a_subagent_calls_the_mcp_tool_and_answers_with_its_result(
    shared: McpToolset, scripted: Any, make_ctx: Any, thread: Any
) -> None:
    def answer(messages: list[BaseMessage]) -> Any:
        shown = last_text(messages)  # forced mode: "Result of add:\n5.5"
        return act("finish", result={"total": float(shown.splitlines()[-1])})

    nano = scripted("nano", [act("add", a=2, b=3.5), answer])

    result = await run(adder(shared.tools), make_ctx({"nano": nano}), thread, Numbers(a=2, b=3.5))

    assert (result["status"], result["output"]) == ("done", {"total": 5.5})
    assert "Result of add:\n5.5" in last_text(nano.requests[1].messages)
    assert "add" in str(nano.requests[0].tools)  # offered inside the forced action schema


@pytest.mark.usefixtures("isolated_env")
async def test_native_calls_get_tool_messages_and_bad_arguments_are_refused_with_the_fix(
    shared: McpToolset, scripted: Any, make_ctx: Any, thread: Any, tmp_path: Path
) -> None:
    nano = scripted("nano", [
        tool_reply("greet", {"name": "Ann", "times": "three"}),
        tool_reply("greet", {"name": "Ann", "times": 2}),
        tool_reply("finish", {"total": 2}),
    ])  # fmt: skip

    result = await run(adder(shared.tools), native_ctx(make_ctx, nano, tmp_path), thread,
                       Numbers(a=1, b=1))  # fmt: skip

    assert result["status"] == "done"
    assert nano.requests[0].tool_names == [*by_name(shared), "finish"]
    refused = nano.requests[1].messages[-1]
    assert isinstance(refused, ToolMessage)
    assert refused.content == (
        "Error from greet: bad arguments: times: 'three' is not of type 'integer'. "
        "Fix: call greet with name: string, times: integer = 1."
    )
    assert nano.requests[2].messages[-1].content == "Hello, Ann! Hello, Ann!"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"a": 1}, "'b' is a required property"),
        ({"a": 1, "b": 2, "c": 3}, "unknown argument 'c'"),
        ({"a": "one", "b": 2}, "a: 'one' is not of type 'number'"),
    ],
)
def test_bad_arguments_never_reach_the_server(
    shared: McpToolset, args: dict[str, Any], problem: str
) -> None:
    with pytest.raises(McpToolError, match="Fix: call add with a: number, b: number") as caught:
        by_name(shared)["add"].invoke(args)
    assert problem in str(caught.value) and caught.value.failure is McpFailure.ARGUMENTS


def test_null_optional_arguments_mean_the_default(shared: McpToolset) -> None:
    assert by_name(shared)["greet"].invoke({"name": "Bo", "times": None}) == "Hello, Bo!"


@pytest.mark.usefixtures("isolated_env")
async def test_a_slow_call_times_out_the_model_is_told_and_the_run_goes_on(
    shared: McpToolset, scripted: Any, make_ctx: Any, thread: Any
) -> None:
    nano = scripted("nano", [act("sleep", seconds=30), act("add", a=1, b=1),
                             act("finish", result={"total": 2})])  # fmt: skip
    started = time.monotonic()

    result = await run(adder(shared.tools), make_ctx({"nano": nano}), thread, Numbers(a=1, b=1))

    assert time.monotonic() - started < 5
    assert result["status"] == "done"
    told = last_text(nano.requests[1].messages)
    assert told == (
        "Result of sleep:\nError from sleep: did not finish within 0.5 s and was cancelled; "
        "call it on less (narrower arguments)"
    )
    assert last_text(nano.requests[2].messages) == "Result of add:\n2.0"  # the session lives on


@pytest.mark.usefixtures("isolated_env")
async def test_the_subagents_own_tool_timeout_cancels_the_call_too(
    scripted: Any, make_ctx: Any, thread: Any
) -> None:
    with McpToolset(SERVER, policy=McpPolicy(allow=("sleep", "add", "cancelled"))) as toolset:
        nano = scripted("nano", [act("sleep", seconds=30), act("add", a=1, b=2),
                                 act("finish", result={"total": 3})])  # fmt: skip
        spec = adder(toolset.tools, tool_timeout_s=0.5)

        result = await run(spec, make_ctx({"nano": nano}), thread, Numbers(a=1, b=2))
        cancelled = by_name(toolset)["cancelled"].invoke({})

    assert result["output"] == {"total": 3} and cancelled == "1"  # cancelled on the server
    assert "sleep did not finish within 0.5 s" in last_text(nano.requests[1].messages)
    assert last_text(nano.requests[2].messages) == "Result of add:\n3.0"


def test_an_is_error_result_and_a_long_result_reach_the_model(shared: McpToolset) -> None:
    tools = by_name(shared)
    with pytest.raises(McpToolError, match="failed on purpose: disk full") as caught:
        tools["fail"].invoke({"reason": "disk full"})
    assert caught.value.failure is McpFailure.TOOL_ERROR

    long = tools["greet"].invoke({"name": "Ann", "times": 50})
    assert long.startswith("Hello, Ann! Hello")
    assert long.endswith("\n... (539 more characters cut; ask for less)")


@pytest.mark.usefixtures("isolated_env")
async def test_a_denied_tool_is_never_offered_nor_run(
    scripted: Any, make_ctx: Any, thread: Any, tmp_path: Path
) -> None:
    policy = McpPolicy(deny=("sleep", "cancelled", "crash", "pid"))
    nano = scripted("nano", [tool_reply("crash", {}), tool_reply("finish", {"total": 0})])
    with McpToolset(SERVER, policy=policy) as toolset:
        assert [t.name for t in toolset.tools] == ["add", "fail", "greet"]
        before = by_name(toolset)["add"].invoke({"a": 1, "b": 1})

        await run(adder(toolset.tools), native_ctx(make_ctx, nano, tmp_path), thread,
                  Numbers(a=0, b=0))  # fmt: skip
        after = by_name(toolset)["add"].invoke({"a": 1, "b": 1})

    assert nano.requests[0].tool_names == ["add", "fail", "greet", "finish"]
    assert nano.requests[1].messages[-1].content == (
        "Error: there is no tool 'crash'. Available: add, fail, greet."
    )
    assert before == after == "2.0"  # the server did not crash


def test_allow_offers_only_what_it_names_and_a_typo_is_a_spec_error() -> None:
    with McpToolset(SERVER, policy=McpPolicy(allow=("add",), prefix="calc_")) as toolset:
        assert [t.name for t in toolset.tools] == ["calc_add"]
        assert toolset.tools[0].invoke({"a": 1, "b": 2}) == "3.0"

    with pytest.raises(
        SpecError, match=r"allow names \['ad'\].*It offers: add, sleep, cancelled, fail"
    ):
        McpToolset(SERVER, policy=McpPolicy(allow=("ad",))).open()


def test_sync_and_async_calls_from_threads_and_event_loops(shared: McpToolset) -> None:
    add = by_name(shared)["add"]

    with ThreadPoolExecutor(4) as pool:
        sums = list(pool.map(lambda n: add.invoke({"a": n, "b": 1}), range(8)))
    first = asyncio.run(add.ainvoke({"a": 1, "b": 1}))
    second = asyncio.run(add.ainvoke({"a": 2, "b": 2}))  # another loop, the same session

    assert sums == [f"{n + 1}.0" for n in range(8)] and (first, second) == ("2.0", "4.0")


def test_a_crashed_server_is_reported_then_started_again() -> None:
    with McpToolset(SERVER, policy=McpPolicy(restarts=1)) as toolset:
        tools = by_name(toolset)
        first = int(tools["pid"].invoke({}))
        with pytest.raises(McpToolError, match="stopped; it is started again") as caught:
            tools["crash"].invoke({})
        assert caught.value.failure is McpFailure.STOPPED
        second = int(asyncio.run(tools["pid"].ainvoke({})))
        with pytest.raises(McpToolError, match="its tools are unavailable"):
            tools["crash"].invoke({})
        with pytest.raises(McpToolError, match="stopped and is not restarted"):
            tools["add"].invoke({"a": 1, "b": 1})

    assert first != second and gone(first) and gone(second)


def test_closing_ends_the_server_process() -> None:
    toolset = McpToolset(SERVER).open()
    add, pid = by_name(toolset)["add"], int(by_name(toolset)["pid"].invoke({}))

    toolset.close()

    assert gone(pid)
    with pytest.raises(McpToolError, match="was closed; its tools are unavailable"):
        add.invoke({"a": 1, "b": 1})
    with pytest.raises(SpecError, match="make a new McpToolset"):
        toolset.open()


def test_a_missing_command_is_a_spec_error_naming_it() -> None:
    with pytest.raises(SpecError, match=r"'/no/such/mcp-server --stdio' could not be started.*"
                                        r"Fix: check that '/no/such/mcp-server' exists"):  # fmt: skip
        McpToolset(["/no/such/mcp-server", "--stdio"]).open()


def test_a_server_that_exits_at_once_is_a_spec_error_with_its_stderr() -> None:
    command = [sys.executable, "-c", "import sys; sys.exit('no config file at ~/.srv')"]

    with pytest.raises(SpecError, match=r"stopped before it served its tools.*"
                                        r"no config file at ~/.srv.*Fix: run the command"):  # fmt: skip
        McpToolset(command).open()


def test_a_server_that_never_answers_times_out_and_is_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    toolset = McpToolset([sys.executable, "-c", script], policy=McpPolicy(startup_timeout_s=1.5))

    with pytest.raises(SpecError, match=r"did not answer within 1.5 s.*serves MCP over stdio"):
        toolset.open()

    assert gone(int(pid_file.read_text()))


def test_without_the_mcp_extra_the_module_imports_and_open_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = "import sys; sys.modules['mcp'] = None; import tierflow.tools, tierflow.tools.mcp"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(ImportError, match=r"pip install 'tierflow\[mcp\]'"):
        McpToolset(SERVER).open()


def test_bad_declarations_are_spec_errors() -> None:
    with pytest.raises(SpecError, match=r"pass a tuple of tool names, e.g. allow=\('add',\)"):
        McpPolicy(allow="add")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="in both allow and deny"):
        McpPolicy(allow=("add",), deny=("add",))
    with pytest.raises(SpecError, match="needs a server"):
        McpToolset([])
    with pytest.raises(SpecError, match="is not open: call open"):
        _ = McpToolset(SERVER).tools


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_streamable_http_server_by_url() -> None:
    port = free_port()
    proc = subprocess.Popen([*SERVER, "--http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not _listening(port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"
        with McpToolset(url, policy=McpPolicy(allow=("add", "fail"))) as toolset:
            add, fail = toolset.tools
            assert add.invoke({"a": 4, "b": 5}) == "9.0"
            assert asyncio.run(add.ainvoke({"a": 1, "b": 1})) == "2.0"
            with pytest.raises(McpToolError, match="failed on purpose"):
                fail.invoke({})
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_url_where_no_server_listens_is_a_spec_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"

    with pytest.raises(SpecError, match=f"no MCP server answered at '{url}'.*Fix: start the"):
        McpToolset(url, policy=McpPolicy(startup_timeout_s=5)).open()
