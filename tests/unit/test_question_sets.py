"""The main-job bench's question sets: shape, kinds, splits, and each evidence range on its tree.

The last test reads the pinned sdists: from the cache when installed, else downloaded once with
:func:`tierflow.evals.trees.install` (the package index is reachable in CI), so it never skips.
"""

from __future__ import annotations

import collections
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tierflow.evals.trees import (
    ATTRS,
    CLICK,
    FLASK,
    HTTPX,
    JINJA2,
    MARSHMALLOW,
    REQUESTS,
    RICH,
    STRUCTLOG,
    TREES,
    WERKZEUG,
    install,
)

BENCH = Path(__file__).resolve().parents[2] / "bench"
KINDS = ["value", "location", "base_class", "type", "behaviour", "list", "two_part"]
SPLITS = ["dev", "test"]
YES_NO = {"yes", "no", "not", "does not"}  # answer words the code itself does not spell
_IMPORT = re.compile(r"\s*(from\s+\S+\s+)?import\s")


@pytest.fixture(scope="module")
def main_job() -> Iterator[ModuleType]:
    """bench/main_job.py, imported as the bench runs it (``bench/`` first on ``sys.path``)."""
    sys.path.insert(0, str(BENCH))
    try:
        import main_job

        yield main_job
    finally:
        sys.path.remove(str(BENCH))


def _sets(main_job: ModuleType) -> dict[str, dict[str, Any]]:
    return {name: main_job.load_set(name)[0] for name in main_job.SETS}


def test_every_set_loads_and_names_a_pinned_tree(main_job: ModuleType) -> None:
    assert set(main_job.SETS) == {
        "requests", "click", "httpx", "attrs", "rich", "marshmallow", "jinja2", "werkzeug",
        "flask", "structlog",
    }  # fmt: skip
    assert TREES == {
        "requests": REQUESTS, "click": CLICK, "httpx": HTTPX, "attrs": ATTRS, "rich": RICH,
        "marshmallow": MARSHMALLOW, "jinja2": JINJA2, "werkzeug": WERKZEUG, "flask": FLASK,
        "structlog": STRUCTLOG,
    }  # fmt: skip
    for name, spec in _sets(main_job).items():
        assert main_job.set_tree(spec) is TREES[name]
        assert spec["note"] and spec["questions"]
        for q in spec["questions"]:
            assert {"id", "question", "keywords", "evidence"} <= set(q), q


def test_ids_are_unique_across_sets(main_job: ModuleType) -> None:
    ids = [q["id"] for spec in _sets(main_job).values() for q in spec["questions"]]
    assert [i for i, n in collections.Counter(ids).items() if n > 1] == []


def test_kinds_and_splits_come_from_the_allowed_lists(main_job: ModuleType) -> None:
    assert tuple(SPLITS) == main_job.SPLITS
    sets = _sets(main_job)
    click = sets["click"]
    assert click["kinds"] == KINDS and click["splits"] == SPLITS
    for q in click["questions"]:
        assert q.get("kind") in KINDS and q.get("split") in SPLITS, q["id"]
    httpx = sets["httpx"]  # held out whole: every question is in its one split, test
    assert httpx["kinds"] == KINDS and httpx["splits"] == ["test"]
    assert {q["split"] for q in httpx["questions"]} == {"test"}
    per_kind = collections.Counter(q["kind"] for q in httpx["questions"])
    assert set(per_kind) == set(KINDS) and min(per_kind.values()) >= 4, per_kind
    attrs = sets["attrs"]  # held out whole too, and balanced: five of each kind
    assert attrs["kinds"] == KINDS and attrs["splits"] == ["test"]
    assert {q["split"] for q in attrs["questions"]} == {"test"}
    per_kind = collections.Counter(q["kind"] for q in attrs["questions"])
    assert per_kind == {k: 5 for k in KINDS}, per_kind
    assert [q["kind"] for q in attrs["questions"]] == KINDS * 5  # round-robin over the kinds
    for q in sets["requests"]["questions"]:  # no kinds or splits yet; any given must be valid
        assert q.get("kind", KINDS[0]) in KINDS and q.get("split", SPLITS[0]) in SPLITS


def test_click_splits_follow_the_stated_rule_and_cover_every_kind(main_job: ModuleType) -> None:
    questions = _sets(main_job)["click"]["questions"]
    assert len(questions) >= 44
    seen: collections.Counter[str] = collections.Counter()
    for q in questions:  # the i-th question of the k-th kind: ["dev", "test"][(i + k) % 2]
        assert q["split"] == SPLITS[(seen[q["kind"]] + KINDS.index(q["kind"])) % 2], q["id"]
        seen[q["kind"]] += 1
    assert all(seen[k] >= 5 for k in KINDS), seen
    by_split = collections.Counter(q["split"] for q in questions)
    assert abs(by_split["dev"] - by_split["test"]) <= 2, by_split
    for split in SPLITS:
        assert {q["kind"] for q in questions if q["split"] == split} == set(KINDS), split


