"""Trust signals from token log-probabilities: how well each separates nano's right answers from wrong.

Run alone on the local models (2 cores; starts the ``nano`` server if none runs, stops it after):

    python bench/trust_signals.py --json bench/results/trust-signals-local.json

For MMLU and GSM8K, nano answers each calibration and report item once, as the cascade's first
attempt does (the subagent's prompt and rendering, temperature 0, its output cap), with
``logprobs`` and ``top_logprobs`` asked. Each signal of :data:`tierflow.graphs.benchmarks.specs.SIGNALS`
gets its threshold on the calibration items (the lowest that keeps at most ``--max-fpr`` of
nano's wrong answers); on the report items it prints the share of nano's right answers kept
(TPR), of its wrong ones kept (FPR) and the AUROC, beside the agreement check's figures from
``bench/results/<suite>-local.md``. Items as the benchmark reports use them: GSM8K calibration
ids 0-99 and report ids 400-699 (ids 800-1318 are never loaded), MMLU the first 100 items of
dev+validation and the first 300 of test (``--calib-limit``, ``--limit``). Every signal costs
0 extra requests: the log-probabilities come with the answer.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import quiet_env, table, write_json
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from tierflow.config import load_config
from tierflow.errors import InputError
from tierflow.evals.benchmarks import gsm8k, mmlu
from tierflow.graphs.benchmarks.specs import CASCADES, SIGNALS, confidence_verifier
from tierflow.models import chat_model
from tierflow.nodes.cascade import Cascade
from tierflow.trust import LOGPROBS, logprob_params, rates, threshold_for_fpr

RESULTS = Path(__file__).parent / "results"
_AGREEMENT = re.compile(
    r"accepts ([\d.]+)% of the cheap tier's right answers and ([\d.]+)% of its wrong"
)
Ask = Callable[[list[BaseMessage], int], AIMessage]


def _items(suite: str, calib: int, report: int) -> dict[str, list[dict[str, Any]]]:
    if suite == "gsm8k":
        split = {
            "calib": gsm8k.load("calib", limit=calib),
            "report": gsm8k.load("report", limit=report),
        }
        assert all(i["index"] < gsm8k.RESERVED_FROM for s in split.values() for i in s)
        return split
    if suite == "mmlu":
        return {
            "calib": mmlu.load("calib", limit=calib),
            "report": mmlu.load("report", limit=report),
        }
    raise InputError(f"suite {suite!r}: use gsm8k or mmlu")


def _task(suite: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """The cascade's task of an item, as ``tierflow eval`` builds it."""
    if suite == "gsm8k":
        return {"question": item["question"]}
    return {"subject": item["subject"].replace("_", " "), "question": item["question"],
            "choices": dict(zip("ABCD", item["choices"], strict=False))}  # fmt: skip


def _messages(spec: Cascade, task: Mapping[str, Any]) -> list[BaseMessage]:
    """What the subagent sends on its first attempt: its prompt, then the rendered task."""
    sub = spec.subagent
    assert sub.render_task is not None
    return [
        SystemMessage(sub.prompt.strip()),
        HumanMessage(sub.render_task(sub.task_schema.model_validate(task))),
    ]


def _right(suite: str, item: Mapping[str, Any], output: Mapping[str, Any] | None) -> bool:
    if output is None:
        return False
    module = gsm8k if suite == "gsm8k" else mmlu
    return module.score(dict(item), output.get("answer")) == 1.0  # type: ignore[arg-type]


def answer_items(
    suite: str, items: Sequence[Mapping[str, Any]], ask: Ask, split: str
) -> list[dict[str, Any]]:
    """Nano's answer to each item, graded, with every signal's confidence of it."""
    spec = CASCADES[suite]
    sub = spec.subagent
    assert sub.read_reply is not None
    rows = []
    for n, item in enumerate(items, start=1):
        task = _task(suite, item)
        t0 = time.perf_counter()
        message = ask(_messages(spec, task), sub.max_output_tokens or 256)
        seconds = time.perf_counter() - t0
        logprobs = message.response_metadata.get(LOGPROBS)
        if n == 1 and not (logprobs or {}).get("content"):
            raise InputError(
                "the nano server returned no logprobs: it runs code from before they were "
                "served; restart it (tierflow local down, then rerun this bench)"
            )
        parsed = sub.read_reply(str(message.content))
        output = parsed.model_dump() if parsed is not None else None
        signals = {name: (fn(logprobs, output) if output is not None and logprobs else None)
                   for name, fn in SIGNALS[suite].items()}  # fmt: skip
        rows.append({"id": item["id"], "split": split, "right": _right(suite, item, output),
                     "answer": output.get("answer") if output else None, "seconds": round(seconds, 2),
                     "task": task, "output": output, LOGPROBS: logprobs, "signals": signals})  # fmt: skip
        if n % 25 == 0:
            print(f"  {suite} {split}: {n}/{len(items)}", flush=True)
    return rows


