"""A learned difficulty router: P(the weak model is right) from prompt features, and a threshold.

Unlike the word-hash router of :mod:`tierflow.calibration`, this one predicts difficulty from
dense features a caller computes: a prompt embedding (:mod:`tierflow.local.embed`), its
structure (:func:`structure_features`) and any domain one-hot. :func:`fit_router` picks a model
(k nearest neighbours or logistic regression) by cross-validation on calibration rows only,
then picks the threshold on the same rows' out-of-fold predictions, so the threshold meets its
target on predictions the model did not fit. The router is a small frozen value that
round-trips through JSON (:meth:`DifficultyRouter.to_dict`), so a graph can load it at run time;
prediction needs numpy, fitting scikit-learn (``pip install 'tierflow[evals]'``).

Example:
    >>> router = DifficultyRouter(kind="logistic", feature_names=("x",), mean=(0.0,),
    ...                           scale=(1.0,), weights=(2.0,), bias=0.0, threshold=0.5)
    >>> [round(p, 3) for p in router.p_weak([[1.0], [-1.0]])], router.send_weak([[1.0], [-1.0]])
    ([0.881, 0.119], [True, False])
    >>> DifficultyRouter.from_dict(router.to_dict()) == router
    True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

from tierflow.errors import InputError, SpecError

__all__ = [
    "DifficultyRouter",
    "STRUCTURE_FEATURES",
    "structure_features",
    "domain_features",
    "choose_threshold",
    "routed_outcome",
    "fit_router",
    "load_router",
    "ROUTER_FORMAT",
]

ROUTER_FORMAT = 1
Kind = Literal["logistic", "knn"]

STRUCTURE_FEATURES = (
    "log_chars", "log_words", "numbers", "log_max_number", "decimals", "sentences",
    "question_mark", "wh_word", "choices", "negation", "money", "percent", "fraction",
    "math_symbols", "formula",
)  # fmt: skip

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_WH = re.compile(r"\b(what|how|which|who|when|where|why)\b", re.IGNORECASE)
_CHOICE = re.compile(r"^\s*[A-D][.)]\s", re.MULTILINE)
_NEGATION = re.compile(r"\b(not|except|false|incorrect|least)\b", re.IGNORECASE)
_FRACTION = re.compile(r"\d+\s*/\s*\d+|\b(half|third|quarter|fifth)\b", re.IGNORECASE)
_MATH = re.compile(r"[=+*^<>√π∫]|\\frac|\\sqrt|\bmod\b")
_FORMULA = re.compile(r"\$[^$]+\$|\b[a-z]\s*[=<>]\s*\d|\b[a-z]\^\d|\bf\(x\)")


def structure_features(text: str) -> list[float]:
    """The :data:`STRUCTURE_FEATURES` of a prompt: its length, numbers and question form.

    Example:
        >>> dict(zip(STRUCTURE_FEATURES, structure_features("How many is 3 + 4?")))["numbers"]
        2.0
    """
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
    words = len(text.split())
    return [
        math.log1p(len(text)),
        math.log1p(words),
        float(len(numbers)),
        math.log1p(max(numbers, default=0.0)),
        float(sum("." in n for n in _NUMBER.findall(text))),
        float(len(re.findall(r"[.!?](?:\s|$)", text))),
        float("?" in text),
        float(bool(_WH.search(text))),
        float(len(_CHOICE.findall(text))),
        float(len(_NEGATION.findall(text))),
        float("$" in text and bool(re.search(r"\$\s?\d", text))),
        float("%" in text or "percent" in text.lower()),
        float(len(_FRACTION.findall(text))),
        float(len(_MATH.findall(text))),
        float(bool(_FORMULA.search(text))),
    ]


def domain_features(domain: str, domains: Sequence[str]) -> list[float]:
    """One-hot of ``domain`` over ``domains`` (all zero for a domain not in the list)."""
    return [float(domain == d) for d in domains]


@dataclass(frozen=True)
class DifficultyRouter:
    """Predicts P(weak model right) from a feature row; sends weak when it is >= threshold.

    Attributes:
        kind: ``logistic`` (``weights``, ``bias``) or ``knn`` (``points``, ``labels``, ``k``).
        feature_names: what each column of a row is, in order.
        mean, scale: the standardisation fitted on the calibration rows.
        threshold: send to the weak model when P(weak right) >= this.
        target: the share of the strong model's quality the threshold was chosen to keep.
        evidence: how it was chosen (cross-validation table, calibration figures).
    """

    kind: Kind
    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...] = ()
    bias: float = 0.0
    points: tuple[tuple[float, ...], ...] = ()
    labels: tuple[int, ...] = ()
    k: int = 0
    threshold: float = 0.5
    target: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        width = len(self.feature_names)
        if len(self.mean) != width or len(self.scale) != width:
            raise SpecError(
                f"DifficultyRouter: mean/scale have {len(self.mean)}/{len(self.scale)} values "
                f"for {width} features; give one per feature name"
            )
        if self.kind == "logistic" and len(self.weights) != width:
            raise SpecError(f"DifficultyRouter: {len(self.weights)} weights for {width} features")
        if self.kind == "knn" and (not self.points or self.k < 1):
            raise SpecError("DifficultyRouter(kind='knn') needs points, labels and k >= 1")

    def _standardised(self, rows: Sequence[Sequence[float]]) -> Any:
        import numpy as np

        x = np.asarray(rows, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise InputError(
                f"feature rows of shape {x.shape}; this router reads "
                f"{len(self.feature_names)} columns ({', '.join(self.feature_names[:4])}, ...)"
            )
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def p_weak(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """P(weak model right) for each feature row."""
        import numpy as np

        x = self._standardised(rows)
        if self.kind == "logistic":
            z = x @ np.asarray(self.weights) + self.bias
            return [float(v) for v in 1 / (1 + np.exp(-z))]
        points, labels = np.asarray(self.points), np.asarray(self.labels, dtype=float)
        out = []
        for row in x:
            nearest = np.argsort(((points - row) ** 2).sum(axis=1), kind="stable")[: self.k]
            out.append(float((labels[nearest].sum() + 0.5) / (len(nearest) + 1)))
        return out

    def send_weak(self, rows: Sequence[Sequence[float]]) -> list[bool]:
        """Whether each row goes to the weak model (P(weak right) >= threshold)."""
        return [p >= self.threshold for p in self.p_weak(rows)]

    def with_threshold(self, threshold: float) -> DifficultyRouter:
        """The same model at another threshold."""
        return replace(self, threshold=threshold)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        return {"format": ROUTER_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DifficultyRouter:
        """The router a :meth:`to_dict` (or its JSON) holds."""
        if raw.get("format") != ROUTER_FORMAT:
            raise InputError(
                f"difficulty router format {raw.get('format')!r}; this tierflow reads "
                f"{ROUTER_FORMAT}: refit it with tierflow.difficulty.fit_router"
            )
        body = {k: v for k, v in raw.items() if k != "format"}
        for key in ("feature_names", "mean", "scale", "weights", "labels"):
            body[key] = tuple(body.get(key, ()))
        body["points"] = tuple(tuple(p) for p in body.get("points", ()))
        return cls(**body)

    def save(self, path: Path | str) -> Path:
        """Write the router as JSON; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), separators=(",", ":")))
        return target


