"""Trust signals from token log-probabilities: how sure the model was of the answer's key span.

A reply's log-probabilities come free with it (OpenAI chat completions ``logprobs``; tierflow's
local servers, :mod:`tierflow.local._logprobs`): no extra request. LangChain puts them in
``AIMessage.response_metadata["logprobs"]`` (``{"content": [{token, logprob, bytes,
top_logprobs}]}``) when the model is bound with :func:`logprob_params`. Each signal reads the
span of the reply that carries the answer and returns a confidence in [0, 1], or None when the
reply has no log-probabilities (an endpoint that gives none) or no such span:

- :func:`letter_confidence`: the chosen letter's probability (MMLU), alone or summed over its
  variants among the alternatives (``"A"``, ``" A"``), or as a share of the four letters' mass;
- :func:`number_confidence`: the final number's tokens (GSM8K: after the last "answer is");
- :func:`call_confidence`: the function names and argument values of tool calls (BFCL);
- :func:`field_confidence`: the JSON value of a named field (structured outputs generally).

A span's tokens are combined by ``how``: ``min`` (the least sure token), ``mean`` (mean
probability) or ``geo`` (geometric mean, exp of the mean log-probability); calibration picks
(``bench/trust_signals.py``), and :func:`threshold_for_fpr` picks the threshold.

Example:
    >>> lp = {"content": [{"token": "C", "logprob": -0.1, "top_logprobs": [
    ...     {"token": "C", "logprob": -0.1}, {"token": " C", "logprob": -3.0}]}]}
    >>> round(letter_confidence(lp, variants=False), 3), round(letter_confidence(lp), 3)
    (0.905, 0.955)
    >>> letter_confidence({"content": None}) is None
    True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tierflow.errors import InputError

__all__ = [
    "LOGPROBS", "TokenLogprob", "token_logprobs", "span_confidence", "letter_confidence",
    "number_confidence", "call_confidence", "field_confidence", "supports_logprobs",
    "logprob_params", "rates", "threshold_for_fpr",
]  # fmt: skip

LOGPROBS = "logprobs"
"""The key of the log-probabilities in ``response_metadata`` and in a check's context."""

How = Literal["min", "mean", "geo"]
_LETTERS = frozenset("ABCD")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One token of a reply: its text, log-probability, alternatives and offset in the reply."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]
    start: int

    @property
    def end(self) -> int:
        """The offset just past the token."""
        return self.start + len(self.token)


def token_logprobs(source: Any) -> list[TokenLogprob] | None:
    """The reply's tokens, from an AIMessage, its ``response_metadata`` or the logprobs payload.

    Returns None when there are none (an endpoint without logprobs, or not asked).
    """
    meta = getattr(source, "response_metadata", source)
    if isinstance(meta, Mapping) and LOGPROBS in meta:
        meta = meta[LOGPROBS]
    content = meta.get("content") if isinstance(meta, Mapping) else meta
    if not content or not isinstance(content, Sequence):
        return None
    tokens, at = [], 0
    for item in content:
        text = str(item.get("token") or "")
        top = tuple((str(t.get("token") or ""), float(t["logprob"]))
                    for t in item.get("top_logprobs") or [])  # fmt: skip
        tokens.append(TokenLogprob(text, float(item["logprob"]), top, at))
        at += len(text)
    return tokens


def _text(tokens: Sequence[TokenLogprob]) -> str:
    return "".join(t.token for t in tokens)


def _combine(logprobs: Sequence[float], how: How) -> float:
    if how == "min":
        return math.exp(min(logprobs))
    if how == "mean":
        return sum(math.exp(lp) for lp in logprobs) / len(logprobs)
    if how == "geo":
        return math.exp(sum(logprobs) / len(logprobs))
    raise InputError(f"how={how!r}: use 'min', 'mean' or 'geo'")