def test_keyword_groups_and_evidence_are_well_formed(main_job: ModuleType) -> None:
    for spec in _sets(main_job).values():
        for q in spec["questions"]:
            assert q["keywords"], q["id"]
            for group in q["keywords"]:
                assert group and all(isinstance(k, str) and k.strip() for k in group), q["id"]
            assert q["evidence"], q["id"]
            for ev in q["evidence"]:
                first, last = ev["lines"]
                assert 1 < first <= last, q["id"]  # never line 1
                assert not ev["path"].startswith(("/", "./")), q["id"]


def test_a_keyword_answer_citing_the_evidence_is_right(main_job: ModuleType) -> None:
    """Keywords and evidence agree with ``right()``; line 1 of the same file is not right."""
    for spec in _sets(main_job).values():
        for q in spec["questions"]:
            ev = q["evidence"][0]
            answer = " ".join(group[0] for group in q["keywords"])
            cite = {"path": ev["path"], "line": ev["lines"][0]}
            assert main_job.right(q, {"answer": answer, "citations": [cite]}), q["id"]
            line_1 = {"path": ev["path"], "line": 1}
            assert not main_job.right(q, {"answer": answer, "citations": [line_1]}), q["id"]
            assert not main_job.right(q, {"answer": "", "citations": [cite]}), q["id"]


