"""llama-cpp-python's OpenAI-compatible server, with two repairs tierflow's local tiers need.

Run as ``python -m tierflow.local.llama_server <llama_cpp.server arguments>`` (that is what
``tierflow local up`` starts). It is llama-cpp-python's own server with:

1. **A prompt cache whose size limit holds** (:class:`BoundedRAMCache`). llama-cpp-python's
   ``LlamaRAMCache`` keeps, with each saved state, a copy of the logits buffer (up to
   ``n_batch`` x vocabulary floats: 311 MB on Qwen2.5) that its size limit does not count;
   a bench run with it had a server OOM-killed at 13.9 GB. Sampling reads the logits from the
   llama.cpp context (restored with the state), so only the last row is kept, and the limit
   counts everything kept. With it, tasks that alternate on one server each find their own
   prefix again instead of re-evaluating their whole prompt.
2. **Work nobody waits for stops** (:class:`AbandonWatch`). The server computes a
   non-streamed request to the end even when the client has timed out and gone, so the
   client's retry queues behind it. The middleware notices the disconnect and the evaluation
   loop stops at the next batch of prompt tokens or the next generated token; the tokens
   evaluated so far stay in the context, so the retry reuses them as a prefix.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_cache import LlamaRAMCache

__all__ = ["BoundedRAMCache", "AbandonWatch", "RequestAbandoned", "main"]

_ABANDONED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "tierflow_abandoned", default=None
)


class RequestAbandoned(RuntimeError):
    """The client of the request being computed has disconnected."""


class BoundedRAMCache(LlamaRAMCache):
    """LlamaRAMCache that keeps one row of logits per state and counts it in its size."""

    @property
    def cache_size(self) -> int:
        """Bytes kept: the llama.cpp states and the logits rows beside them."""
        return sum(s.llama_state_size + s.scores.nbytes for s in self.cache_state.values())

    def __setitem__(self, key: Sequence[int], value: Any) -> None:
        scores = value.scores
        # load_state broadcasts this row over the rows it restores; nothing samples from them.
        value.scores = (
            scores[-1:].copy() if len(scores) else np.zeros((1, scores.shape[1]), np.single)
        )
        super().__setitem__(key, value)


class AbandonWatch:
    """ASGI middleware: marks a POST abandoned when its client disconnects before the answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI request, watching for its client's disconnect."""
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body: list[dict[str, Any]] = []
        while True:  # read the whole request first, so the watcher may own `receive`
            message = await receive()
            body.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        gone, replay = threading.Event(), list(body)
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            disconnected.set()

        async def replay_receive() -> dict[str, Any]:
            if replay:
                return replay.pop(0)
            await disconnected.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.create_task(watch())
        token = _ABANDONED.set(gone)
        try:
            await self.app(scope, replay_receive, send)
        finally:
            _ABANDONED.reset(token)
            watcher.cancel()


def _checked_eval(original: Any) -> Any:
    def evaluate(self: llama_cpp.Llama, tokens: Sequence[int]) -> None:
        gone = _ABANDONED.get()
        if gone is None:
            return original(self, tokens)
        step = max(1, int(self.n_batch))
        for i in range(0, len(tokens), step):  # one batch at a time, checking in between
            if gone.is_set():
                print(
                    f"tierflow: client gone; stopped after {self.n_tokens} evaluated tokens",
                    file=sys.stderr,
                    flush=True,
                )
                raise RequestAbandoned("the client disconnected")
            original(self, tokens[i : i + step])
        return None

    return evaluate


def main() -> None:
    """Start llama-cpp-python's server with the repairs above."""
    import llama_cpp.server.app as server_app
    from llama_cpp.server.__main__ import main as serve

    llama_cpp.LlamaRAMCache = BoundedRAMCache  # type: ignore[misc]  # what model.py builds
    llama_cpp.Llama.eval = _checked_eval(llama_cpp.Llama.eval)  # type: ignore[method-assign]
    create_app = server_app.create_app

    def create_watched_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.add_middleware(AbandonWatch)
        return app

    import llama_cpp.server.__main__ as entry

    entry.create_app = create_watched_app  # type: ignore[assignment]
    serve()


if __name__ == "__main__":
    main()
