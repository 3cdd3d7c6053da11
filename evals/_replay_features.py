"""Prompt features of the RouteLLM replay: embeddings (committed compact copy) and structure.

The embeddings are computed once (``python -m tierflow.evals._replay_embed``, into the ignored
``.tierflow/routellm/``); :func:`write_compact` reduces them to principal components fitted on
the calibration rows only and stores them as float16 in ``bench/results/``, which is what the
report reads, so it reproduces without the model. A row whose prompt was not embedded (the
MMLU rows past the stratified subsample) is left out of the replay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tierflow.difficulty import STRUCTURE_FEATURES, domain_features, structure_features
from tierflow.errors import InputError
from tierflow.evals._routellm_data import ReplayRow, is_calibration

__all__ = [
    "COMPONENTS",
    "FEATURE_SETS",
    "compact_path",
    "write_compact",
    "load_compact",
    "feature_matrix",
]

COMPONENTS = 64  # principal components kept in the committed copy
RESULTS_DIR = Path(__file__).resolve().parents[1] / "bench" / "results"
# What the router may read, tried on the calibration rows (embedding: its first components).
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "structure": ("structure", "domain"),
    "embedding": ("embedding",),
    "embedding+structure": ("embedding", "structure", "domain"),
}


def compact_path(name: str, results_dir: Path | None = None) -> Path:
    """The committed compact embeddings of ``gsm8k`` or ``mmlu``."""
    return (results_dir or RESULTS_DIR) / f"routellm-{name}-embeddings.npz"


def write_compact(
    full: Mapping[str, Any], path: Path, *, components: int = COMPONENTS, meta: str = ""
) -> Path:
    """PCA (fitted on calibration keys only) of ``key -> embedding``, saved as float16."""
    import numpy as np

    keys = sorted(full)
    x = np.stack([np.asarray(full[k], dtype=np.float64) for k in keys])
    fit_rows = np.array([is_calibration(k) for k in keys])
    mean = x[fit_rows].mean(axis=0)
    _, sing, vt = np.linalg.svd(x[fit_rows] - mean, full_matrices=False)
    basis = vt[:components]
    reduced = (x - mean) @ basis.T
    explained = (sing[:components] ** 2).sum() / (sing**2).sum()
    path.parent.mkdir(parents=True, exist_ok=True)
    # mean and basis: what projects a new prompt's embedding, for a router used at run time.
    np.savez_compressed(path, keys=np.array(keys, dtype=str),
                        components=reduced.astype(np.float16), mean=mean.astype(np.float32),
                        basis=basis.astype(np.float16), explained=np.array([explained]),
                        meta=np.array([meta]))  # fmt: skip
    return path


def load_compact(path: Path) -> dict[str, Any]:
    """``key -> reduced embedding`` (float32) from a :func:`write_compact` file."""
    import numpy as np

    if not path.is_file():
        raise InputError(
            f"{path} is missing: run `nice -n 19 python -m tierflow.evals._replay_embed`, then "
            "the same with `--compact` (see bench/results/README.md)"
        )
    with np.load(path, allow_pickle=False) as data:
        vectors = data["components"].astype(np.float32)
        return dict(zip(data["keys"].tolist(), vectors, strict=True))


def feature_matrix(
    rows: Sequence[ReplayRow],
    embeddings: Mapping[str, Any],
    parts: Sequence[str],
    *,
    domains: Sequence[str] = (),
    components: int = 32,
) -> tuple[list[list[float]], tuple[str, ...]]:
    """One feature row per replay row from ``parts`` (embedding, structure, domain); the names."""
    names: list[str] = []
    if "embedding" in parts and rows:
        components = min(components, len(embeddings[rows[0].key]))
        names += [f"emb{i}" for i in range(components)]
    if "structure" in parts:
        names += list(STRUCTURE_FEATURES)
    if "domain" in parts:
        names += [f"domain={d}" for d in domains]
    matrix = []
    for row in rows:
        values: list[float] = []
        if "embedding" in parts:
            values += [float(v) for v in embeddings[row.key][:components]]
        if "structure" in parts:
            values += structure_features(row.prompt)
        if "domain" in parts:
            values += domain_features(row.domain, domains)
        matrix.append(values)
    return matrix, tuple(names)
