"""Failed attempts are charged only when a provider may have billed them.

Each failure is classified from its exception's types (:mod:`tierflow._failures`): never sent
(refused, DNS, TLS, connect timeout), answered with an error status (429, 5xx, 4xx), or
possibly processed (a timeout after sending, a connection lost mid-reply). Only the last is
charged, at its reservation, as ``billing: "estimated"``; the others cost $0 and say why. The
errors come from real clients where a loopback server can produce them.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import RetryPolicy
from typer.testing import CliRunner

from tierflow._failures import failure_cause
from tierflow.calling import CallSite, call_model
from tierflow.errors import ModelCallError
from tierflow.faults import StandIn, profile_toml
from tierflow.models import chat_model
from tierflow.protocol import FailureCause
from tierflow.runtime import engine_for
from tierflow.testing import TransientError, tool_reply

pytestmark = pytest.mark.usefixtures("isolated_env")

URL = "https://api.openai.com/v1/chat/completions"
REQUEST = httpx.Request("POST", URL)
NEVER, STATUS, MAYBE, OTHER = (
    FailureCause.NEVER_SENT,
    FailureCause.ERROR_STATUS,
    FailureCause.POSSIBLY_PROCESSED,
    FailureCause.OTHER,
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrapped(error: BaseException, outer: type[openai.APIConnectionError]) -> BaseException:
    """``error`` raised inside openai's wrapper, as the client raises it."""
    try:
        try:
            raise error
        except Exception as exc:
            if outer is openai.APITimeoutError:
                raise openai.APITimeoutError(request=REQUEST) from exc
            raise outer(request=REQUEST) from exc
    except openai.APIConnectionError as exc:
        return exc


def status_error(code: int) -> openai.APIStatusError:
    response = httpx.Response(code, request=REQUEST)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError}[code]
    return cls(f"status {code}", response=response, body=None)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (wrapped(httpx.ConnectError("refused"), openai.APIConnectionError), NEVER),
        (wrapped(httpx.ConnectTimeout("no SYN-ACK"), openai.APITimeoutError), NEVER),
        (wrapped(httpx.PoolTimeout("pool full"), openai.APITimeoutError), NEVER),
        (socket.gaierror(-2, "Name or service not known"), NEVER),
        (ConnectionRefusedError(111, "Connection refused"), NEVER),
        (status_error(429), STATUS),
        (status_error(500), STATUS),
        (wrapped(httpx.ReadTimeout("slow"), openai.APITimeoutError), MAYBE),
        (wrapped(httpx.RemoteProtocolError("dropped"), openai.APIConnectionError), MAYBE),
        (wrapped(httpx.ReadError("reset"), openai.APIConnectionError), MAYBE),
        (openai.APIConnectionError(request=REQUEST), MAYBE),  # no cause: cannot tell, charged
        (TimeoutError(), MAYBE),  # the engine's own per-request timeout
        (TransientError("blip"), MAYBE),  # a ConnectionError: reset mid-request
        (ValueError("bad schema"), OTHER),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_failures_are_classified_by_their_exception_types(error: Any, cause: Any) -> None:
    assert failure_cause(error) is cause


