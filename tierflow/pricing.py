"""Token counts to US dollars, per request, with the tier's price per 1M tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tierflow.config import Price

__all__ = ["cost_usd", "cache_read_tokens"]

_PER = 1_000_000


def cost_usd(
    price: Price, *, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> float:
    """Cost of one request.

    ``input_tokens`` is the server's prompt-token count *including* cached tokens (OpenAI's
    convention); the cached part is billed at ``price.cached_input``.

    Example:
        >>> from tierflow.config import Price
        >>> cost_usd(Price(input=2.5, cached_input=0.25, output=15), input_tokens=1000,
        ...          cached_tokens=400, output_tokens=200)
        0.0046
    """
    cached = min(max(cached_tokens, 0), max(input_tokens, 0))
    fresh = max(input_tokens, 0) - cached
    total = fresh * price.input + cached * price.cached_input + max(output_tokens, 0) * price.output
    return round(total / _PER, 10)


def cache_read_tokens(usage: Mapping[str, Any]) -> int:
    """The cached input tokens of a reply's ``usage_metadata``.

    langchain-openai files them under ``flex_cache_read`` / ``priority_cache_read`` when the
    provider reports the flex or priority service tier, else under ``cache_read``.

    Example:
        >>> cache_read_tokens({"input_token_details": {"flex_cache_read": 40, "flex": 60}})
        40
    """
    details = usage.get("input_token_details") or {}
    keys = ("cache_read", "flex_cache_read", "priority_cache_read")
    return sum(int(details.get(k) or 0) for k in keys)
