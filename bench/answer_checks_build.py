"""Build evals/data/answer_checks.jsonl: labelled answer/citation pairs for bench/checker.py.

Run: python bench/answer_checks_build.py RUN.json [RUN.json ...] > evals/data/answer_checks.jsonl

Three sources, each pair labelled ``right`` or ``wrong``:

- ``run:<policy>:<label>``: every answer a real run of bench/main_job.py gave (its ``--json``
  files), about the pinned requests tree, labelled by that bench's rule (every keyword group in
  the answer and a citation inside the evidence lines); the labels were then read by hand.
- ``reference``: each codebase_qa eval item's reference answer citing its evidence lines
  (langgraph tree), right by construction.
- ``mutated``: a right pair with its one claim changed and the same citations: another value,
  another file, another class of the same file (langgraph items), and for each requests
  question answered right in a run, the issue's three wrong-answer shapes (the cited line with
  another value or base, a file where the subject is not defined).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

QUESTIONS = Path(__file__).with_name("main_job_questions.json")
EVAL = Path(__file__).resolve().parents[1] / "evals" / "data" / "codebase_qa.jsonl"


def _other_value(v: str) -> str:
    if v in ("True", "False"):
        return "False" if v == "True" else "True"
    try:
        x = float(v)
    except ValueError:
        return "__start__" if v.startswith("_") else v + "_default"
    return str(int(x) + 7) if x.is_integer() else str(x * 2)


def eval_pairs() -> list[dict[str, Any]]:
    """Reference answers of the codebase_qa suite and one mutation of each."""
    from tierflow.evals._suites import langgraph_root
    from tierflow.evals.scripted import _line_of

    root = langgraph_root()
    classes: dict[str, list[str]] = {}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        for line in f.read_text(errors="replace").splitlines():
            if m := re.match(r"class (\w+)", line):
                classes.setdefault(rel, []).append(m.group(1))
    files = sorted(classes)
    out = []
    for it in (json.loads(x) for x in EVAL.read_text().splitlines() if x.strip()):
        cites = [
            {"path": e["path"], "line": _line_of(e["path"], e["contains"], e["start_line"])}
            for e in it["evidence"]
        ]
        base = {"tree": "langgraph", "question": it["question"], "citations": cites}
        ref = it["reference_answer"]
        out.append({"id": f"ref-{it['id']}", **base, "answer": ref, "label": "right",
                    "source": "reference", "note": "reference answer citing its evidence"})  # fmt: skip
        if it["kind"] == "default" or ref in ("True", "False"):
            wrong, how = _other_value(ref), "another value"
        elif it["kind"] == "file":
            top = ref.split("/")[0]
            pool = [f for f in files if f != ref and f.split("/")[0] == top]
            fallback = "errors.py" if ref == "types.py" else "types.py"
            wrong, how = (pool or [fallback])[0], "another file of the tree"
        else:
            path = it["evidence"][0]["path"]
            pool = [c for c in classes.get(path, []) if c != ref and c not in it["question"]]
            wrong, how = (pool or ["Pregel"])[0], "another class of the same file"
        out.append({"id": f"mut-{it['id']}", **base, "answer": wrong, "label": "wrong",
                    "source": "mutated", "note": f"{how}, same citations"})  # fmt: skip
    return out


# The three wrong shapes, per requests question: (answer, citation) with the right line
# and another value or base, or a file and line where the subject is not defined.
_REQUESTS_WRONG = {
    "mj-01": ("DEFAULT_REDIRECT_LIMIT is 20.", "models.py", 79),
    "mj-02": ("DEFAULT_POOLSIZE is 100.", "adapters.py", 72),
    "mj-03": ("HTTPError inherits from Exception.", "__init__.py", 1),
    "mj-04": ("ConnectTimeout inherits from Timeout.", "exceptions.py", 80),
    "mj-05": ("Session is defined in api.py.", "api.py", 14),
    "mj-06": ("RequestException inherits from Exception.", "exceptions.py", 12),
    "mj-07": ("ITER_CHUNK_SIZE is 1024.", "models.py", 81),
    "mj-08": ("super_len is defined in models.py.", "models.py", 1),
    "mj-09": ("trust_env defaults to False.", "sessions.py", 438),
    "mj-10": ("DEFAULT_RETRIES is 3.", "adapters.py", 73),
    "mj-11": ("HTTPProxyAuth extends AuthBase.", "auth.py", 99),
    "mj-12": (
        "CaseInsensitiveDict is defined in structures.py and inherits from dict.",
        "structures.py",
        13,
    ),  # fmt: skip
    "mj-13": ("raise_for_status raises ConnectionError.", "models.py", 997),
    "mj-14": ("TooManyRedirects inherits from HTTPError.", "exceptions.py", 95),
}


# Labels changed by hand after reading the pair against the tree: (label, why).
_HAND = {
    "mj-13": (
        "HTTPError",
        "right",
        "the claim is right (raise_for_status raises HTTPError at models.py:1024); the cited "
        "line is a call of raise_for_status, which the checker moves to the raise",
    ),
}


def run_pairs(paths: list[str]) -> list[dict[str, Any]]:
    """Every answer of the given bench/main_job.py runs, and the mutations of the questions."""
    questions = {q["id"]: q for q in json.loads(QUESTIONS.read_text())["questions"]}
    out = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        policy, label = data["results"]["policy"], Path(path).stem
        for row in data["results"]["rows"]:
            ans = row.get("answer")
            if not ans or not ans.get("citations"):
                continue
            out.append({
                "id": f"run-{label}-{row['id']}", "tree": "requests-2.32.3",
                "question": row["question"], "answer": ans["answer"],
                "citations": ans["citations"], "label": "right" if row["right"] else "wrong",
                "source": f"run:{policy}:{label}", "note": f"status reported: {row['status']}",
            })  # fmt: skip
            hand = _HAND.get(row["id"])
            if hand and ans["answer"].strip() == hand[0] and out[-1]["label"] != hand[1]:
                out[-1] |= {"label": hand[1], "note": f"{out[-1]['note']}; relabelled: {hand[2]}"}
    for qid, (answer, path, line) in _REQUESTS_WRONG.items():
        out.append({
            "id": f"mut-{qid}", "tree": "requests-2.32.3", "question": questions[qid]["question"],
            "answer": answer, "citations": [{"path": path, "line": line}], "label": "wrong",
            "source": "mutated", "note": "one of the issue's wrong-answer shapes",
        })  # fmt: skip
    return out


def main(argv: list[str]) -> int:
    """Print the pairs as JSON Lines."""
    for pair in [*run_pairs(argv), *eval_pairs()]:
        print(json.dumps(pair))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
