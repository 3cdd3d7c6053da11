"""Compute the prompt embeddings of the RouteLLM replay once, into an ignored cache.

Run as ``nice -n 19 python -m tierflow.evals._replay_embed --until 03:00`` (UTC): one process,
one thread. GSM8K is embedded whole; MMLU in an order where every prefix is stratified by
subject, so stopping at the deadline leaves a documented stratified subsample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from tierflow.evals._routellm_data import load_rows, stratified_order

__all__ = ["CACHE_DIR", "cache_path", "main"]

CACHE_DIR = Path(".tierflow") / "routellm"


def cache_path(name: str, root: Path | None = None) -> Path:
    """Where the full-size embeddings of ``name`` are cached (ignored by git)."""
    return (root or Path.cwd()) / CACHE_DIR / f"{name}-embeddings.npz"


def _deadline(until: str) -> float:
    hour, minute = (int(x) for x in until.split(":"))
    now = dt.datetime.now(dt.UTC)
    end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if end < now:
        end += dt.timedelta(days=1)
    return end.timestamp()


def _compact(name: str, max_tokens: int) -> None:
    from tierflow.evals._replay_features import compact_path, write_compact
    from tierflow.local.embed import DEFAULT_EMBED_MODEL, load_cache

    full = load_cache(cache_path(name))
    meta = f"{DEFAULT_EMBED_MODEL}, mean-pooled, first {max_tokens} tokens, {len(full)} rows"
    path = write_compact(full, compact_path(name), meta=meta)
    print(f"{name}: {len(full)} rows -> {path} ({path.stat().st_size} bytes)", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Embed GSM8K, then MMLU, until ``--until`` (HH:MM UTC); ``--compact``: write the copies."""
    parser = argparse.ArgumentParser(prog="python -m tierflow.evals._replay_embed")
    parser.add_argument("--until", default="03:00", help="stop time, HH:MM UTC")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--sets", default="gsm8k,mmlu")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="only write the committed compact copies from the cache",
    )
    args = parser.parse_args(argv)
    if args.compact:
        for name in args.sets.split(","):
            _compact(name, args.max_tokens)
        return
    from tierflow.local.embed import Embedder, embed_to_cache

    deadline = _deadline(args.until)
    embedder = Embedder(max_tokens=args.max_tokens, n_threads=1)
    for name in args.sets.split(","):
        rows = load_rows(name)
        if name == "mmlu":
            rows = stratified_order(rows)
        start = time.time()
        done = embed_to_cache(
            ((r.key, r.prompt) for r in rows),
            cache_path(name),
            embedder.embed,
            deadline=deadline,
        )
        print(f"{name}: {len(done)} of {len(rows)} rows in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