def auroc(scores: Sequence[float | None], right: Sequence[bool]) -> float | None:
    """P(a right answer scores above a wrong one), ties half; a missing score counts as 0."""
    pos = [s or 0.0 for s, r in zip(scores, right, strict=True) if r]
    neg = [s or 0.0 for s, r in zip(scores, right, strict=True) if not r]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def judge(suite: str, rows: list[dict[str, Any]], max_fpr: float) -> dict[str, Any]:
    """Each signal's calibrated threshold and its report TPR/FPR; the verifier rechecks them."""
    calib = [r for r in rows if r["split"] == "calib"]
    report = [r for r in rows if r["split"] == "report"]
    figures: dict[str, Any] = {}
    for name in SIGNALS[suite]:
        c_scores, c_right = [r["signals"][name] for r in calib], [r["right"] for r in calib]
        t = threshold_for_fpr(c_scores, c_right, max_fpr)
        r_scores, r_right = [r["signals"][name] for r in report], [r["right"] for r in report]
        tpr, fpr = rates(r_scores, r_right, t)
        # The verifier itself on the report items: it must keep what the rates say it keeps.
        verifier = confidence_verifier(suite, name, t) if t <= 1.0 else None  # None: keep none
        kept = [bool(verifier and (v := verifier.settle(r["task"], r["output"], {LOGPROBS: r[LOGPROBS]}))
                     and v.ok) for r in report]  # fmt: skip
        figures[name] = {
            "threshold": t, "calib_tpr_fpr": rates(c_scores, c_right, t), "tpr": tpr, "fpr": fpr,
            "auroc": auroc(r_scores, r_right), "calib_auroc": auroc(c_scores, c_right),
            "verifier_kept": sum(kept), "rates_kept": sum(x is not None and x >= t for x in r_scores),
            "extra_requests": 0,
        }  # fmt: skip
    best = max(
        figures, key=lambda n: (figures[n]["calib_tpr_fpr"][0], figures[n]["calib_auroc"] or 0)
    )
    accuracy = {s: sum(r["right"] for r in rows if r["split"] == s) / max(1, sum(r["split"] == s for r in rows))
                for s in ("calib", "report")}  # fmt: skip
    return {
        "signals": figures,
        "chosen": best,
        "nano_accuracy": accuracy,
        "agreement": agreement(suite),
    }


def agreement(suite: str) -> dict[str, float] | None:
    """The agreement check's TPR/FPR as the benchmark report measured them."""
    path = RESULTS / f"{suite}-local.md"
    found = _AGREEMENT.search(path.read_text()) if path.exists() else None
    return (
        {"tpr": float(found.group(1)) / 100, "fpr": float(found.group(2)) / 100} if found else None
    )


def report(suite: str, result: Mapping[str, Any], max_fpr: float) -> str:
    """One suite's table: each signal beside the agreement check."""
    acc = result["nano_accuracy"]
    head = (f"{suite}: nano right on {acc['calib']:.1%} of calibration, {acc['report']:.1%} of report items; "
            f"thresholds keep <= {max_fpr:.0%} of wrong calibration answers")  # fmt: skip
    rows = []
    for name, f in result["signals"].items():
        mark = " (chosen)" if name == result["chosen"] else ""
        rows.append(
            [
                name + mark,
                f["threshold"],
                f["tpr"],
                f["fpr"],
                f["auroc"] if f["auroc"] is not None else "-",
                0,
            ]
        )
    agree = result["agreement"]
    if agree:
        rows.append(["agreement, 2 samples (report)", "-", agree["tpr"], agree["fpr"], "-", 1])
    return (
        head + "\n" + table(["signal", "threshold", "TPR", "FPR", "AUROC", "extra requests"], rows)
    )


def nano_asker(profile: str, top: int) -> Ask:
    """``ask(messages, max_tokens)`` on the profile's nano tier, logprobs asked for."""
    spec = load_config(profile, require_keys=False).tier("nano")
    params = logprob_params(spec, top)
    if not params:
        raise InputError(f"tier nano of profile {profile!r} gives no logprobs; use a local profile")
    model = chat_model(spec)

    def ask(messages: list[BaseMessage], max_tokens: int) -> AIMessage:
        bound = model.bind(**params, max_tokens=max_tokens, extra_body={"max_tokens": max_tokens})
        return bound.invoke(messages)  # type: ignore[return-value]

    return ask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="mmlu,gsm8k", help="comma-separated: mmlu, gsm8k")
    parser.add_argument("--calib-limit", type=int, default=100, help="calibration items per suite")
    parser.add_argument("--limit", type=int, default=300, help="report items per suite")
    parser.add_argument(
        "--max-fpr", type=float, default=0.10, help="wrong answers a threshold may keep"
    )
    parser.add_argument("--top-logprobs", type=int, default=5)
    parser.add_argument("--profile", default="local")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument(
        "--keep-logprobs", action="store_true", help="also write each item's logprobs (~20 MB)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave a server this bench started running"
    )
    args = parser.parse_args()
    quiet_env()
    from tierflow.local import LocalServers

    servers = LocalServers(load_config(args.profile, require_keys=False))
    started = servers.up(["nano"])
    results: dict[str, Any] = {}
    try:
        ask = nano_asker(args.profile, args.top_logprobs)
        for suite in args.suites.split(","):
            split = _items(suite, args.calib_limit, args.limit)
            rows = [
                row
                for name, items in split.items()
                for row in answer_items(suite, items, ask, name)
            ]
            results[suite] = {**judge(suite, rows, args.max_fpr), "items": rows}
            print("\n" + report(suite, results[suite], args.max_fpr), flush=True)
            _save(args, results)  # each suite as it ends: a later failure keeps it
    finally:
        if started and not args.keep:
            servers.down([r.tier for r in started])
    return 0


def _save(args: argparse.Namespace, results: Mapping[str, Any]) -> None:
    drop = () if args.keep_logprobs else (LOGPROBS, "task")
    kept = {suite: {**r, "items": [{k: v for k, v in row.items() if k not in drop}
                                   for row in r["items"]]}
            for suite, r in results.items()}  # fmt: skip
    write_json(args.json, {"bench": "trust_signals", "args": vars(args), "results": kept})


if __name__ == "__main__":
    raise SystemExit(main())
