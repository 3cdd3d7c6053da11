"""The one place chat models are built: a tier (and endpoint) becomes a ChatOpenAI client."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlparse

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatResult
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tierflow.config import Endpoint, Price, TierSpec, is_loopback, public_url
from tierflow.pricing import cache_read_tokens, cost_usd

__all__ = ["chat_model", "endpoints_of", "PricedChatOpenAI"]


class PricedChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose replies carry the tier's cost in ``usage_metadata``.

    ``input_cost``, ``output_cost`` and ``total_cost`` (USD, with the cached part of the input
    in ``input_cost_details.cache_read``) are the fields LangSmith reads for a run's cost, so
    a trace shows tierflow's price even for local or unpriced models. They are added where the
    reply is built, before any callback (LangSmith's tracer included) sees it.
    """

    price: Price
    # Prices of the service tiers a reply may report (flex, priority) where they differ.
    service_prices: dict[str, Price] = {}

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Serialized as langchain-openai's ChatOpenAI (traces show the familiar class)."""
        return ChatOpenAI.get_lc_namespace()

    def _create_chat_result(self, response: Any, generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        served = (result.llm_output or {}).get("service_tier") or self.service_tier
        price = self.service_prices.get(str(served), self.price)
        for generation in result.generations:
            usage = getattr(generation.message, "usage_metadata", None)
            if usage:
                usage.update(token_costs(price, usage))  # type: ignore[typeddict-item]
        return result


def token_costs(price: Price, usage: Mapping[str, Any]) -> dict[str, Any]:
    """LangSmith's cost fields for a reply's ``usage_metadata`` at ``price`` (USD per 1M tokens).

    Example:
        >>> token_costs(Price(input=2.0, cached_input=0.5, output=8.0),
        ...             {"input_tokens": 1000, "output_tokens": 100,
        ...              "input_token_details": {"cache_read": 400}})
        {'input_cost': 0.0014, 'output_cost': 0.0008, 'total_cost': 0.0022, 'input_cost_details': {'cache_read': 0.0002}}
    """
    cached = cache_read_tokens(usage)
    inp, out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    input_cost = cost_usd(price, input_tokens=inp, cached_tokens=cached, output_tokens=0)
    output_cost = cost_usd(price, input_tokens=0, output_tokens=out)
    cache_cost = cost_usd(price, input_tokens=cached, cached_tokens=cached, output_tokens=0)
    return {
        "input_cost": input_cost,
        "output_cost": output_cost,
        "total_cost": round(input_cost + output_cost, 10),
        "input_cost_details": {"cache_read": cache_cost},
    }


@lru_cache(maxsize=64)
def _rate_limiter(tier_name: str, base_url: str, rps: float) -> InMemoryRateLimiter:
    # One limiter per (tier, endpoint) per process, shared by every node that uses the tier.
    return InMemoryRateLimiter(
        requests_per_second=rps, check_every_n_seconds=0.05, max_bucket_size=1
    )


def endpoints_of(tier: TierSpec) -> list[Endpoint]:
    """The tier's primary endpoint followed by its fallbacks, in the order they are tried."""
    primary = Endpoint(base_url=tier.base_url, model=tier.model, api_key_env=tier.api_key_env)
    if tier.service_tier != "flex":
        return [primary, *tier.fallbacks]
    # Flex may answer 429 (no capacity): after its retries, the same model at the standard
    # service tier and price, before the declared fallbacks (which keep the tier's flex).
    return [primary, primary.model_copy(update={"service_tier": "default"}), *tier.fallbacks]


def chat_model(tier: TierSpec, endpoint: Endpoint | None = None) -> BaseChatModel:
    """Build the chat client for one tier (on its primary endpoint unless one is given).

    Retries are left to tierflow's call loop (``max_retries=0``) so that every failed attempt
    is recorded and the final failure can escalate instead of crashing the run.

    Example:
        >>> from tierflow.config import load_config
        >>> m = chat_model(load_config("local").tier("nano"))
        >>> m.model_name
        'qwen2.5-coder-0.5b-instruct'
    """
    endpoint = endpoint or endpoints_of(tier)[0]
    key_spec = tier.model_copy(update={"api_key_env": endpoint.api_key_env or tier.api_key_env})
    limiter = (
        _rate_limiter(tier.name, endpoint.base_url, tier.requests_per_second)
        if tier.requests_per_second
        else None
    )
    # llama-cpp-python's server ignores `max_completion_tokens` (what ChatOpenAI sends), so the
    # cap goes in the body as `max_tokens` for loopback servers; OpenAI's newer models reject it.
    extra_body = {"max_tokens": tier.max_output_tokens} if is_loopback(endpoint.base_url) else None
    # Credentials in the URL travel as HTTP basic auth (what httpx does with them anyway),
    # so the URL the client holds, and LangSmith serializes into every trace, has none.
    url = urlparse(endpoint.base_url)
    auth = (
        (unquote(url.username or ""), unquote(url.password or ""))  # (user, password): basic auth
        if url.username is not None or url.password is not None
        else None
    )
    service_tier = tier.service_tier_at(endpoint)
    # Sent only when set: a local server is never asked for what it may not know.
    settings: dict[str, Any] = {**tier.model_settings}
    if service_tier:
        settings["service_tier"] = service_tier
    return PricedChatOpenAI(
        price=tier.price,
        service_prices={t: tier.price_for(t) for t in ("flex", "priority")},
        **settings,
        model=endpoint.model or tier.model,
        base_url=public_url(endpoint.base_url),
        api_key=SecretStr(key_spec.api_key()),
        timeout=tier.timeout_s,
        max_retries=0,
        max_tokens=tier.max_output_tokens,  # type: ignore[call-arg]  # alias of max_completion_tokens
        temperature=0,
        rate_limiter=limiter,
        stream_usage=True,
        extra_body=extra_body,
        # A pool of its own: langchain-openai's shared default pool is bound to the first
        # event loop that used it, and a second asyncio.run would find it closed. The engine
        # builds new clients when the loop changes (Engine._same_loop).
        http_async_client=openai.DefaultAsyncHttpxClient(timeout=tier.timeout_s, auth=auth),
        http_client=openai.DefaultHttpxClient(timeout=tier.timeout_s, auth=auth) if auth else None,
    )
