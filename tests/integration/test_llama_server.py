"""tierflow's llama server (tierflow.local.llama_server) against a real model.

Three behaviours of the local tiers rest on it: tasks that alternate on one server find their
prefix in the prompt cache, a request whose client has given up stops computing, and native
(``tool_choice="auto"``) tool calling returns the calls the model writes. Figures come from
llama.cpp's own log lines, not from timings.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.integration

EVALUATED = re.compile(r"prompt eval time =\s+[\d.]+ ms /\s+(\d+) tokens")


def _ask(base_url: str, messages: list[dict[str, str]], max_tokens: int = 4) -> dict[str, Any]:
    body = json.dumps(
        {"model": "x", "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/chat/completions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)


def _system(topic: str) -> list[dict[str, str]]:
    rules = " ".join(f"Rule {i} of {topic}: be precise about item {i}." for i in range(60))
    return [{"role": "system", "content": rules}, {"role": "user", "content": "Say hi."}]


def _log_since(log: Path, offset: int) -> str:
    return log.read_bytes()[offset:].decode(errors="replace")


def test_alternating_prompts_each_find_their_prefix(nano_server: tuple[str, Path]) -> None:
    base_url, log = nano_server
    a, b = _system("tickets"), _system("search")
    _ask(base_url, a)
    _ask(base_url, b)  # a different prompt replaces a's tokens in the context
    offset = log.stat().st_size
    a2 = [*a, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "Again."}]
    usage = _ask(base_url, a2)["usage"]

    evaluated = [int(n) for n in EVALUATED.findall(_log_since(log, offset))]
    assert "cache hit" in _log_since(log, offset)
    assert usage["prompt_tokens"] > 600
    # Only the new turn is evaluated; without the cache the whole prompt would be.
    assert evaluated and sum(evaluated) < 60, evaluated


def test_a_request_whose_client_left_stops_computing(nano_server: tuple[str, Path]) -> None:
    base_url, log = nano_server
    offset = log.stat().st_size
    url = urlparse(base_url)
    body = json.dumps({
        "model": "x", "max_tokens": 400, "temperature": 0,
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
    }).encode()  # fmt: skip
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(1.0)  # it is generating now; the client gives up
    deadline = time.monotonic() + 120
    while "client gone" not in _log_since(log, offset) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "client gone" in _log_since(log, offset)
    # The server answers the next request, and the abandoned story was cut short.
    assert _ask(base_url, [{"role": "user", "content": "Say ok."}])["choices"]
    generated = re.findall(r"\beval time =\s+[\d.]+ ms /\s+(\d+) runs", _log_since(log, offset))
    assert all(int(n) < 400 for n in generated), generated


def test_native_tool_calling_returns_the_calls_the_model_makes(
    nano_server: tuple[str, Path],
) -> None:
    base_url, _ = nano_server
    factorial = {"type": "function", "function": {
        "name": "math_factorial", "description": "The factorial of a number.",
        "parameters": {"type": "object", "properties": {"number": {"type": "integer"}},
                       "required": ["number"]},
    }}  # fmt: skip
    body = json.dumps({
        "model": "x", "temperature": 0, "max_tokens": 64, "tool_choice": "auto",
        "tools": [factorial],
        "messages": [{"role": "user", "content": "What is the factorial of 5?"}],
    }).encode()  # fmt: skip
    request = urllib.request.Request(
        f"{base_url}/chat/completions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        choice = json.load(response)["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    assert choice["finish_reason"] == "tool_calls", choice
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("math_factorial", {"number": 5})
    ]
