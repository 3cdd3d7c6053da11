"""The prompt tokens a local server did not evaluate, reported as OpenAI's ``cached_tokens``.

llama-cpp-python keeps the tokens of the last prompt in its context (and whole states in its
prompt cache); ``Llama.generate`` drops the part of the context that differs from the new
prompt and evaluates only the rest, so its first ``eval`` of a completion receives exactly the
prompt tokens it did not find. Counting those per chat request gives
``usage.prompt_tokens_details.cached_tokens = prompt_tokens - evaluated``, the same figure
``bench/main_job.py`` reads from the server's timings. A chat request may run more than one
completion (``chatml-function-calling`` first picks ``message`` or a function name); each
one's evaluation is counted, so the cached figure never claims a token that was evaluated.

Nothing here imports llama_cpp: :mod:`tierflow.local.llama_server` installs the wrappers, and
unit tests drive them with a stand-in ``Llama``.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "PromptMeter",
    "cached_tokens",
    "metered_chat_completion",
    "metered_eval",
    "metered_generate",
]


class PromptMeter:
    """Prompt tokens evaluated by the completions of one chat request."""

    def __init__(self) -> None:
        self.evaluated = 0
        self._pending = False  # a completion started and its prompt is not evaluated yet

    def begin(self) -> None:
        """A completion starts: its next ``eval`` is its prompt's (what the context lacked)."""
        self._pending = True

    def saw_eval(self, tokens: Sequence[int]) -> None:
        """Count an ``eval`` call if it is the first of a completion (the prompt suffix)."""
        if self._pending:
            self.evaluated += len(tokens)
            self._pending = False


_METER: contextvars.ContextVar[PromptMeter | None] = contextvars.ContextVar(
    "tierflow_prompt_meter", default=None
)


def cached_tokens(prompt_tokens: int, evaluated: int) -> int:
    """Prompt tokens served from the context or prompt cache, within ``[0, prompt_tokens]``.

    Example:
        >>> cached_tokens(1000, 120), cached_tokens(10, 30), cached_tokens(8, 0)
        (880, 0, 8)
    """
    prompt = max(int(prompt_tokens), 0)
    return min(max(prompt - int(evaluated), 0), prompt)


def metered_generate(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Llama.generate`` that tells the request's meter a completion starts."""

    @functools.wraps(original)
    def generate(self: Any, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        meter = _METER.get()
        if meter is not None:
            meter.begin()
        return original(self, tokens, *args, **kwargs)

    return generate


def metered_eval(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Llama.eval`` that counts the prompt tokens a completion had to evaluate."""

    @functools.wraps(original)
    def evaluate(self: Any, tokens: Sequence[int]) -> Any:
        meter = _METER.get()
        if meter is not None:
            meter.saw_eval(tokens)
        return original(self, tokens)

    return evaluate


def metered_chat_completion(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Llama.create_chat_completion`` whose answer reports its cached prompt tokens.

    Only a whole (not streamed) answer is changed: llama-cpp-python's streamed chunks carry no
    ``usage`` at all, and their completions run after this call has returned.
    """

    @functools.wraps(original)
    def create_chat_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        meter = PromptMeter()
        token = _METER.set(meter)
        try:
            answer = original(self, *args, **kwargs)
        finally:
            _METER.reset(token)
        usage = answer.get("usage") if isinstance(answer, dict) else None
        if isinstance(usage, dict) and "prompt_tokens" in usage:
            cached = cached_tokens(usage["prompt_tokens"], meter.evaluated)
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        return answer

    return create_chat_completion
