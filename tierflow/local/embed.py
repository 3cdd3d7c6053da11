"""Prompt embeddings from a local GGUF model (llama.cpp, in process), cached on disk by key.

Example:
    >>> from tierflow.local.embed import Embedder
    >>> embedder = Embedder()  # doctest: +SKIP
    >>> len(embedder.embed("How many eggs are left?"))  # doctest: +SKIP
    896
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tierflow.local.weights import INSTALL_HINT, LocalServerError, ensure_model

__all__ = ["DEFAULT_EMBED_MODEL", "Embedder", "embed_to_cache", "load_cache"]

DEFAULT_EMBED_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"


class Embedder:
    """Mean-pooled embeddings of a local GGUF model; prompts are cut to ``max_tokens``.

    One thread by default: an embedding pass shares the machine's cores with local servers.
    """

    def __init__(
        self, model: str = DEFAULT_EMBED_MODEL, *, max_tokens: int = 192, n_threads: int = 1
    ) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise LocalServerError("llama-cpp-python is not installed", INSTALL_HINT) from None
        self.model = model
        self.max_tokens = max_tokens
        self._llm: Any = llama_cpp.Llama(
            model_path=str(ensure_model(model)),
            embedding=True,
            n_ctx=max_tokens + 8,
            n_threads=n_threads,
            n_threads_batch=n_threads,  # prompt evaluation: llama.cpp defaults to all cores
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            verbose=False,
        )

    def embed(self, text: str) -> list[float]:
        """One prompt's embedding; text past ``max_tokens`` tokens is left out."""
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=True)[: self.max_tokens]
        text = self._llm.detokenize(tokens).decode("utf-8", errors="ignore")
        return list(self._llm.embed(text, truncate=True))


def load_cache(path: Path) -> dict[str, np.ndarray]:
    """Key -> vector from an ``embed_to_cache`` file; empty when there is none yet."""
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))


def _save(path: Path, cache: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    keys = np.array(list(cache), dtype=str)
    np.savez(tmp, keys=keys, vectors=np.stack(list(cache.values())).astype(np.float32))
    tmp.replace(path)


def embed_to_cache(
    items: Iterable[tuple[str, str]],
    path: Path,
    embed: Callable[[str], Sequence[float]],
    *,
    deadline: float | None = None,
    save_every: int = 50,
) -> dict[str, np.ndarray]:
    """Embed ``(key, text)`` items not yet in the cache at ``path``, saving as it goes.

    Stops early, keeping what is done, when ``time.time()`` passes ``deadline``: items come in
    the caller's order, so an order in which every prefix is a fair sample stays fair.
    """
    cache = load_cache(path)
    fresh = 0
    for key, text in items:
        if key in cache:
            continue
        if deadline is not None and time.time() > deadline:
            break
        cache[key] = np.asarray(embed(text), dtype=np.float32)
        fresh += 1
        if fresh % save_every == 0:
            _save(path, cache)
    if fresh:
        _save(path, cache)
    return cache
