"""Offline validation of the versioned evaluation datasets in ``evals/data``.

Checks schema, allowed values, id uniqueness and minimum sizes of every jsonl file, that
triage fields are literally extractable from the ticket text, that the codebase-QA evidence
still matches the installed langgraph source (when the installed version is the pinned one),
and that the sha256 values recorded in ``PROVENANCE.md`` match the files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "evals" / "data"
PROVENANCE = DATA_DIR / "PROVENANCE.md"

MIN_COUNTS = {
    "codebase_qa.jsonl": 40,
    "triage.jsonl": 100,
    "routing.jsonl": 60,
    "answer_checks.jsonl": 100,
}

CQA_KINDS = {"class", "file", "default", "behavior"}
DIFFICULTIES = {"easy", "medium", "hard"}
CATEGORIES = {"billing", "account", "bug", "outage", "feature_request", "security", "other"}
URGENCIES = {"low", "medium", "high", "critical"}
SUBAGENTS = {"classify", "extract", "search", "draft", "answer"}
TIERS = {"nano", "mini", "flagship"}

ORDER_ID_RE = re.compile(r"\bORD-\d{5}\b")
AMOUNT_RE = re.compile(r"\d[\d,]*(?:\.\d+)?")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _load(name: str) -> list[dict[str, Any]]:
    path = DATA_DIR / name
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            assert line.strip(), f"{name}:{lineno}: blank line"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:  # pragma: no cover - failure path
                pytest.fail(f"{name}:{lineno}: invalid JSON: {exc}")
            assert isinstance(row, dict), f"{name}:{lineno}: not an object"
            rows.append(row)
    return rows


def _sections() -> dict[str, str]:
    """Split PROVENANCE.md into ``{jsonl file name: section text}`` by level-2 headings."""
    text = PROVENANCE.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        heading = chunk.splitlines()[0]
        m = re.search(r"([\w-]+\.jsonl)", heading)
        if m:
            out[m.group(1)] = chunk
    return out


def _pins() -> dict[str, str]:
    section = _sections()["codebase_qa.jsonl"]
    pins = dict(re.findall(r"pinned: `([A-Za-z0-9_.-]+)==([^`]+)`", section))
    assert "langgraph" in pins, "PROVENANCE.md must pin the langgraph version for codebase_qa"
    return pins


def _package_root() -> Path:
    spec = importlib.util.find_spec("langgraph")
    assert spec is not None and spec.submodule_search_locations, "langgraph is not importable"
    locations = [Path(p) for p in spec.submodule_search_locations]
    for loc in locations:
        if (loc / "graph" / "state.py").is_file():
            return loc
    return locations[0]


# --------------------------------------------------------------------------- generic


@pytest.mark.parametrize("name", sorted(MIN_COUNTS))
def test_parses_ids_unique_and_counts(name: str) -> None:
    rows = _load(name)
    assert len(rows) >= MIN_COUNTS[name], f"{name}: {len(rows)} rows < {MIN_COUNTS[name]}"
    ids = [r.get("id") for r in rows]
    assert all(isinstance(i, str) and i for i in ids), f"{name}: missing id"
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"{name}: duplicate ids {dupes}"


def test_provenance_sha256_matches_files() -> None:
    sections = _sections()
    for name in MIN_COUNTS:
        assert name in sections, f"PROVENANCE.md has no section for {name}"
        recorded = re.findall(r"sha256: `([0-9a-f]{64})`", sections[name])
        assert len(recorded) == 1, f"{name}: expected exactly one sha256 line, got {recorded}"
        actual = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
        assert recorded[0] == actual, (
            f"{name}: sha256 in PROVENANCE.md ({recorded[0]}) != file ({actual}); "
            "bump the dataset version and update PROVENANCE.md when a file changes"
        )
        assert re.search(r"version: `\d+\.\d+\.\d+`", sections[name]), f"{name}: no semver version"


# --------------------------------------------------------------------------- codebase_qa


def test_codebase_qa_schema() -> None:
    for r in _load("codebase_qa.jsonl"):
        rid = r["id"]
        assert re.fullmatch(r"cqa-\d{3}", rid), rid
        assert set(r) == {
            "id",
            "question",
            "reference_answer",
            "answer_aliases",
            "evidence",
            "kind",
            "difficulty",
        }, rid
        assert isinstance(r["question"], str) and r["question"].strip(), rid
        assert isinstance(r["reference_answer"], str) and r["reference_answer"].strip(), rid
        assert isinstance(r["answer_aliases"], list), rid
        assert all(isinstance(a, str) and a for a in r["answer_aliases"]), rid
        assert r["reference_answer"] not in r["answer_aliases"], rid
        assert r["kind"] in CQA_KINDS, rid
        assert r["difficulty"] in DIFFICULTIES, rid
        assert isinstance(r["evidence"], list) and r["evidence"], rid
        for ev in r["evidence"]:
            assert set(ev) == {"path", "start_line", "end_line", "contains"}, rid
            p = PurePosixPath(ev["path"])
            assert not p.is_absolute() and ".." not in p.parts and p.suffix == ".py", (rid, p)
            assert not p.parts[0].startswith("langgraph"), (
                f"{rid}: path must be relative to the package dir"
            )
            assert isinstance(ev["start_line"], int) and isinstance(ev["end_line"], int), rid
            assert 1 <= ev["start_line"] <= ev["end_line"], rid
            assert isinstance(ev["contains"], str) and ev["contains"].strip(), rid
        if r["difficulty"] == "hard":
            assert len(r["evidence"]) >= 2, f"{rid}: hard items need evidence from two places"


def test_codebase_qa_evidence_matches_installed_source() -> None:
    pins = _pins()
    mismatched = []
    for dist, pinned in sorted(pins.items()):
        try:
            installed = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            mismatched.append(f"{dist}: installed {installed}, pinned {pinned}")
    if mismatched:
        pytest.skip("codebase_qa evidence is pinned to other versions: " + "; ".join(mismatched))

    owned: dict[str, str] = {}
    for dist in pins:
        for f in importlib.metadata.distribution(dist).files or ():
            parts = PurePosixPath(str(f)).parts
            if parts and parts[0] == "langgraph":
                owned[str(PurePosixPath(*parts[1:]))] = dist

    root = _package_root()
    for r in _load("codebase_qa.jsonl"):
        for ev in r["evidence"]:
            assert ev["path"] in owned, (
                f"{r['id']}: {ev['path']} is not shipped by a pinned distribution {sorted(pins)}"
            )
            src = root / ev["path"]
            assert src.is_file(), f"{r['id']}: {src} missing"
            lines = src.read_text(encoding="utf-8").splitlines()
            assert ev["end_line"] <= len(lines), f"{r['id']}: {ev['path']} has {len(lines)} lines"
            window = "\n".join(lines[ev["start_line"] - 1 : ev["end_line"]])
            assert ev["contains"] in window, (
                f"{r['id']}: {ev['contains']!r} not in {ev['path']}:"
                f"{ev['start_line']}-{ev['end_line']}"
            )


# --------------------------------------------------------------------------- triage


def _amount_tokens(text: str) -> set[float]:
    return {float(tok.replace(",", "")) for tok in AMOUNT_RE.findall(text)}


def test_triage_schema_and_extractable_fields() -> None:
    for r in _load("triage.jsonl"):
        rid = r["id"]
        assert re.fullmatch(r"t-\d{3}", rid), rid
        assert set(r) == {"id", "subject", "body", "customer_email", "reference"}, rid
        for key in ("subject", "body", "customer_email"):
            assert isinstance(r[key], str) and r[key].strip(), (rid, key)
        assert EMAIL_RE.match(r["customer_email"]), rid
        ref = r["reference"]
        assert set(ref) == {"category", "urgency", "fields", "needs_reply_draft"}, rid
        assert ref["category"] in CATEGORIES, rid
        assert ref["urgency"] in URGENCIES, rid
        assert isinstance(ref["needs_reply_draft"], bool), rid
        fields = ref["fields"]
        assert set(fields) == {"order_id", "amount_usd", "product", "customer_email"}, rid
        assert fields["customer_email"] == r["customer_email"], rid

        text = r["subject"] + "\n" + r["body"]
        order_id = fields["order_id"]
        if order_id is None:
            assert not ORDER_ID_RE.search(text), f"{rid}: text has an order id but order_id is null"
        else:
            assert isinstance(order_id, str) and ORDER_ID_RE.fullmatch(order_id), rid
            assert order_id in text, f"{rid}: {order_id} not verbatim in subject+body"
        amount = fields["amount_usd"]
        if amount is not None:
            assert isinstance(amount, float), f"{rid}: amount_usd must be a float"
            assert amount in _amount_tokens(text), f"{rid}: {amount} not verbatim in subject+body"
        product = fields["product"]
        if product is not None:
            assert isinstance(product, str) and product in text, f"{rid}: {product!r} not in text"


def test_triage_labels_follow_written_rules() -> None:
    rows = _load("triage.jsonl")
    for r in rows:
        ref = r["reference"]
        if ref["urgency"] in ("high", "critical"):
            assert ref["needs_reply_draft"], f"{r['id']}: high/critical tickets need a reply draft"
        if ref["category"] == "feature_request":
            assert ref["urgency"] == "low", f"{r['id']}: feature requests are low urgency"
        if ref["category"] == "security":
            assert ref["urgency"] in ("high", "critical"), (
                f"{r['id']}: security is high or critical"
            )
    cats = Counter(r["reference"]["category"] for r in rows)
    assert set(cats) == CATEGORIES, f"every category should be represented: {cats}"
    urg = Counter(r["reference"]["urgency"] for r in rows)
    assert set(urg) == URGENCIES, f"every urgency should be represented: {urg}"


# --------------------------------------------------------------------------- routing


def test_routing_schema_and_balance() -> None:
    rows = _load("routing.jsonl")
    for r in rows:
        rid = r["id"]
        assert re.fullmatch(r"r-\d{3}", rid), rid
        assert set(r) == {"id", "task", "subagent", "cheapest_tier", "rationale"}, rid
        assert isinstance(r["task"], str) and r["task"].strip(), rid
        assert isinstance(r["rationale"], str) and r["rationale"].strip(), rid
        assert r["subagent"] in SUBAGENTS, rid
        assert r["cheapest_tier"] in TIERS, rid
    tiers = Counter(r["cheapest_tier"] for r in rows)
    assert all(tiers[t] >= 15 for t in TIERS), f"tiers should be balanced-ish: {tiers}"
    assert set(Counter(r["subagent"] for r in rows)) == SUBAGENTS
