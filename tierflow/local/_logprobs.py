"""Chosen tokens' log-probabilities from a local server, without ``logits_all``.

llama-cpp-python answers ``logprobs`` only for a model built with ``logits_all=True``, which
keeps a logits row for every prompt token (``n_ctx`` x vocabulary floats: 2.5 GB on Qwen2.5 at
``n_ctx`` 4096) and computes the output layer on every prompt token. Sampling needs only the
last position's logits, which llama.cpp computes anyway: :func:`recorded_sample` reads that row
after each sampled token (``llama_get_logits_ith``; sampling copies it, so it is unchanged),
pairs it with the token, and keeps the token's log-probability and the ``k`` most likely
alternatives (:class:`TokenRecorder`). :func:`logprob_completion` then answers the request in
the completion shape llama-cpp-python's chat handlers already convert to OpenAI's
``choices[0].logprobs.content``.

The probabilities are of the model's own distribution (a log-softmax of the raw logits):
before ``logit_bias``, repetition penalties, a grammar and the temperature. Under a grammar
(a forced tool call, ``response_format``) the constrained distribution gives every forced token
probability 1 and renormalises the rest, so it says nothing about whether the model *meant*
the answer; the raw one does, is the same whatever the sampler settings (a threshold
calibrated at temperature 0 holds at 0.7), and costs one log-softmax of a row already in
memory (computing the constrained one would run the grammar over the whole vocabulary).

A request that does not ask for logprobs is untouched: the wrappers look up one context
variable per sampled token. A streamed request's chunks each carry their tokens' logprobs.
Nothing here imports llama_cpp; :mod:`tierflow.local.llama_server` installs it.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Step",
    "TokenRecorder",
    "completion_logprobs",
    "recorded_sample",
    "logprob_completion",
    "logprob_chat_completion",
]


@dataclass(frozen=True, slots=True)
class Step:
    """One sampled token: its id, log-probability and the most likely ``(id, logprob)``."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...]


class TokenRecorder:
    """The sampled tokens of one completion with their log-probabilities."""

    def __init__(self, top: int = 0) -> None:
        self.top = max(int(top), 0)
        self.steps: list[Step] = []

    def record(self, logits: np.ndarray, token: int) -> None:
        """Keep ``token``'s log-probability under ``logits`` (one row) and the top ``k``."""
        row = np.asarray(logits, dtype=np.float32)
        peak = float(row.max())
        norm = peak + float(np.log(np.exp(row - peak, dtype=np.float64).sum()))
        top: tuple[tuple[int, float], ...] = ()
        if self.top:
            k = min(self.top, row.size)
            best = np.argpartition(row, row.size - k)[row.size - k :]
            best = best[np.argsort(row[best])[::-1]]
            top = tuple((int(i), float(row[i]) - norm) for i in best)
        self.steps.append(Step(int(token), float(row[int(token)]) - norm, top))


_RECORDER: contextvars.ContextVar[TokenRecorder | None] = contextvars.ContextVar(
    "tierflow_token_recorder", default=None
)
# The chat request's top_logprobs while it runs: some handlers (chatml-function-calling's forced
# call) do not pass ``logprobs`` on to their completion, yet return what it gives.
_WANTED: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "tierflow_logprobs_wanted", default=None
)


def _last_logits(llama: Any, idx: int | None) -> np.ndarray:
    """The logits row the sampler read: position ``idx`` of the last batch (-1: its last)."""
    ridx = idx - llama.n_tokens if idx is not None else -1
    pointer = llama._ctx.get_logits_ith(ridx)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                 shape=(llama.n_vocab(),))  # fmt: skip


