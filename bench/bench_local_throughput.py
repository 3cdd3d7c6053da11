"""Generation speed of each local model: the bare openai client vs ChatOpenAI, side by side.

Run: python bench/bench_local_throughput.py --reps 5
Starts the servers of the ``local`` profile that are not running and stops them afterwards.

ChatOpenAI sends ``max_tokens`` as ``max_completion_tokens``, which llama-cpp-python's server
ignores; ``extra_body`` repeats it as ``max_tokens`` so both clients generate the same tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import openai
from langchain_openai import ChatOpenAI

from tierflow.config import TierSpec, load_config
from tierflow.local import LocalServers

MESSAGES = [
    {"role": "system", "content": "You are a concise Python expert."},
    {"role": "user", "content": "Write a Python function that tells whether a number is prime."},
]
SAMPLING = {"temperature": 0, "seed": 1, "max_tokens": 64}


def direct_call(spec: TierSpec) -> Callable[[], int]:
    client = openai.OpenAI(base_url=spec.base_url, api_key="x", timeout=300, max_retries=0)

    def call() -> int:
        resp = client.chat.completions.create(model=spec.model, messages=MESSAGES, **SAMPLING)
        return resp.usage.completion_tokens

    return call


def langchain_call(spec: TierSpec) -> Callable[[], int]:
    llm = ChatOpenAI(
        base_url=spec.base_url,
        api_key=spec.api_key(),
        model=spec.model,
        timeout=spec.timeout_s,
        max_retries=0,
        extra_body={"max_tokens": SAMPLING["max_tokens"]},
        **SAMPLING,
    )

    def call() -> int:
        return llm.invoke(MESSAGES).usage_metadata["output_tokens"]

    return call


def timed(call: Callable[[], int]) -> tuple[int, float]:
    t0 = time.perf_counter()
    tokens = call()
    return tokens, tokens / (time.perf_counter() - t0)


def bench(spec: TierSpec, reps: int) -> dict[str, tuple[int, float]]:
    """Output tokens and median tokens/s per client; calls alternate so drift hits both alike."""
    calls = {"direct": direct_call(spec), "langchain": langchain_call(spec)}
    for call in calls.values():
        call()  # warm-up: prompt cache and connection
    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in calls}
    for i in range(reps):
        for name in list(calls) if i % 2 == 0 else list(reversed(calls)):
            runs[name].append(timed(calls[name]))
    return {n: (max(t for t, _ in r), statistics.median(s for _, s in r)) for n, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed requests per client")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--keep", action="store_true", help="leave started servers running")
    args = parser.parse_args()

    cfg = load_config(args.profile, require_keys=False)
    by_model: dict[str, TierSpec] = {}
    for name in cfg.ladder:  # one tier per distinct local model
        spec = cfg.tier(name)
        if spec.local_model:
            by_model.setdefault(spec.local_model, spec)
    servers = LocalServers(cfg)
    started = servers.up([s.name for s in by_model.values()])
    try:
        print(f"max_tokens={SAMPLING['max_tokens']}, temperature 0, median of {args.reps} reps")
        print(f"{'model':36} {'tier':9} {'tokens':>7} {'direct tok/s':>13} {'ChatOpenAI tok/s':>17}"
              f" {'ratio':>6}")  # fmt: skip
        for key, spec in by_model.items():
            res = bench(spec, args.reps)
            (n_direct, direct), (n_chat, chat) = res["direct"], res["langchain"]
            print(f"{key:36} {spec.name:9} {f'{n_direct}/{n_chat}':>7} {direct:13.1f} {chat:17.1f}"
                  f" {chat / direct:6.3f}")  # fmt: skip
    finally:
        if started and not args.keep:
            servers.down([r.tier for r in started])


if __name__ == "__main__":
    main()