def test_set_option_picks_the_tree_file_and_split(main_job: ModuleType, capsys: Any) -> None:
    assert main_job.parse([]).set == "requests"
    assert main_job.parse_set("click:test") == ("click", "test")
    assert main_job.parse_set("click") == ("click", None)
    spec, test = main_job.load_set("click:test")
    assert spec["tree"]["name"] == CLICK.name and {q["split"] for q in test} == {"test"}
    _, dev = main_job.load_set("click:dev")
    _, both = main_job.load_set("click")
    assert {q["id"] for q in dev} | {q["id"] for q in test} == {q["id"] for q in both}
    assert not {q["id"] for q in dev} & {q["id"] for q in test}
    _, requests = main_job.load_set("requests")
    assert len(requests) == 14 and requests[0]["id"] == "mj-01"
    assert [q["id"] for q in main_job.load_set("click:dev", limit=2)[1]] == ["ck-01", "ck-03"]
    for bad in ("nope", "click:train", "requests:dev"):
        with pytest.raises(ValueError):
            main_job.load_set(bad)

    assert main_job.main(["--set", "click:test", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"set click, split test: {len(test)} questions about click-8.1.8")
    assert "ck-02" in out and "ck-01" not in out
    assert main_job.main(["--set", "requests:dev", "--list"]) == 2


def test_attrs_set_lists_its_held_out_questions(main_job: ModuleType, capsys: Any) -> None:
    spec, items = main_job.load_set("attrs")
    assert spec["tree"]["name"] == ATTRS.name and len(items) == 35
    assert [q["id"] for q in main_job.load_set("attrs:test")[1]] == [q["id"] for q in items]
    assert main_job.load_set("attrs:dev")[1] == []
    assert main_job.main(["--set", "attrs", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("set attrs, split all: 35 questions about attrs-25.4.0")
    assert "at-01" in out and "at-35" in out


def test_rich_set_is_balanced_and_split_by_round(main_job: ModuleType, capsys: Any) -> None:
    """Six of each kind, round-robin; rounds 1, 3, 5 dev and 2, 4, 6 test (three per kind each)."""
    spec, items = main_job.load_set("rich")
    assert spec["tree"]["name"] == RICH.name and len(items) == 42
    assert spec["kinds"] == KINDS and spec["splits"] == SPLITS
    assert [q["kind"] for q in items] == KINDS * 6
    assert [q["split"] for q in items] == [SPLITS[i // len(KINDS) % 2] for i in range(42)]
    for split in SPLITS:
        chosen = main_job.load_set(f"rich:{split}")[1]
        assert [q["kind"] for q in chosen] == KINDS * 3, split
        assert [q["kind"] for q in main_job.load_set(f"rich:{split}", limit=7)[1]] == KINDS
    assert main_job.main(["--set", "rich:test", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("set rich, split test: 21 questions about rich-14.3.4")
    assert "rc-08" in out and "rc-01" not in out


@pytest.mark.parametrize(("name", "tree", "prefix"), [("marshmallow", MARSHMALLOW, "mm"),
                                                       ("jinja2", JINJA2, "jj"),
                                                       ("werkzeug", WERKZEUG, "wz"),
                                                       ("flask", FLASK, "fl"),
                                                       ("structlog", STRUCTLOG, "sl")])  # fmt: skip
def test_28_question_sets_are_balanced_and_split_by_round(
    main_job: ModuleType, name: str, tree: Any, prefix: str
) -> None:
    """Four of each kind, round-robin; rounds 1 and 3 dev, 2 and 4 test (two per kind each)."""
    spec, items = main_job.load_set(name)
    assert spec["tree"]["name"] == tree.name and len(items) == 28
    assert spec["kinds"] == KINDS and spec["splits"] == SPLITS
    assert [q["kind"] for q in items] == KINDS * 4
    assert [q["split"] for q in items] == [SPLITS[i // len(KINDS) % 2] for i in range(28)]
    assert [q["id"] for q in items] == [f"{prefix}-{i:02d}" for i in range(1, 29)]
    for split in SPLITS:
        assert [q["kind"] for q in main_job.load_set(f"{name}:{split}")[1]] == KINDS * 2


def _defines(line: str, names: set[str]) -> bool:
    m = re.match(r"\s*(?:async\s+)?(?:def|class)\s+(\w+)", line) or re.match(
        r"\s*(?:self\.)?(\w+)\s*(?::[^=]+)?=", line
    )
    return bool(m) and m.group(1) in names


@pytest.mark.parametrize("name", sorted(TREES))
def test_every_evidence_range_holds_on_the_pinned_tree(main_job: ModuleType, name: str) -> None:
    root = install(TREES[name])  # the cached tree if installed, else downloaded and verified
    spec, items = main_job.load_set(name)
    files: dict[str, list[str]] = {}
    for q in items:
        texts = []
        for ev in q["evidence"]:
            path = root / ev["path"]
            assert path.is_file(), (q["id"], ev["path"])
            lines = files.setdefault(ev["path"], path.read_text().splitlines())
            first, last = ev["lines"]
            assert last <= len(lines), (q["id"], ev)
            span = lines[first - 1 : last]
            assert span[0].strip() and span[-1].strip(), (q["id"], ev)  # no blank ends
            assert not _IMPORT.match(span[0]), (q["id"], ev)  # not an import site
            texts += [ev["path"], *span]
        if q.get("kind") == "location":
            first_line = files[q["evidence"][0]["path"]][q["evidence"][0]["lines"][0] - 1]
            assert _defines(first_line, set(re.findall(r"\w+", q["question"]))), q["id"]
        if q.get("kind") and q["kind"] != "behaviour":  # the fact itself is on those lines
            text = "\n".join(texts).lower()
            for group in q["keywords"]:
                if not YES_NO & {k.lower() for k in group}:
                    assert any(k.lower() in text for k in group), (q["id"], group)


def test_report_shows_tokens_per_tier_and_cost_against_all_flagship(main_job: ModuleType) -> None:
    def rec(tier: str, inp: int, out: int, usd: float) -> dict[str, Any]:
        return {"tier": tier, "input_tokens": inp, "output_tokens": out, "cost_usd": usd}

    def row(right: bool, usage: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "q", "right": right, "status": "answered", "wall_s": 10.0,
                "calls": len(usage), "prompt_tokens": sum(u["input_tokens"] for u in usage),
                "cached_tokens": 0, "priced_usd": sum(u["cost_usd"] for u in usage),
                "prompt_eval_s": 0.0, "gen_s": 0.0, "tiers": main_job.by_tier(usage)}  # fmt: skip

    tiered = [row(True, [rec("flagship", 100, 10, 0.03), rec("mini", 400, 20, 0.01)]),
              row(False, [rec("nano", 300, 5, 0.002)])]  # fmt: skip
    flagship = [
        row(True, [rec("flagship", 500, 30, 0.1)]),
        row(True, [rec("flagship", 300, 5, 0.1)]),
    ]
    runs = [{"policy": p, "rows": r, "headline": main_job.headline(r)}
            for p, r in (("tiered", tiered), ("all-flagship", flagship))]  # fmt: skip
    assert runs[0]["headline"]["tiers"]["flagship"] == {
        "calls": 1, "input": 100, "output": 10, "usd": 0.03,
    }  # fmt: skip
    text = main_job.report({"profile": "local", "set": "click", "split": "dev", "runs": runs}, None)
    assert "flagship 1 calls, 100 in, 10 out, $0.0300 (71%); mini 1 calls, 400 in" in text
    tiered_line = next(x for x in text.splitlines() if x.startswith("tiered "))
    assert "21%" in tiered_line and "-50" in tiered_line  # $0.042 of $0.2; 1 of 2 right vs 2