def span_confidence(
    tokens: Sequence[TokenLogprob] | None, spans: Iterable[tuple[int, int]], how: How = "min"
) -> float | None:
    """The confidence of the tokens that overlap any of ``spans`` (offsets in the reply).

    Example:
        >>> toks = token_logprobs({"content": [{"token": "is ", "logprob": 0.0},
        ...     {"token": "1", "logprob": -0.2}, {"token": "8", "logprob": -1.0}]})
        >>> round(span_confidence(toks, [(3, 5)], "min"), 3), span_confidence(toks, [(9, 9)])
        (0.368, None)
    """
    if not tokens:
        return None
    wanted = [(a, b) for a, b in spans if b > a]
    hit = [t.logprob for t in tokens if any(t.start < b and t.end > a for a, b in wanted)]
    return _combine(hit, how) if hit else None


def _bare(token: str) -> str:
    return token.strip().strip("()*.:[]").strip()


def letter_confidence(
    source: Any,
    letter: str | None = None,
    *,
    variants: bool = True,
    share: bool = False,
) -> float | None:
    """The probability of the answer's letter: the first token that is a letter A-D.

    Args:
        source: the reply (see :func:`token_logprobs`).
        letter: the letter the reply was read as (None: the first letter token).
        variants: add the alternatives that are the same letter (``"C"``, ``" C"``, ``"(C"``).
        share: divide by the mass of all four letters among the alternatives (the choice's
            probability among the choices, whatever else the model considered writing).
    """
    tokens = token_logprobs(source)
    found = next((t for t in tokens or [] if _bare(t.token) in _LETTERS
                  and (letter is None or _bare(t.token) == letter)), None)  # fmt: skip
    if found is None:
        return None
    mass = {t: math.exp(lp) for t, lp in (*found.top, (found.token, found.logprob))}
    chosen = _bare(found.token)
    p = sum(v for t, v in mass.items() if _bare(t) == chosen) if variants else mass[found.token]
    if share:
        total = sum(v for t, v in mass.items() if _bare(t) in _LETTERS)
        p = p / total if total > 0 else 0.0
    return min(p, 1.0)


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# As graphs/benchmarks' read_number reads the final answer: after the last "answer is".
_FINAL = re.compile(r"answer(?: is)?\s*[:=]?\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", re.I)


def number_confidence(source: Any, how: How = "min") -> float | None:
    """The confidence of the final number: after the last "answer is", else the last number.

    Example:
        >>> lp = {"content": [{"token": "So the answer is ", "logprob": 0.0},
        ...     {"token": "4", "logprob": -0.05}, {"token": "2", "logprob": -0.7}]}
        >>> round(number_confidence(lp), 3), round(number_confidence(lp, "mean"), 3)
        (0.497, 0.724)
    """
    tokens = token_logprobs(source)
    if not tokens:
        return None
    text = _text(tokens)
    finals = list(_FINAL.finditer(text))
    if finals:
        span = finals[-1].span(1)
    else:
        numbers = list(_NUMBER.finditer(text))
        if not numbers:
            return None
        span = numbers[-1].span()
    return span_confidence(tokens, [span], how)


_DECODER = json.JSONDecoder()
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')


def _value_span(text: str, at: int) -> tuple[int, int] | None:
    """The JSON value starting at ``at`` (a string's inside, without its quotes)."""
    try:
        _, end = _DECODER.raw_decode(text, at)
    except json.JSONDecodeError:
        return None
    return (at + 1, end - 1) if text[at] == '"' else (at, end)


def _member_spans(text: str, at: int) -> list[tuple[int, int]]:
    """The spans of the top-level values of the JSON object at ``at``."""
    spans: list[tuple[int, int]] = []
    end = _value_span(text, at)
    if end is None or text[at] != "{":
        return spans
    pos = at + 1
    while (key := _KEY.search(text, pos, end[1])) is not None:
        span = _value_span(text, key.end())
        if span is None:
            break
        spans.append(span)
        pos = span[1] + (1 if text[key.end()] == '"' else 0)
    return spans


