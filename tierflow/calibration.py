"""Calibration files: per subagent, the start tier, router and verifier settings a graph uses.

``tierflow calibrate SUITE --target-quality 0.95`` measures every tier on the suite's
calibration split, trains a router on which tier first solved each item, picks the router's
threshold for the target quality, and writes one versioned JSON file. A graph reads it at run
time (``RunContext.calibration``, else ``.tierflow/calibration/<graph>.json``) and reports which
calibration it used in its state and trace.

The router is a logistic model on hashed word features of the task text plus its length and
digit count: small enough to read in the file, to run in microseconds with no dependency, and
to retrain in a second (``numpy`` only at training time).

Example:
    >>> r = RouterModel(weights=[0.0] * (BUCKETS + len(EXTRA)), bias=2.0, threshold=0.5,
    ...                 cheap_tier="nano", strong_tier="flagship")
    >>> r.pick("What is 2 + 2?")
    'nano'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierflow.errors import ConfigError

__all__ = [
    "Calibration",
    "SubagentCalibration",
    "RouterModel",
    "VerifierSettings",
    "features",
    "train_router",
    "load_calibration",
    "save_calibration",
    "calibration_path",
    "calibration_for",
    "subagent_calibration",
    "BUCKETS",
    "EXTRA",
    "FORMAT",
]

FORMAT = 1  # bumped when the file's schema changes; older files are refused with the fix
BUCKETS = 256  # hashed word and bigram buckets
EXTRA = ("log_chars", "digits", "sentences", "bias_term")  # dense features after the buckets
DEFAULT_DIR = Path(".tierflow") / "calibration"

_WORD = re.compile(r"[a-z]+|\d+")


def features(text: str, buckets: int = BUCKETS) -> list[float]:
    """Dense feature vector of a task text: hashed word/bigram counts (L2-normalised) + extras."""
    words = _WORD.findall(text.lower())
    vec = [0.0] * (buckets + len(EXTRA))
    grams = [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]
    for g in grams:
        vec[zlib.crc32(g.encode()) % buckets] += 1.0
    norm = math.sqrt(sum(v * v for v in vec[:buckets])) or 1.0
    for i in range(buckets):
        vec[i] /= norm
    vec[buckets] = math.log1p(len(text)) / 8
    vec[buckets + 1] = min(sum(c.isdigit() for c in text), 60) / 20
    vec[buckets + 2] = min(text.count(". ") + text.count("? ") + 1, 20) / 5
    vec[buckets + 3] = 1.0
    return vec


class RouterModel(BaseModel):
    """P(the cheap tier solves the task) from :func:`features`; start cheap when >= threshold."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["hashed-text-logistic"] = "hashed-text-logistic"
    buckets: int = BUCKETS
    weights: list[float]
    bias: float = 0.0
    threshold: float = Field(ge=0.0, le=1.0)
    cheap_tier: str
    strong_tier: str

    def p_cheap(self, text: str) -> float:
        """Predicted probability that the cheap tier's answer is right."""
        x = features(text, self.buckets)
        if len(x) != len(self.weights):
            raise ConfigError(
                "calibration.router",
                f"{len(self.weights)} weights for {len(x)} features",
                "re-run `tierflow calibrate` with this tierflow version",
            )
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def pick(self, text: str) -> str:
        """The starting tier of a task."""
        return self.cheap_tier if self.p_cheap(text) >= self.threshold else self.strong_tier


class VerifierSettings(BaseModel):
    """How a subagent's answers are checked before a cascade accepts them."""

    model_config = ConfigDict(frozen=True)

    kind: str  # agreement | tests | schema | format
    samples: int = 2  # agreement: answers compared (the first is the task's own)
    temperature: float = 0.7  # agreement: sampling temperature of the extra samples
    # Rejected answers sent back to their tier, with the reason, before a climb (None: as the
    # graph declares, which is what files written before this setting existed mean).
    repairs: int | None = None


class SubagentCalibration(BaseModel):
    """What calibration chose for one subagent, with the figures that justify it."""

    model_config = ConfigDict(frozen=True)

    start_tier: str
    ladder: list[str] | None = None  # the cascade's tiers, cheapest first (None: the profile's)
    router: RouterModel | None = None
    verifier: VerifierSettings | None = None
    evidence: dict[str, Any] = {}


