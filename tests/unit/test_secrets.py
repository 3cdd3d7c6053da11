"""Planted secrets never leave the process: not in checkpoints, traces, the HTML view or logs.

A run of codebase_qa goes over HTTP to a stand-in server whose base URL carries credentials
(``user:password@``) and whose API key comes from the environment, with faults injected so
that error texts are recorded too, and LangSmith tracing on (to a local recorder). Then every
place a run writes is scanned for both secrets.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from langgraph.types import RetryPolicy

from tests.unit.test_langsmith_trace import Recorder, _wait_for_runs, recorder  # noqa: F401
from tierflow.config import load_config
from tierflow.evals import SUITES
from tierflow.evals._suites import load_items
from tierflow.evals.scripted import oracle_responder
from tierflow.faults import StandIn, standin_context
from tierflow.runner import Runner
from tierflow.runview import write_html

pytestmark = pytest.mark.usefixtures("isolated_env")

API_KEY = "sk-PLANTED-api-key-4711"
URL_PASSWORD = "PLANTED-url-password-0815"


async def test_planted_keys_are_in_no_checkpoint_trace_html_or_log(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PLANTED_KEY", API_KEY)
    suite = SUITES["codebase_qa"]
    with StandIn(
        rate=0.3, kinds=("500", "not_json", "429"), seed=3, responder=oracle_responder(suite.name)
    ) as server:
        url = server.base_url.replace("http://", f"http://alice:{URL_PASSWORD}@")
        retry = RetryPolicy(initial_interval=0.0, backoff_factor=1.0, jitter=False)
        ctx = standin_context(
            tmp_path, "secret", url, retry, key_env="PLANTED_KEY", timeout_s=2.0, max_retries=6
        )
        toml = tmp_path / "tierflow.toml"
        data = tmp_path / "data"
        item = load_items("codebase_qa")[0]
        result = await Runner(data, context=ctx).run(
            suite.graph, {**suite.make_input(item), "budget_usd": 0.5}
        )
    assert result.values["status"] == "answered"
    # The URL's credentials were used (as basic auth), just never written down.
    basic = "Basic " + base64.b64encode(f"alice:{URL_PASSWORD}".encode()).decode()
    assert set(server.authorizations) == {basic}
    assert any(r["error"] for r in result.values["usage"])  # error texts were recorded too
    runs = _wait_for_runs(recorder, wanted=3)
    html = tmp_path / "run.html"
    write_html(result, load_config("secret", config_file=toml), html)

    places = {
        "checkpoints": b"".join(p.read_bytes() for p in data.iterdir() if p.is_file()),
        "trace": json.dumps(runs, default=str).encode(),
        "html": html.read_bytes(),
        "logs": (caplog.text + "".join(capsys.readouterr())).encode(),
    }
    # The scan sees real content: the records name the endpoint (without its credentials).
    assert b"stand-in-flagship" in places["checkpoints"] and b"127.0.0.1" in places["checkpoints"]
    assert b"stand-in-" in places["trace"] and b"stand-in-" in places["html"]
    for name, blob in places.items():
        for secret in (API_KEY, URL_PASSWORD):
            assert secret.encode() not in blob, f"{secret} found in the {name}"
