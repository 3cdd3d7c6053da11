"""Replayed policies: per-item outcomes and costs of each policy from the two models' records.

Each policy becomes a :class:`SuiteResult` like a live run's, with the strong model as the
``flagship`` tier and the weak model as ``nano`` (priced at a profile's tiers), so the live
benchmark report's table, curve and "what it would take" section read it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import HumanMessage
from langchain_core.messages.utils import count_tokens_approximately

from tierflow.config import Price, load_config
from tierflow.errors import InputError
from tierflow.evals._results import ExampleResult, SuiteResult
from tierflow.evals._routellm_data import ReplayRow
from tierflow.pricing import cost_usd

__all__ = [
    "SCORED",
    "ItemCosts",
    "item_costs",
    "tier_prices",
    "policy_result",
    "strong_calls",
    "bootstrap_ratio",
    "bootstrap_captured",
]

SCORED = "scored cascade"  # the policy of the cascade scorer (evals.replay)
MMLU_OUTPUT_TOKENS = 1  # RouteLLM's MMLU prompts end in "Answer:"; the reply is one letter


@dataclass(frozen=True)
class ItemCosts:
    """One item's tokens and USD on each model."""

    input_tokens: int
    weak_output: int
    strong_output: int
    weak_usd: float
    strong_usd: float


def tier_prices(profile: str, weak: str, strong: str) -> tuple[Price, Price]:
    """The prices of the ``weak`` and ``strong`` tiers of ``profile`` (no API key needed)."""
    cfg = load_config(profile, require_keys=False)
    missing = [t for t in (weak, strong) if t not in cfg.tiers]
    if missing:
        raise InputError(
            f"profile {profile!r} has no tier {', '.join(missing)}; pick from {sorted(cfg.tiers)}"
        )
    return cfg.tiers[weak].price, cfg.tiers[strong].price


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)  # count_tokens_approximately's 4 characters a token


def item_costs(row: ReplayRow, weak: Price, strong: Price) -> ItemCosts:
    """Input tokens approximated from the prompt; output from the responses where present."""
    prompt = int(count_tokens_approximately([HumanMessage(content=row.prompt)]))
    weak_out = _tokens(row.weak_response) if row.weak_response else MMLU_OUTPUT_TOKENS
    strong_out = _tokens(row.strong_response) if row.strong_response else MMLU_OUTPUT_TOKENS
    return ItemCosts(
        prompt, weak_out, strong_out,
        cost_usd(weak, input_tokens=prompt, output_tokens=weak_out),
        cost_usd(strong, input_tokens=prompt, output_tokens=strong_out),
    )  # fmt: skip


def _example(
    row: ReplayRow, c: ItemCosts, *, weak_share: float, checked: bool = False, accepted: bool = True
) -> ExampleResult:
    """The item's expected outcome when it goes weak with probability ``weak_share``.

    ``checked``: the weak answer is checked and, when not ``accepted``, the strong model is
    asked as well (a cascade: both paid, the strong answer kept).
    """
    w, s = float(row.weak_correct), float(row.strong_correct)
    if checked and weak_share:
        escalated = not accepted
        quality = s if escalated else w
        usd = c.weak_usd + (c.strong_usd if escalated else 0.0)
        out = c.weak_output + (c.strong_output if escalated else 0)
        tier = "flagship" if escalated else "nano"
        tokens_in = c.input_tokens * (2 if escalated else 1)
    else:
        escalated = False
        quality = weak_share * w + (1 - weak_share) * s
        usd = weak_share * c.weak_usd + (1 - weak_share) * c.strong_usd
        out = round(weak_share * c.weak_output + (1 - weak_share) * c.strong_output)
        tier = "nano" if weak_share >= 0.5 else "flagship"
        tokens_in = c.input_tokens
    return ExampleResult(
        id=row.key, quality=quality, scores={"correct": quality},
        subagent_quality={"solve": quality}, cost_usd=round(usd, 10), input_tokens=tokens_in,
        output_tokens=out, cached_tokens=0, latency_s=0.0, escalations=int(escalated),
        subagent_tiers={"solve": tier},
    )  # fmt: skip


def policy_result(
    suite: str,
    policy: str,
    rows: Sequence[ReplayRow],
    costs: Sequence[ItemCosts],
    weak_share: Sequence[float],
    profile: str,
    accepted: Sequence[bool] | None = None,
) -> SuiteResult:
    """A policy's :class:`SuiteResult`: item i goes weak with probability ``weak_share[i]``.

    With ``accepted`` (a cascade) an item sent weak is checked and, when not accepted, sent
    to the strong model too.
    """
    examples = tuple(
        _example(r, c, weak_share=p, checked=accepted is not None,
                 accepted=accepted[i] if accepted is not None else True)
        for i, (r, c, p) in enumerate(zip(rows, costs, weak_share, strict=True))
    )  # fmt: skip
    return SuiteResult(suite, policy, profile, examples)


def strong_calls(
    weak_share: Sequence[float], accepted: Sequence[bool] | None = None
) -> list[float]:
    """Per item, the (expected) number of strong-model calls: RouteLLM's cost, item by item.

    An item routed strong calls it once; one sent weak calls it only when a cascade's check
    rejects the weak answer (``accepted`` False).
    """
    if accepted is None:
        return [1.0 - p for p in weak_share]
    return [1.0 - p + (p if not ok else 0.0) for p, ok in zip(weak_share, accepted, strict=True)]


def bootstrap_ratio(
    policy_right: Sequence[float],
    strong_right: Sequence[float],
    sent_strong: Sequence[float],
    *,
    draws: int = 1000,
    seed: int = 0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% bootstrap intervals of (quality vs strong, share sent strong) over the items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    q, s, c = (np.asarray(v, dtype=float) for v in (policy_right, strong_right, sent_strong))
    picks = rng.integers(0, len(q), size=(draws, len(q)))
    ratio = q[picks].mean(axis=1) / np.maximum(s[picks].mean(axis=1), 1e-12)
    share = c[picks].mean(axis=1)
    low, high = np.percentile(ratio, [2.5, 97.5])
    s_low, s_high = np.percentile(share, [2.5, 97.5])
    return (float(low), float(high)), (float(s_low), float(s_high))


def bootstrap_captured(
    sent_strong: Sequence[float],
    perfect_sent: Sequence[float],
    *,
    draws: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% bootstrap interval of the captured share ``(1 - share) / (1 - perfect share)``.

    The same resamples as :func:`bootstrap_ratio` (same ``draws`` and ``seed``).

    Example:
        >>> bootstrap_captured([0.6] * 4, [0.2] * 4)  # every resample: 0.4 / 0.8
        (0.5, 0.5)
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    c, o = np.asarray(sent_strong, dtype=float), np.asarray(perfect_sent, dtype=float)
    picks = rng.integers(0, len(c), size=(draws, len(c)))
    saving = 1 - o[picks].mean(axis=1)
    share = (1 - c[picks].mean(axis=1)) / np.maximum(saving, 1e-12)
    low, high = np.percentile(share, [2.5, 97.5])
    return float(low), float(high)
