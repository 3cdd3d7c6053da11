"""The replayed cascade on a response check: each rule's figures, and router+cascade's threshold.

A cascade keeps the weak model's answer when the check passes (:mod:`._replay_check`'s rules)
and asks the strong model otherwise; router+cascade also needs the router's score on the easy
side of a threshold chosen on calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tierflow.difficulty import DifficultyRouter, choose_threshold
from tierflow.evals._replay_check import RESPONSE_FEATURES, RULES, check_solution, response_features
from tierflow.evals._routellm_data import ReplayRow

__all__ = [
    "rule_table", "rates", "cascade_figures", "cascade_threshold", "scorer_matrix", "scorer_rows",
]  # fmt: skip


def rule_table(cal: Sequence[ReplayRow], target: float) -> tuple[str, list[dict[str, Any]]]:
    """Per check rule, its TPR/FPR and cascade figures on calibration; the rule chosen.

    Chosen: the fewest strong calls among rules whose cascade keeps ``target`` x the strong
    model's quality; without one, the rule of the highest quality.
    """
    strong_q = sum(r.strong_correct for r in cal) / len(cal)
    table = []
    for rule in RULES:
        kept = [check_solution(r.weak_response).passes(rule) for r in cal]
        table.append({"rule": rule, **rates(cal, kept), **cascade_figures(cal, kept, strong_q)})
    meets = [t for t in table if t["quality_vs_strong"] >= target - 1e-12]
    chosen = min(meets, key=lambda t: t["share_strong"]) if meets else max(
        table, key=lambda t: t["quality_vs_strong"])  # fmt: skip
    return chosen["rule"], table


def rates(rows: Sequence[ReplayRow], kept: Sequence[bool]) -> dict[str, float]:
    right = [k for r, k in zip(rows, kept, strict=True) if r.weak_correct]
    wrong = [k for r, k in zip(rows, kept, strict=True) if not r.weak_correct]
    return {"tpr": sum(right) / max(len(right), 1), "fpr": sum(wrong) / max(len(wrong), 1)}


def cascade_figures(
    rows: Sequence[ReplayRow], kept: Sequence[bool], strong_q: float
) -> dict[str, float]:
    quality = sum(
        r.weak_correct if k else r.strong_correct for r, k in zip(rows, kept, strict=True)
    )
    return {"quality_vs_strong": quality / len(rows) / strong_q if strong_q else 0.0,
            "share_strong": sum(not k for k in kept) / len(rows)}  # fmt: skip


def cascade_threshold(
    cal: Sequence[ReplayRow],
    oof: Sequence[float],
    rule: str,
    target: float,
    confidence: float | None = None,
) -> tuple[float, dict[str, float]]:
    """Router+cascade's threshold and its out-of-fold figures on calibration.

    A weak item is checked, and escalated on a fail.
    """
    kept = [check_solution(r.weak_response).passes(rule) for r in cal]
    path_q = [
        float(r.weak_correct if k else r.strong_correct) for r, k in zip(cal, kept, strict=True)
    ]
    path_calls = [0.0 if k else 1.0 for k in kept]
    strong = [float(r.strong_correct) for r in cal]
    threshold = choose_threshold(oof, path_q, strong, target, path_calls, [1.0] * len(cal),
                                 confidence)  # fmt: skip
    joint = [k and x >= threshold for k, x in zip(kept, oof, strict=True)]
    return threshold, cascade_figures(cal, joint, sum(strong) / len(strong))


def scorer_matrix(
    rows: Sequence[ReplayRow], p: Sequence[float], with_router: bool
) -> tuple[list[list[float]], tuple[str, ...]]:
    """The cascade scorer's features: Mixtral's response, and the router's score if asked."""
    x = [response_features(r.prompt, r.weak_response) + ([v] if with_router else [])
         for r, v in zip(rows, p, strict=True)]  # fmt: skip
    return x, RESPONSE_FEATURES + (("router_p_weak",) if with_router else ())


def scorer_rows(
    scorer: DifficultyRouter, rows: Sequence[ReplayRow], p: Sequence[float]
) -> list[list[float]]:
    """The feature rows ``scorer`` reads for ``rows`` (``p``: the router's scores of them)."""
    return scorer_matrix(rows, p, scorer.evidence.get("features") == "response+router")[0]