def call_confidence(source: Any, how: How = "min") -> float | None:
    """The confidence of tool calls written as JSON: each function name and argument value.

    The reply's calls are ``{"name": ..., "arguments": {...}}`` objects (a structured answer,
    Qwen's ``<tool_call>`` blocks, a forced call's arguments); for a forced call the name is
    not in the reply (the request fixed it) and only the arguments count.
    """
    tokens = token_logprobs(source)
    if not tokens:
        return None
    text, spans = _text(tokens), []
    for key in _KEY.finditer(text):
        if key.group(1) == "name" and text[key.end() : key.end() + 1] == '"':
            span = _value_span(text, key.end())
            spans += [span] if span else []
        elif key.group(1) == "arguments":
            spans += _member_spans(text, key.end())
    if not spans and text.lstrip().startswith("{"):  # a forced call: the arguments alone
        spans = _member_spans(text, len(text) - len(text.lstrip()))
    return span_confidence(tokens, spans, how)


def field_confidence(source: Any, field: str, how: How = "min") -> float | None:
    """The confidence of the JSON value of ``field`` (its first occurrence) in the reply."""
    tokens = token_logprobs(source)
    if not tokens:
        return None
    text = _text(tokens)
    for key in _KEY.finditer(text):
        if key.group(1) == field:
            span = _value_span(text, key.end())
            return span_confidence(tokens, [span], how) if span else None
    return None


def supports_logprobs(spec: Any) -> bool:
    """Whether a tier's endpoint returns log-probabilities (its ``TierSpec``).

    tierflow's local servers do; so does OpenAI's chat completions API, except for reasoning
    models. Other endpoints are not asked: many reject the parameter.
    """
    if getattr(spec, "local_model", None):
        return True
    openai = "api.openai.com" in str(getattr(spec, "base_url", ""))
    return openai and getattr(spec, "reasoning_effort", None) is None


def logprob_params(spec: Any, top_logprobs: int = 5) -> dict[str, Any]:
    """The request parameters that ask ``spec``'s endpoint for logprobs (``{}`` if it has none).

    Example:
        >>> from types import SimpleNamespace
        >>> logprob_params(SimpleNamespace(local_model="qwen", base_url="http://127.0.0.1:1"))
        {'logprobs': True, 'top_logprobs': 5}
        >>> logprob_params(SimpleNamespace(local_model=None, base_url="https://x.example/v1"))
        {}
    """
    if not supports_logprobs(spec):
        return {}
    return {"logprobs": True, "top_logprobs": int(top_logprobs)}


def rates(
    scores: Sequence[float | None], right: Sequence[bool], threshold: float
) -> tuple[float, float]:
    """(TPR, FPR): the shares of right and of wrong answers kept (score >= ``threshold``).

    A missing score (None) keeps nothing.
    """
    kept = [s is not None and s >= threshold for s in scores]
    n_right = sum(right)
    n_wrong = len(right) - n_right
    tpr = sum(k for k, r in zip(kept, right, strict=True) if r) / n_right if n_right else 0.0
    fpr = sum(k for k, r in zip(kept, right, strict=True) if not r) / n_wrong if n_wrong else 0.0
    return tpr, fpr


def threshold_for_fpr(
    scores: Sequence[float | None], right: Sequence[bool], max_fpr: float = 0.1
) -> float:
    """The lowest threshold that keeps at most ``max_fpr`` of the wrong answers.

    The lowest such threshold keeps the most right answers. Above every score (nothing kept)
    when no threshold meets the target.

    Example:
        >>> threshold_for_fpr([0.9, 0.8, 0.6, 0.3], [True, True, False, False], 0.0)
        0.8
    """
    if not 0.0 <= max_fpr <= 1.0:
        raise InputError(f"max_fpr={max_fpr!r}: give a share from 0 to 1")
    seen = sorted({s for s in scores if s is not None})
    for t in seen:
        if rates(scores, right, t)[1] <= max_fpr + 1e-12:
            return t
    return math.nextafter(seen[-1], math.inf) if seen else 1.0
