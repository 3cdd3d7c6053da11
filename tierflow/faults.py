"""A fault-injecting OpenAI-compatible endpoint: a stand-in model, or a proxy to a real one.

Used by the reliability tests and ``bench/soak.py``; usable on its own::

    with StandIn(rate=0.2, seed=1) as s:          # a stand-in model behind the faults
        ...  # point a tier's base_url at s.base_url
    with StandIn(rate=0.2, upstream="http://127.0.0.1:8733/v1") as s:   # a proxy
        ...

Without ``upstream`` it answers ``POST /v1/chat/completions`` itself: a forced (or required)
tool call gets a schema-valid instance of that tool's parameters, drawn at random from a seed
that is the hash of the request's messages and tools. The same request always gets the same
answer, so a retried request continues the run exactly as if nothing had failed. A
``responder`` (request -> assistant message dict) answers instead, e.g. an eval oracle. With
``upstream`` (loopback only) every request without a fault is forwarded there.

At ``rate``, a fault chosen from ``kinds`` replaces the answer:

- ``500``: an internal server error;
- ``429``: a rate limit with ``Retry-After: 0``;
- ``slow``: the answer comes after the client's timeout;
- ``not_json``: a 200 whose body is an HTML error page;
- ``drop``: the connection closes with no response;
- ``bad_args``: a 200 whose tool call's arguments are not JSON (a model's fault, not the
  network's: the run must repair it, so the outcome may differ from a fault-free run).

Faults are drawn from their own seeded generator, so a harness run is reproducible. They are
bounded: at most ``max_faults`` of them, and none after ``fault_window_s`` seconds. The server
listens on 127.0.0.1 only.

It also serves the Batch API (``POST /v1/files``, ``POST /v1/batches``, ``GET
/v1/batches/{id}``, ``GET /v1/files/{id}/content``; see :mod:`tierflow._faults_batch`): each
line is answered as a chat completion request would be (the transport faults above do not
apply to lines); ``batch_polls``, ``batch_fail_lines`` and ``batch_expire`` set how long a
batch runs and which lines fail. ``s.batch.created`` counts the batches created.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tierflow._faults_batch import BatchDesk
from tierflow.errors import SpecError

__all__ = ["StandIn", "TRANSPORT_FAULTS", "ALL_FAULTS", "profile_toml", "standin_context"]

TRANSPORT_FAULTS = ("500", "429", "slow", "not_json", "drop")
ALL_FAULTS = (*TRANSPORT_FAULTS, "bad_args")


def _instance(schema: dict[str, Any], seed: int) -> Any:
    """A schema-valid value of a pydantic-made JSON schema, the same for the same seed."""
    return _draw(schema, schema.get("$defs") or {}, random.Random(seed), 0)


def _draw(s: dict[str, Any], defs: dict[str, Any], rng: random.Random, depth: int) -> Any:
    if "$ref" in s:
        return _draw(defs[s["$ref"].rsplit("/", 1)[-1]], defs, rng, depth)
    if "const" in s:
        return s["const"]
    if "enum" in s:
        return rng.choice(s["enum"])
    for key in ("oneOf", "anyOf"):
        if key in s:
            options = [o for o in s[key] if depth < 4 or o.get("type") == "null"] or s[key]
            return _draw(rng.choice(options), defs, rng, depth + 1)
    kind = s.get("type", "object")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        low = int(s["exclusiveMinimum"] + 1 if "exclusiveMinimum" in s else s.get("minimum", 0))
        return rng.randint(low, max(low, int(s.get("maximum", low + 500))))
    if kind == "number":
        return round(rng.uniform(float(s.get("minimum", 0)), float(s.get("maximum", 100))), 3)
    if kind == "string":
        words = ["retry", "policy", "state", "graph", "node", "value", "x", "class", "def"]
        n = max(int(s.get("minLength", 1)), 1)
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        return (text * n)[: s.get("maxLength", 200)] or "x"
    if kind == "array":
        low = int(s.get("minItems", 0))
        high = min(int(s.get("maxItems", low + 3)), low + 3)
        count = rng.randint(low, max(low, high)) if depth < 4 else low
        return [_draw(s.get("items") or {}, defs, rng, depth + 1) for _ in range(count)]
    props = s.get("properties") or {}
    required = set(s.get("required") or [])
    return {
        k: _draw(v, defs, rng, depth + 1)
        for k, v in props.items()
        if k in required or rng.random() < 0.5
    }


class StandIn:
    """The server; ``with StandIn(rate=0.2) as s:`` gives ``s.base_url``."""

    def __init__(
        self,
        rate: float = 0.0,
        kinds: tuple[str, ...] = TRANSPORT_FAULTS,
        seed: int = 0,
        slow_s: float = 1.5,
        *,
        upstream: str | None = None,
        responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        max_faults: int | None = None,
        fault_window_s: float | None = None,
        batch_polls: int = 1,
        batch_fail_lines: int = 0,
        batch_expire: int = 0,
    ) -> None:
        unknown = set(kinds) - set(ALL_FAULTS)
        if unknown or not 0.0 <= rate <= 1.0:
            raise SpecError(
                f"faults must be among {', '.join(ALL_FAULTS)} (got {sorted(unknown)}) and the "
                f"rate within 0..1 (got {rate}); pass kinds from that list and a rate in 0..1"
            )
        if upstream is not None and not upstream.startswith(
            ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")
        ):
            raise SpecError(
                f"upstream {upstream} is not a loopback URL: the proxy is local only; pass "
                "e.g. upstream='http://127.0.0.1:8731'"
            )
        self.rate, self.kinds, self.slow_s = rate, kinds, slow_s
        self.upstream = upstream.rstrip("/") if upstream else None
        self.responder = responder
        self.max_faults, self.fault_window_s = max_faults, fault_window_s
        self._started = time.monotonic()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.authorizations: Counter[str] = Counter()  # Authorization headers received
        self.requests = 0
        self.batch = BatchDesk(self._line_answer, batch_polls, batch_fail_lines, batch_expire)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self._rng.random() >= self.rate:
                return None
            if self.max_faults is not None and sum(self.faults.values()) >= self.max_faults:
                return None
            window = self.fault_window_s
            if window is not None and time.monotonic() - self._started > window:
                return None
            kind = self._rng.choice(self.kinds)
            self.faults[kind] += 1
            return kind

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _batch_reply(self, status: int, reply: Any) -> None:
                self._send(
                    status, reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                )

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._batch_reply(*outer.batch.get(self.path))

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.authorizations[self.headers.get("Authorization") or ""] += 1
                if self.path.startswith(("/v1/files", "/v1/batches")):
                    kind = self.headers.get("Content-Type") or ""
                    return self._batch_reply(*outer.batch.post(self.path, kind, raw))
                request = json.loads(raw)
                fault = outer._fault()
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "internal error"}}')
                if fault == "429":
                    err = b'{"error": {"message": "rate limited"}}'
                    return self._send(429, err, {"Retry-After": "0"})
                if fault == "not_json":
                    return self._send(200, b"<html><body>502 Bad Gateway</body></html>")
                if fault == "slow":
                    time.sleep(outer.slow_s)
                if outer.upstream is not None:
                    status, reply = outer.forward(self.path, raw)
                    if fault == "bad_args" and status == 200:
                        reply = _break_arguments(reply)
                else:
                    answer = outer.answer(request, broken=fault == "bad_args")
                    status, reply = 200, json.dumps(answer).encode()
                try:
                    self._send(status, reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a slow answer past its timeout)

        return Handler

    def forward(self, path: str, raw: bytes) -> tuple[int, bytes]:
        """Send the request on to the upstream server; its status and body."""
        assert self.upstream is not None
        url = self.upstream + path.removeprefix("/v1")
        request = urllib.request.Request(url, raw, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _line_answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A batch line's status and body: the stand-in's (or the upstream's) answer."""
        if self.upstream is None:
            return 200, self.answer(body)
        status, reply = self.forward("/v1/chat/completions", json.dumps(body).encode())
        return status, json.loads(reply)

    def answer(self, request: dict[str, Any], broken: bool = False) -> dict[str, Any]:
        """The stand-in model's completion for ``request``."""
        key = json.dumps([request.get("messages"), request.get("tools")], sort_keys=True)
        seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        tools = {t["function"]["name"]: t["function"] for t in request.get("tools") or []}
        choice = request.get("tool_choice")
        name = None
        if isinstance(choice, dict):
            name = choice.get("function", {}).get("name")
        elif tools and choice in ("required", "any", "auto", None):
            name = sorted(tools)[seed % len(tools)]
        message: dict[str, Any] = {"role": "assistant", "content": "ok"}
        if self.responder is not None:
            message = self.responder(request)
            if broken and message.get("tool_calls"):
                message["tool_calls"][0]["function"]["arguments"] = "{not json"
        elif name in tools:
            schema = tools[name].get("parameters") or {"type": "object"}
            args = "{not json" if broken else json.dumps(_instance(schema, seed))
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"call_{seed:x}", "type": "function",
                                "function": {"name": name, "arguments": args}}],
            }  # fmt: skip
        prompt = len(key) // 4
        return {
            "id": f"cmpl-{seed:x}",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "stand-in"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 20,
                      "total_tokens": prompt + 20},
        }  # fmt: skip