def recorded_sample(
    original: Callable[..., Any], logits_of: Callable[[Any, int | None], np.ndarray] = _last_logits
) -> Callable[..., Any]:
    """``Llama.sample`` that, while a recorder is active, records each sampled token."""

    @functools.wraps(original)
    def sample(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = original(self, *args, **kwargs)
        recorder = _RECORDER.get()
        if recorder is not None:
            recorder.record(logits_of(self, kwargs.get("idx")), int(token))
        return token

    return sample


def completion_logprobs(
    steps: Sequence[Step],
    text: str,
    piece: Callable[[int, Sequence[int]], bytes],
    top: int,
    start: int = 0,
    before: Sequence[int] = (),
) -> dict[str, Any]:
    """The completion-shape ``logprobs`` of the tokens that wrote ``text``.

    Generation may run past the returned text (a stop sequence, end of stream): the steps are
    kept while the bytes so far fall short of ``text``'s.

    Args:
        steps: the recorded tokens, in order.
        text: the completion's text, as returned.
        piece: ``(token, previous tokens) -> bytes`` (the detokenizer).
        top: alternatives per token wanted (the chosen one is always among them).
        start: the text offset of the first token (llama-cpp-python's: the prompt's length).
        before: the tokens generated before ``steps`` (a stream's earlier chunks).
    """
    want, seen = len(text.encode("utf-8")), b""
    tokens: list[str] = []
    offsets: list[int] = []
    chosen: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    ids: list[int] = list(before)
    for step in steps:
        if len(seen) >= want:
            break
        offsets.append(start + len(seen.decode("utf-8", errors="ignore")))
        raw = piece(step.token, ids)
        word = raw.decode("utf-8", errors="ignore")
        alternatives = {
            piece(i, ids).decode("utf-8", errors="ignore"): lp for i, lp in step.top[:top]
        }
        alternatives[word] = step.logprob
        tokens.append(word)
        chosen.append(step.logprob)
        tops.append(alternatives)
        ids.append(step.token)
        seen += raw
    return {
        "tokens": tokens,
        "text_offset": offsets,
        "token_logprobs": chosen,
        "top_logprobs": tops,
    }


def _piece(llama: Any) -> Callable[[int, Sequence[int]], bytes]:
    def piece(token: int, before: Sequence[int]) -> bytes:
        return bytes(llama.detokenize([token], prev_tokens=list(before)))

    return piece


def logprob_completion(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Llama.create_completion`` that answers ``logprobs=k`` without ``logits_all``.

    A model built with ``logits_all`` keeps its own path. A streamed answer's chunks each
    carry the logprobs of the tokens that wrote their text.
    """

    @functools.wraps(original)
    def create_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        k = kwargs.get("logprobs")
        k = _WANTED.get() if k is None else k
        if k is None or getattr(self, "_logits_all", False):
            return original(self, *args, **kwargs)
        prompt = kwargs.get("prompt", args[0] if args else "")
        start = len(prompt) if isinstance(prompt, str) else 0
        if kwargs.get("stream"):
            chunks = original(self, *args, **{**kwargs, "logprobs": None})
            return _streamed(self, chunks, int(k), start)
        recorder = TokenRecorder(int(k))
        token = _RECORDER.set(recorder)
        try:
            done = original(self, *args, **{**kwargs, "logprobs": None})
        finally:
            _RECORDER.reset(token)
        choice = done["choices"][0]
        choice["logprobs"] = completion_logprobs(
            recorder.steps, choice["text"], _piece(self), recorder.top, start
        )
        return done

    return create_completion


def _streamed(llama: Any, chunks: Iterator[Any], top: int, start: int) -> Iterator[Any]:
    """The chunks of a streamed completion, each with its tokens' logprobs.

    The recorder is active only while the next chunk is computed, in this frame: the server
    computes each chunk in a worker thread of its own context.
    """
    recorder, piece, used = TokenRecorder(top), _piece(llama), 0
    while True:
        token = _RECORDER.set(recorder)
        try:
            chunk = next(chunks, None)
        finally:
            _RECORDER.reset(token)
        if chunk is None:
            return
        choice = chunk["choices"][0]
        if choice.get("text"):
            done = [s.token for s in recorder.steps[:used]]
            lp = completion_logprobs(recorder.steps[used:], choice["text"], piece, top, start, done)
            used += len(lp["tokens"])
            start += len(choice["text"])
            choice["logprobs"] = lp
        yield chunk


def logprob_chat_completion(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Llama.create_chat_completion`` whose completions all see ``logprobs: true``.

    llama-cpp-python's chat handlers pass ``logprobs=top_logprobs if logprobs else None`` to
    the completion, so ``logprobs: true`` without ``top_logprobs`` (what OpenAI accepts, and
    what ``ChatOpenAI(logprobs=True)`` sends) would return none; a forced tool call passes
    nothing. Here ``logprobs: true`` alone means 0 alternatives, and every completion of the
    request records.
    """

    @functools.wraps(original)
    def create_chat_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("logprobs"):
            return original(self, *args, **kwargs)
        top = int(kwargs.get("top_logprobs") or 0)
        token = _WANTED.set(top)
        try:
            return original(self, *args, **{**kwargs, "top_logprobs": top})
        finally:
            _WANTED.reset(token)

    return create_chat_completion