def load_router(path: Path | str) -> DifficultyRouter:
    """The router a :meth:`DifficultyRouter.save` wrote."""
    try:
        return DifficultyRouter.from_dict(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read a difficulty router from {path}: {exc}") from exc


def routed_outcome(
    weak: Sequence[bool],
    weak_right: Sequence[float],
    strong_right: Sequence[float],
    weak_cost: Sequence[float] | None = None,
    strong_cost: Sequence[float] | None = None,
) -> tuple[float, float]:
    """(mean quality, cost) of sending item i weak when ``weak[i]``, else strong.

    Cost is the sum of the chosen model's ``*_cost`` per item; without costs, the share of
    items sent to the strong model (RouteLLM's measure).

    Example:
        >>> routed_outcome([True, False], [1, 0], [1, 1], [1.0, 1.0], [10.0, 10.0])
        (1.0, 11.0)
        >>> routed_outcome([True, False, True, True], [1, 0, 0, 1], [1, 1, 1, 1])
        (0.75, 0.25)
    """
    n = len(weak)
    if not n:
        return 0.0, 0.0
    quality = sum(w if go else s for go, w, s in zip(weak, weak_right, strong_right, strict=True))
    if weak_cost is None or strong_cost is None:
        return quality / n, sum(not go for go in weak) / n
    cost = sum(c if go else t for go, c, t in zip(weak, weak_cost, strong_cost, strict=True))
    return quality / n, round(cost, 10)


def _lower_gap(
    weak: Sequence[bool],
    weak_right: Sequence[float],
    strong_right: Sequence[float],
    target: float,
    z: float,
) -> float:
    """A one-sided lower bound of (routed quality - ``target`` x strong quality), per item.

    ``z`` = 0 gives the mean itself; otherwise the mean less ``z`` standard errors of the
    per-item differences (a normal bound on a mean of paired differences).
    """
    d = [(w if go else s) - target * s for go, w, s in zip(weak, weak_right, strong_right,
                                                          strict=True)]  # fmt: skip
    n = len(d)
    mean = sum(d) / n if n else 0.0
    if not z or n < 2:
        return mean
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    return mean - z * math.sqrt(var / n)


def choose_threshold(
    p_weak: Sequence[float],
    weak_right: Sequence[float],
    strong_right: Sequence[float],
    target: float = 0.95,
    weak_cost: Sequence[float] | None = None,
    strong_cost: Sequence[float] | None = None,
    confidence: float | None = None,
) -> float:
    """The cheapest threshold whose routing keeps ``target`` x the strong model's quality.

    Item i goes weak when ``p_weak[i] >= threshold``. Thresholds tried: every distinct
    ``p_weak`` value and one above them all (everything strong, which always qualifies); ties
    in cost go to the higher quality. Use out-of-fold predictions, never the rows' own fit.

    ``confidence`` (e.g. 0.9): the target must hold with that confidence, not only on these
    rows. The thresholds are then tested in a fixed sequence, from everything strong towards
    cheaper (Learn then Test, Angelopoulos et al. 2021): each must keep a one-sided
    ``confidence`` lower bound of its quality gap at or above 0, and the first that does not
    ends the sequence, so one bad threshold cannot be picked for being lucky on these rows.

    Example:
        >>> choose_threshold([0.9, 0.6, 0.2], [1, 1, 0], [1, 1, 1], target=0.95)
        0.6
    """
    if not 0 < target <= 1:
        raise InputError(f"target {target!r}: give a share of the strong quality in (0, 1]")
    if confidence is not None and not 0.5 <= confidence < 1:
        raise InputError(f"confidence {confidence!r}: give a probability in [0.5, 1)")
    z = NormalDist().inv_cdf(confidence) if confidence else 0.0
    top = math.nextafter(max(p_weak, default=1.0), math.inf)
    best: tuple[float, float, float] | None = None  # (cost, -quality, threshold)
    for theta in sorted({*p_weak, top}, reverse=True):
        weak = [p >= theta for p in p_weak]
        quality, cost = routed_outcome(weak, weak_right, strong_right, weak_cost, strong_cost)
        meets = _lower_gap(weak, weak_right, strong_right, target, z) >= -1e-12
        if meets and (best is None or (cost, -quality) <= best[:2]):  # ties: the lower one
            best = (cost, -quality, theta)
        elif not meets and confidence and theta != top:
            break  # fixed sequence: the first threshold that fails ends the testing
    return top if best is None else best[2]


def fit_router(
    rows: Sequence[Sequence[float]],
    weak_right: Sequence[bool],
    strong_right: Sequence[bool],
    feature_names: Sequence[str],
    **options: Any,
) -> DifficultyRouter:
    """Select, fit and threshold a router on calibration rows (see :mod:`tierflow._difficulty_fit`).

    Args:
        rows: one feature row per calibration item.
        weak_right: whether the weak model was right on that item.
        strong_right: whether the strong model was right on it.
        feature_names: the name of each column.
        **options: ``target`` (0.95), ``candidates``, ``folds`` (5), ``seed`` (0),
            ``weak_cost`` / ``strong_cost`` per item (else cost is the share sent strong), and
            ``confidence`` (None: the target on these rows; 0.9: with 90% confidence, see
            :func:`choose_threshold`).
    """
    from tierflow._difficulty_fit import fit

    return fit(rows, weak_right, strong_right, tuple(feature_names), **options)