class Calibration(BaseModel):
    """One calibration file (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    suite: str
    version: str = ""
    created_at: str = ""
    profile: str
    priced_at: str = "openai"
    target_quality: float
    items: int
    subagents: dict[str, SubagentCalibration]

    def label(self) -> str:
        """``suite@version``: what runs and traces show."""
        return f"{self.suite}@{self.version}"


def _version(cal: Calibration) -> str:
    body = cal.model_dump(exclude={"version", "created_at"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


def calibration_path(graph: str, explicit: str | None = None) -> Path:
    """The file a graph reads: ``explicit`` if given, else ``.tierflow/calibration/<graph>.json``."""
    return Path(explicit) if explicit else DEFAULT_DIR / f"{graph}.json"


def save_calibration(cal: Calibration, path: str | Path) -> Calibration:
    """Write ``cal`` with its content version and creation time; returns what was written."""
    stamped = cal.model_copy(
        update={"version": _version(cal), "created_at": dt.datetime.now(dt.UTC).isoformat()}
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(stamped.model_dump_json(indent=1))
    tmp.replace(target)
    return stamped


def load_calibration(path: str | Path, *, suite: str | None = None) -> Calibration:
    """Read a calibration file; a ConfigError says what is wrong and how to fix it."""
    where = str(path)
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(
            "calibration", f"cannot read {where}: {exc.strerror}", "run `tierflow calibrate`"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "calibration", f"{where} is not JSON ({exc.msg})", "re-run `tierflow calibrate`"
        ) from exc
    if isinstance(raw, Mapping) and raw.get("format") != FORMAT:
        raise ConfigError(
            "calibration",
            f"{where} has format {raw.get('format')!r}, this tierflow reads {FORMAT}",
            "re-run `tierflow calibrate`",
        )
    try:
        cal = Calibration.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(
            "calibration", f"{where}: {err['msg']} at {err['loc']}", "re-run `tierflow calibrate`"
        ) from exc
    if suite is not None and cal.suite != suite:
        raise ConfigError(
            "calibration",
            f"{where} calibrates '{cal.suite}', not '{suite}'",
            f"pass the file `tierflow calibrate {suite}` wrote",
        )
    return cal


@lru_cache(maxsize=32)
def _cached(path: str, mtime_ns: int, suite: str | None) -> Calibration:
    return load_calibration(path, suite=suite)


def calibration_for(
    graph: str | None, explicit: str | None, suite: str | None = None
) -> Calibration | None:
    """The calibration a run of ``graph`` uses: ``explicit``, else its default file if any.

    A file named explicitly (``RunContext.calibration``) must exist: a ConfigError says so.
    The default (``.tierflow/calibration/<graph>.json``) is optional; a graph with no name has
    none. Files are read once per modification time.
    """
    if not explicit and (graph is None or not calibration_path(graph).exists()):
        return None
    path = calibration_path(graph or "", explicit)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0  # load_calibration reports the missing file with its fix
    return _cached(str(path), mtime, suite)


def subagent_calibration(
    graph: str | None, subagent: str, explicit: str | None
) -> SubagentCalibration | None:
    """What the calibration of ``graph`` chose for one of its subagents, or None."""
    cal = calibration_for(graph, explicit)
    return cal.subagents.get(subagent) if cal is not None else None


def train_router(
    texts: Sequence[str],
    cheap_ok: Sequence[bool],
    *,
    l2: float = 1.0,
    epochs: int = 400,
    lr: float = 0.5,
) -> tuple[list[float], float]:
    """Fit the router's logistic weights (full-batch gradient descent, L2); returns (w, bias).

    Needs numpy (``pip install 'tierflow[evals]'``).
    """
    import numpy as np

    x = np.array([features(t) for t in texts], dtype=float)
    y = np.array([1.0 if ok else 0.0 for ok in cheap_ok])
    w, b, n = np.zeros(x.shape[1]), float(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3))), len(y)
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) / n + l2 * w / n)
        b -= lr * float(np.mean(p - y))
    return [round(float(v), 6) for v in w], round(b, 6)
