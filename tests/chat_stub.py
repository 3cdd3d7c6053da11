"""A one-route stub HTTP server on a free loopback port, for tests of the OpenAI client path."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def stub_server(body: bytes, seen: list[dict[str, Any]] | None = None) -> Iterator[str]:
    """Answers every POST with status 200 and ``body`` (as JSON); yields its ``/v1`` URL.

    With ``seen``, every request's JSON body is appended to it (what the client sent).
    """

    class Stub(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if seen is not None:
                seen.append(json.loads(sent or b"{}"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def chat_server(
    usage: Mapping[str, Any],
    content: str = "hello",
    *,
    tool_call: tuple[str, Mapping[str, Any]] | None = None,
    seen: list[dict[str, Any]] | None = None,
) -> Any:
    """:func:`stub_server` answering one chat completion carrying ``usage``.

    With ``tool_call`` (a name and its arguments) the reply calls that tool instead.
    """
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_call is not None:
        name, args = tool_call
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": name, "arguments": json.dumps(dict(args))}}]}  # fmt: skip
    body = json.dumps({
        "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls" if tool_call else "stop",
                     "message": message}],
        "usage": dict(usage),
    }).encode()  # fmt: skip
    return stub_server(body, seen)


# A reply of :func:`recording_chat_server`: (HTTP status, JSON body).
Reply = tuple[int, Mapping[str, Any]]


@dataclass
class Recording:
    """What :func:`recording_chat_server` received: its ``/v1`` URL and each request's JSON body."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)


def completion(usage: Mapping[str, Any], content: str = "hello", **extra: Any) -> dict[str, Any]:
    """A chat completion carrying ``usage`` (``extra``: more top-level fields, e.g. service_tier)."""
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": dict(usage), **extra}  # fmt: skip


def rate_limited(message: str = "Resource unavailable") -> Reply:
    """A 429 as OpenAI answers it (flex processing without capacity)."""
    return 429, {"error": {"message": message, "type": "rate_limit_exceeded", "code": None}}


@contextmanager
def recording_chat_server(reply: Callable[[dict[str, Any]], Reply]) -> Iterator[Recording]:
    """A chat server that keeps every request's JSON body and answers ``reply(body)``."""
    recording = Recording()

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            recording.bodies.append(body)
            status, payload = reply(body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recording.url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield recording
    finally:
        server.shutdown()
        server.server_close()