def test_real_clients_failures_are_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exceptions langchain-openai actually raises for each transport fault."""
    from tierflow.config import load_config

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    tier = load_config("openai").tier("nano")

    async def cause_at(url: str) -> FailureCause:
        # 2 s: a loaded machine's stall must not read as a connection never made
        spec = tier.model_copy(update={"base_url": url, "timeout_s": 2.0})
        try:
            await chat_model(spec).ainvoke("hi")
        except Exception as exc:  # noqa: BLE001
            return failure_cause(exc)
        raise AssertionError("the request should have failed")

    assert asyncio.run(cause_at(f"http://127.0.0.1:{closed_port()}/v1")) is NEVER
    expected = {"429": STATUS, "500": STATUS, "slow": MAYBE, "drop": MAYBE, "not_json": OTHER}
    for kind, cause in expected.items():
        with StandIn(rate=1.0, kinds=(kind,), slow_s=2.5) as server:
            assert asyncio.run(cause_at(server.base_url)) is cause, kind


async def test_only_possibly_processed_attempts_are_charged(scripted, make_ctx) -> None:
    refused = wrapped(httpx.ConnectError("refused"), openai.APIConnectionError)
    timed_out = wrapped(httpx.ReadTimeout("slow"), openai.APITimeoutError)
    nano = scripted("nano", [refused, status_error(429), timed_out, tool_reply("x", {})])
    ctx = make_ctx({"nano": nano}, profile="openai")
    retry = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=4)
    site = CallSite(node="unit", tier="nano")
    state = {"run_id": uuid.uuid4().hex, "budget_usd": 0.05}

    out = await call_model(engine_for(ctx), site, state, [HumanMessage("hi")], retry=retry)

    never, limited, maybe, answered = out.records
    assert (never["cause"], never["cost_usd"], never["billing"]) == ("never sent", 0.0, "reported")
    refused_at = "never sent: https://api.openai.com/v1 (tier nano) could not be reached"
    assert refused_at in never["error"]
    assert "check tiers.nano.base_url in the profile, and the network" in never["error"]
    assert (limited["cause"], limited["cost_usd"]) == ("error status", 0.0)
    assert maybe["cause"] == "possibly processed" and maybe["billing"] == "estimated"
    assert maybe["cost_usd"] > 0
    assert (answered["cause"], answered["error"]) == (None, None)


async def test_an_unreachable_endpoint_is_named_in_the_final_error(scripted, make_ctx) -> None:
    refused = wrapped(httpx.ConnectError("refused"), openai.APIConnectionError)
    nano = scripted("nano", [refused] * 3)
    ctx = make_ctx({"nano": nano})  # the local profile: a loopback endpoint
    site = CallSite(node="unit", tier="nano")

    with pytest.raises(ModelCallError) as caught:
        await call_model(engine_for(ctx), site, {"run_id": "r"}, [HumanMessage("hi")],
                         retry=ctx.retry)  # fmt: skip

    assert "could not reach http://127.0.0.1:8733/v1" in str(caught.value)
    assert "tierflow local up" in str(caught.value)
    assert sum(r["cost_usd"] for r in caught.value.records) == 0.0


def test_a_run_whose_endpoints_never_accept_a_connection_exits_2_at_no_cost(
    isolated_env: Path, qa_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tier on a closed loopback port, `tierflow run ... --unattended`.

    Before: 3 attempts, each charged at its reservation ($0.056543 at openai prices), the
    error a bare ``OpenAIConnectionError: Connection error.``, and exit 1.
    """
    from tierflow.cli import app
    from tierflow.runner import Runner

    monkeypatch.setattr("tierflow._attempts._backoff", lambda policy, attempt, exc=None: 0.0)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    (isolated_env / "tierflow.toml").write_text(profile_toml("closed", url, key_env=None))
    data = isolated_env / "data"
    args = ["run", "codebase_qa", "Where is RetryPolicy defined?", "--root", str(qa_root),
            "--profile", "closed", "--unattended", "--data-dir", str(data)]  # fmt: skip

    res = CliRunner().invoke(app, args)

    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert f"no request of this run reached a provider: {url}" in text
    assert "start the local servers with `tierflow local up`" in text
    thread = text.split("thread: ")[1].split()[0]
    records = asyncio.run(Runner(data).state(thread)).values["usage"]
    assert records and {r["cause"] for r in records} == {"never sent"}
    assert sum(r["cost_usd"] for r in records) == 0.0
    assert all(r["billing"] == "reported" for r in records)


def test_exit_2_only_when_no_request_of_this_run_reached_a_provider() -> None:
    from tierflow._cli_print import exit_code
    from tierflow.runner import RunResult

    def rec(run: str, cause: str | None) -> dict[str, Any]:
        return {"run_id": run, "cause": cause, "tier": "nano", "endpoint": "http://h/v1"}

    def code(run: str, *usage: dict[str, Any]) -> int:
        values = {"status": "failed", "run_id": run, "usage": list(usage)}
        return exit_code(RunResult("t", "codebase_qa", values, []))

    assert code("b", rec("b", "never sent"), rec("b", "never sent")) == 2
    assert code("b", rec("b", "never sent"), rec("b", None)) == 1  # one request got through
    assert code("b", rec("b", "never sent"), rec("b", "error status")) == 1  # answered 429
    assert code("b", rec("a", None), rec("b", "never sent")) == 2  # an earlier run's records
    assert code("b") == 1  # no request at all: not an endpoint's fault