def _break_arguments(body: bytes) -> bytes:
    """The same completion with its first tool call's arguments made invalid JSON."""
    try:
        reply = json.loads(body)
        call = reply["choices"][0]["message"]["tool_calls"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return body
    call["function"]["arguments"] = "{not json"
    return json.dumps(reply).encode()


# USD per 1M tokens (input, cached input, output): the openai profile's published prices.
OPENAI_PRICES = {
    "nano": (0.2, 0.02, 1.25),
    "mini": (0.75, 0.075, 4.5),
    "flagship": (2.5, 0.25, 15.0),
}


def profile_toml(
    profile: str,
    base_url: str,
    prices: Mapping[str, tuple[float, float, float]] = OPENAI_PRICES,
    key_env: str | None = "STAND_IN_KEY",
    model: str | None = None,
    **fields: Any,
) -> str:
    """A tierflow.toml profile whose tiers (cheapest first) are all served at ``base_url``.

    Each tier's model is ``model``, or ``stand-in-<tier>`` (what :func:`tierflow.evals.
    scripted.oracle_responder` reads); its key comes from ``$<key_env>`` (none for a loopback
    server that needs none); ``fields`` (e.g. ``timeout_s=1.0``) are set on every tier.
    """
    lines = [f"[profiles.{profile}]", f"ladder = {json.dumps(list(prices))}"]
    for tier, (inp, cached, out) in prices.items():
        lines += [
            f"[profiles.{profile}.tiers.{tier}]",
            f"model = {json.dumps(model or f'stand-in-{tier}')}",
            f"base_url = {json.dumps(base_url)}",
            *([f"api_key_env = {json.dumps(key_env)}"] if key_env else []),
            f"price = {{ input = {inp}, cached_input = {cached}, output = {out} }}",
            *(f"{k} = {json.dumps(v)}" for k, v in fields.items()),
        ]
    return "\n".join(lines) + "\n"


def standin_context(work: Path, profile: str, base_url: str, retry: Any = None, **toml: Any) -> Any:
    """The RunContext of runs against a stand-in, with ``work/tierflow.toml`` written.

    The file declares ``profile`` (:func:`profile_toml` with ``toml``); runs are unattended and
    no shortcut skips a model.
    """
    from tierflow.runtime import RunContext

    config = work / "tierflow.toml"
    config.write_text(profile_toml(profile, base_url, **toml))
    return RunContext(
        profile=profile, config_file=str(config), retry=retry, unattended=True, shortcuts=False
    )
