"""Fitting a difficulty router: candidates scored by cross-validated AUC, then the threshold.

Every candidate is scored on the same stratified folds of the calibration rows (standardised
inside each fold). The best serialisable candidate by AUC is refitted on all calibration rows;
its threshold comes from its out-of-fold predictions. A gradient-boosted model
(scikit-learn's ``HistGradientBoostingClassifier``) is scored as a reference only: it does not
round-trip through JSON, so it is never the router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tierflow.difficulty import DifficultyRouter, choose_threshold, routed_outcome
from tierflow.errors import InputError

__all__ = ["Candidate", "DEFAULT_CANDIDATES", "cross_validated", "score_candidates", "fit"]


@dataclass(frozen=True)
class Candidate:
    """One model to try: ``knn`` (``param`` = k), ``logistic`` (``param`` = C) or ``hgb``."""

    kind: str
    param: float

    @property
    def label(self) -> str:
        """E.g. ``knn(k=25)``, ``logistic(C=0.1)``, ``hgb(lr=0.05)``."""
        name = {"knn": "k", "logistic": "C", "hgb": "lr"}[self.kind]
        shown = int(self.param) if self.kind == "knn" else self.param
        return f"{self.kind}({name}={shown})"

    @property
    def serialisable(self) -> bool:
        """Whether the fitted model can be the router (JSON, numpy-only prediction)."""
        return self.kind in ("knn", "logistic")


DEFAULT_CANDIDATES = (
    Candidate("knn", 15), Candidate("knn", 40), Candidate("knn", 100),
    Candidate("logistic", 0.01), Candidate("logistic", 0.1), Candidate("logistic", 1.0),
    Candidate("hgb", 0.05),
)  # fmt: skip


def _estimator(c: Candidate, n_train: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if c.kind == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(min(int(c.param), n_train)))
    if c.kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=c.param, max_iter=2000))
    if c.kind == "hgb":
        return HistGradientBoostingClassifier(
            learning_rate=c.param, max_iter=200, max_leaf_nodes=15, min_samples_leaf=20,
            l2_regularization=1.0, random_state=0,
        )  # fmt: skip
    raise InputError(f"unknown candidate kind {c.kind!r}; use knn, logistic or hgb")


def cross_validated(
    x: Any, y: Any, candidate: Candidate, folds: int = 5, seed: int = 0
) -> list[float]:
    """Out-of-fold P(weak right) of ``candidate`` for every row (stratified folds)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=int)
    out = np.zeros(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        model = _estimator(candidate, len(train)).fit(x[train], y[train])
        if candidate.kind == "knn":  # the smoothed share the fitted router computes
            k = model[-1].n_neighbors
            out[test] = (model.predict_proba(x[test])[:, 1] * k + 0.5) / (k + 1)
        else:
            out[test] = model.predict_proba(x[test])[:, 1]
    return [float(v) for v in out]


def score_candidates(
    x: Any, y: Any, candidates: Sequence[Candidate], folds: int = 5, seed: int = 0
) -> list[dict[str, Any]]:
    """Per candidate: its label, cross-validated AUC and Brier score, and OOF predictions."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    table = []
    for c in candidates:
        p = cross_validated(x, y, c, folds, seed)
        table.append({"candidate": c.label, "kind": c.kind, "param": c.param,
                      "auc": round(float(roc_auc_score(y, p)), 4),
                      "brier": round(float(brier_score_loss(y, p)), 4), "oof": p})  # fmt: skip
    return table


def _final(
    c: Candidate, x: Any, y: Any, names: tuple[str, ...], threshold: float
) -> DifficultyRouter:
    import numpy as np

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    base: dict[str, Any] = {"feature_names": names, "threshold": threshold,
                            "mean": tuple(float(v) for v in mean),
                            "scale": tuple(float(v) for v in scale)}  # fmt: skip
    if c.kind == "knn":
        points = tuple(tuple(round(float(v), 5) for v in row) for row in z)
        k = min(int(c.param), len(y))
        return DifficultyRouter(kind="knn", points=points, labels=tuple(int(v) for v in y),
                                k=k, **base)  # fmt: skip
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c.param, max_iter=2000).fit(z, y)
    return DifficultyRouter(kind="logistic", weights=tuple(float(v) for v in model.coef_[0]),
                            bias=float(model.intercept_[0]), **base)  # fmt: skip


def fit(
    rows: Sequence[Sequence[float]],
    weak_right: Sequence[bool],
    strong_right: Sequence[bool],
    names: tuple[str, ...],
    *,
    target: float = 0.95,
    candidates: Sequence[Candidate] = DEFAULT_CANDIDATES,
    folds: int = 5,
    seed: int = 0,
    weak_cost: Sequence[float] | None = None,
    strong_cost: Sequence[float] | None = None,
    confidence: float | None = None,
) -> DifficultyRouter:
    """The router of :func:`tierflow.difficulty.fit_router` (see this module's docstring)."""
    import numpy as np

    x, y = np.asarray(rows, dtype=float), np.asarray(weak_right, dtype=int)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(strong_right):
        raise InputError(
            f"{len(x)} feature rows, {len(y)} weak and {len(strong_right)} strong outcomes: "
            "give one of each per calibration item"
        )
    if min(np.bincount(y, minlength=2)) < folds:
        raise InputError(f"the weak model is right on {int(y.sum())} of {len(y)} rows; "
                         f"{folds}-fold cross-validation needs >= {folds} of each outcome")  # fmt: skip
    table = score_candidates(x, y, candidates, folds, seed)
    usable = [(t, c) for t, c in zip(table, candidates, strict=True) if c.serialisable]
    if not usable:
        raise InputError("no serialisable candidate (knn or logistic) to fit the router with")
    best, chosen = max(usable, key=lambda tc: tc[0]["auc"])
    strong = [float(s) for s in strong_right]
    threshold = choose_threshold(best["oof"], list(map(float, y)), strong, target,
                                 weak_cost, strong_cost, confidence)  # fmt: skip
    sent_weak = [p >= threshold for p in best["oof"]]
    quality, share = routed_outcome(sent_weak, list(map(float, y)), strong)
    evidence = {
        "rows": len(y), "folds": folds, "seed": seed, "chosen": chosen.label,
        "confidence": confidence,
        "cv": [{k: v for k, v in t.items() if k != "oof"} for t in table],
        "calibration_quality_vs_strong": round(quality / (sum(strong) / len(strong)), 4)
        if sum(strong) else None,
        "calibration_share_strong": round(share, 4),
    }  # fmt: skip
    return replace(_final(chosen, x, y, names, threshold), target=target, evidence=evidence)
