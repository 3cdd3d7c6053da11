"""Code index build time on the installed langgraph package: cold, warm (cached) and one file changed.

Run: python bench/index_build.py [--rounds 5] [--quick] [--root DIR] [--json out.json]

The tree (default: the installed ``langgraph`` package) is copied to a temp folder so one file
can be changed. Each round, interleaved: a cold build into an empty cache folder, a warm build
from the cache it wrote (every file hashed, none parsed), and a build after appending a comment
to one file (exactly one re-parsed). Prints files, definitions, min and median seconds of each,
and the cold/warm ratio. No model calls; nothing fails: it only prints.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import table, write_json

from tierflow.tools.code_index import CodeIndex


def _langgraph_root() -> Path:
    spec = importlib.util.find_spec("langgraph")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("langgraph is not installed; pass --root DIR")
    return Path(next(iter(spec.submodule_search_locations)))


def _timed(root: Path, cache: Path) -> tuple[float, CodeIndex]:
    started = time.perf_counter()
    index = CodeIndex.build(root, cache_dir=cache)
    return time.perf_counter() - started, index


def measure(source: Path, rounds: int) -> dict[str, object]:
    """Interleaved cold, warm and one-file-changed builds of a copy of ``source``."""
    work = Path(tempfile.mkdtemp(prefix="index-bench-"))
    try:
        tree = work / source.name
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__"))
        victim = max(tree.rglob("*.py"), key=lambda p: p.stat().st_size)
        times: dict[str, list[float]] = {"cold": [], "warm": [], "one changed": []}
        parsed: dict[str, int] = {}
        index = None
        for number in range(rounds):
            cache = work / f"cache-{number}"
            for label in times:
                if label == "one changed":
                    victim.write_text(victim.read_text() + f"\n# bench round {number}\n")
                seconds, index = _timed(tree, cache)
                times[label].append(seconds)
                parsed[label] = index.stats.parsed
        assert index is not None
        started = time.perf_counter()
        for name in ("StateGraph", "RetryPolicy", "graph.StateGraph", "Pregel.invoke"):
            try:
                index.find_definition(name)
            except LookupError:
                pass
        lookup_ms = (time.perf_counter() - started) / 4 * 1000
        return {
            "tree": str(source),
            "files": index.stats.files,
            "definitions": len(index),
            "skipped": len(index.skipped),
            "seconds": times,
            "parsed": parsed,
            "lookup_ms": lookup_ms,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, object]) -> str:
    """The table: one row per build kind, then the cold/warm ratio."""
    seconds: dict[str, list[float]] = results["seconds"]  # type: ignore[assignment]
    parsed: dict[str, int] = results["parsed"]  # type: ignore[assignment]
    rows = [
        [label, parsed[label], min(values), statistics.median(values)]
        for label, values in seconds.items()
    ]
    ratio = statistics.median(seconds["cold"]) / statistics.median(seconds["warm"])
    head = (
        f"code index of {results['tree']}: {results['files']} files, "
        f"{results['definitions']} definitions, {results['skipped']} skipped"
    )
    lines = [head, "", table(["build", "files parsed", "min s", "median s"], rows)]
    lines.append(f"\ncold / warm (median): {ratio:.1f}x; a lookup: {results['lookup_ms']:.2f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    parser.add_argument("--root", type=Path, default=None, help="tree to index (default langgraph)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    rounds = 2 if args.quick else max(1, args.rounds)
    results = measure(args.root or _langgraph_root(), rounds)
    print(report(results))
    write_json(args.json, {"bench": "index_build", "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
