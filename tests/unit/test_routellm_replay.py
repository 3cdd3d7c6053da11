"""The replay of RouteLLM's records: split, costs, the arithmetic check, the report and the CLI."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tierflow._difficulty_fit import Candidate
from tierflow.config import Price
from tierflow.evals import _replay_features, _routellm_data
from tierflow.evals._replay_check import check_solution, evaluate
from tierflow.evals._replay_features import compact_path, load_compact, write_compact
from tierflow.evals._replay_policies import ItemCosts, item_costs, policy_result, strong_calls
from tierflow.evals._routellm_data import (
    DATA_DIR,
    ReplayRow,
    is_calibration,
    load_rows,
    split_rows,
    stratified_order,
)
from tierflow.evals.replay import ReplayOptions, replay_report

FAST = ReplayOptions(components=8, candidates=(Candidate("knn", 15), Candidate("logistic", 0.1)))
RIGHT = " She has 3 x 4 = <<3*4=12>>12 eggs, then 12 + 5 = <<12+5=17>>17.\n#### 17"
WRONG_STEP = " She has 3 x 4 = <<3*4=12>>12 eggs, then 12 + 5 = 18.\n#### 18"
WRONG_ANNOTATION = " She has 3 x 4 = <<3*4=13>>13 eggs.\n#### 13"


def _gsm8k_fixture(folder: Path, n: int = 120, seed: int = 3, flip_report: bool = False) -> dict:
    """A tiny gsm8k.csv.gz (ids 0..n-1) and embeddings where dimension 0 tells difficulty."""
    rng = random.Random(seed)
    records, embeddings = [], {}
    for i in range(n):
        hard = rng.random()
        weak = rng.random() > hard
        key = f"gsm8k:{i}"
        if flip_report and not is_calibration(key):
            weak = not weak  # what only the report rows say; fitting must not see it
        embeddings[key] = [1 - hard + rng.gauss(0, 0.05)] + [rng.gauss(0, 1) for _ in range(7)]
        records.append({"index": str(i), "prompt": f"Question {i}: how many eggs are left?",
                        "answer": "17", "weak_correct": str(weak), "strong_correct": "True",
                        "weak_response": RIGHT if weak else WRONG_STEP,
                        "strong_response": RIGHT})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "gsm8k.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return embeddings


def test_split_is_a_fixed_partition_by_key():
    rows = [ReplayRow(f"mmlu:x:{i}", "q", True, True, domain="x") for i in range(400)]
    cal, rep = split_rows(rows)
    assert {r.key for r in cal}.isdisjoint({r.key for r in rep})
    assert len(cal) + len(rep) == 400 and 150 < len(cal) < 250
    assert split_rows(list(reversed(rows)))[0] == list(reversed(cal))  # order-free rule
    assert all(is_calibration(r.key) for r in cal) and not any(is_calibration(r.key) for r in rep)


def test_fitting_never_sees_the_report_rows(tmp_path):
    """Flip every report row's outcome: everything chosen on calibration stays the same."""
    emb = _gsm8k_fixture(tmp_path / "a")
    _gsm8k_fixture(tmp_path / "b", flip_report=True)
    opts = FAST
    a = replay_report("routellm-gsm8k", embeddings=emb, data_dir=tmp_path / "a",
                      out_dir=tmp_path / "ra", options=opts)  # fmt: skip
    b = replay_report("routellm-gsm8k", embeddings=emb, data_dir=tmp_path / "b",
                      out_dir=tmp_path / "rb", options=opts)  # fmt: skip
    assert a.router == b.router and a.router.evidence == b.router.evidence
    for key in ("threshold", "rule", "cascade_threshold", "cv", "rules", "scorer", "predicted"):
        assert a.calibration[key] == b.calibration[key]
    assert a.scorer == b.scorer and a.scorer is not None
    assert a.bench.row("all-nano").quality != b.bench.row("all-nano").quality  # report moved


def test_replay_report_writes_the_live_sections_and_routellm_measure(tmp_path):
    emb = _gsm8k_fixture(tmp_path / "data")
    out = replay_report("routellm-gsm8k", embeddings=emb, data_dir=tmp_path / "data",
                        out_dir=tmp_path / "report", options=FAST)  # fmt: skip
    text = out.bench.markdown_path.read_text()
    for part in ("**Headline.**", "| all-flagship |", "What it would take", "share to strong",
                 "Chosen on the calibration part only", "| steps |"):  # fmt: skip
        assert part in text
    assert out.bench.plot_path.is_file() and (tmp_path / "report" / "router.json").is_file()
    assert out.shares["all-flagship"] == 1.0 and out.shares["all-nano"] == 0.0
    assert {r.policy for r in out.bench.rows} >= {"router", "cascade", "router+cascade", "random"}
    assert "perfect router" in out.results and out.bench.row("perfect router") is None
    # In the fixture every right weak answer checks out and every wrong one has a wrong step.
    assert out.bench.headroom is not None and out.bench.headroom.measured == (1.0, 0.0)
    # So the scorer, reading the response, keeps exactly Mixtral's right answers: what the
    # perfect router does, all of its saving captured (the check's cascades tie with it).
    assert out.shares["scored cascade"] == out.shares["perfect router"] < 1.0
    assert out.bench.row("scored cascade").rel_quality == 1.0
    c = out.bench.captured
    assert c is not None and c.share == pytest.approx(1.0) and c.kept == 1.0
    assert c.policy in ("cascade", "router+cascade", "scored cascade")
    low, high = out.figures["captured_ci"]
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    head = text.split("| policy |")[0]  # the headline number comes before the first table
    assert "**Captured share of the perfect router's saving at >= 95% of GPT-4's quality: " \
           "100.0% [100.0%-100.0%]**" in head  # fmt: skip
    for part in ("Predicted on calibration vs measured on report", "| scored cascade |",
                 "Scored cascade: every item goes to Mixtral"):  # fmt: skip
        assert part in text
    assert out.calibration["predicted"]["scored cascade"]["quality_vs_strong"] == 1.0
    assert (tmp_path / "report" / "scorer.json").is_file()


def test_costs_are_exact_on_a_hand_computed_case():
    row = ReplayRow("gsm8k:1", "a" * 40, True, True, weak_response="w" * 400,
                    strong_response="s" * 800)  # fmt: skip
    c = item_costs(row, Price(input=1, cached_input=0, output=10),
                   Price(input=10, cached_input=0, output=100))  # fmt: skip
    assert (c.input_tokens, c.weak_output, c.strong_output) == (14, 100, 200)
    assert c.weak_usd == pytest.approx((14 * 1 + 100 * 10) / 1e6)
    assert c.strong_usd == pytest.approx((14 * 10 + 200 * 100) / 1e6)
    rows = [ReplayRow(f"k{i}", "q", w, True) for i, w in enumerate([True, False])]
    costs = [ItemCosts(10, 1, 1, 1.0, 10.0)] * 2
    routed = policy_result("s", "router", rows, costs, [1.0, 0.0], "openai")
    assert routed.cost_usd == 11.0 and routed.quality == 1.0
    cascade = policy_result("s", "cascade", rows, costs, [1.0, 1.0], "openai", [True, False])
    assert cascade.cost_usd == 12.0 and cascade.quality == 1.0 and cascade.escalations == 1
    assert strong_calls([1.0, 1.0], [True, False]) == [0.0, 1.0]
    assert strong_calls([0.25, 1.0]) == [0.75, 0.0]  # random: the expected share


def test_the_check_accepts_a_right_solution_and_rejects_a_wrong_step():
    right = check_solution(RIGHT)
    assert right.steps >= 2 and right.wrong_steps == 0 and right.final == 17
    assert right.passes("steps") and right.passes("steps+final-last")
    assert not check_solution(WRONG_STEP).passes("steps")
    assert not check_solution(WRONG_ANNOTATION).passes("steps")
    assert not check_solution(" So 3 x 4 = <<3*4=").passes("steps")  # cut off
    assert check_solution("Then 2/3 \\* 60 = 40 minutes and 1,200 / 4 = 300.\n#### 300").passes(
        "steps"
    )
    assert evaluate("(12 / 20) x 100") == 60.0 and evaluate("2 ** 99") is None


def _cal_rows(spec: list[tuple[bool, str]]) -> list[ReplayRow]:
    return [ReplayRow(f"gsm8k:{i}", "q", w, True, weak_response=resp)
            for i, (w, resp) in enumerate(spec)]  # fmt: skip


def test_router_and_check_threshold_is_the_cheapest_that_keeps_the_target():
    """Keep a weak answer when the check passes and the router's score >= the threshold.

    Row 1's wrong answer shows right arithmetic (the check passes it): only a threshold above
    its score 0.8 keeps 95%, and 0.9 is the cheapest such (row 0 stays weak): 3 of 4 to GPT-4.
    """
    from tierflow.evals._replay_cascade import cascade_threshold as _cascade_threshold

    cal = _cal_rows([(True, RIGHT), (False, RIGHT), (False, WRONG_STEP), (True, RIGHT)])
    oof = [0.9, 0.8, 0.3, 0.2]
    threshold, predicted = _cascade_threshold(cal, oof, "steps", 0.95)
    assert threshold == 0.9 and predicted == {"quality_vs_strong": 1.0, "share_strong": 0.75}
    # At 70% the wrong answer may pass: every checked item stays weak, only row 2 escalates.
    threshold, predicted = _cascade_threshold(cal, oof, "steps", 0.7)
    assert threshold == 0.2 and predicted == {"quality_vs_strong": 0.75, "share_strong": 0.25}


def test_response_features_read_the_check_and_the_final_answer():
    from tierflow.evals._replay_check import RESPONSE_FEATURES, response_features

    def features(prompt: str, response: str) -> dict[str, float]:
        return dict(zip(RESPONSE_FEATURES, response_features(prompt, response), strict=True))

    right = features("Ann has 3 boxes of 4 eggs and buys 5.", RIGHT)
    assert right["pass_steps"] == right["final_is_last"] == right["final_integer"] == 1.0
    assert right["wrong_step"] == 0.0 and right["final_in_prompt"] == 0.0
    wrong = features("Ann has 3 boxes of 4 eggs and buys 5.", WRONG_STEP)
    assert wrong["pass_steps"] == 0.0 and wrong["wrong_step"] == 1.0
    assert wrong["wrong_share"] == pytest.approx(1 / 3)  # 3 x 4 = 12 twice (text, annotation)
    odd = features("Split 5 apples among 2.", "5 / 2 = 2.5 apples each.\n#### 2.5")
    assert odd["final_integer"] == 0.0 and odd["pass_steps"] == 1.0
    copied = features("Tom has 5 apples.", "He has 5 apples.\n#### 5")
    assert copied["final_in_prompt"] == 1.0 and copied["no_final"] == 0.0


@pytest.mark.parametrize("module", ["tierflow.evals._replay_check",
                                    "tierflow.evals._replay_policies", "tierflow.evals.replay",
                                    "tierflow.evals._replay_report"])  # fmt: skip
def test_docstring_examples_run(module):
    import doctest
    import importlib

    failed, attempted = doctest.testmod(importlib.import_module(module))
    assert attempted > 0 and failed == 0


def test_the_real_files_hold_no_held_out_gsm8k_ids():
    if not (DATA_DIR / "gsm8k.csv.gz").is_file():
        pytest.skip("shared/data/routellm is not on this machine")
    gsm8k = load_rows("gsm8k")
    ids = {int(r.key.split(":")[1]) for r in gsm8k}
    assert len(gsm8k) == 789 and max(ids) < 800 and not ids & set(range(800, 1319))
    mmlu = load_rows("mmlu")
    assert len(mmlu) == 11214 and len({r.key for r in mmlu}) == len(mmlu)
    prefix = stratified_order(mmlu)[:570]
    assert len({r.domain for r in prefix}) == 57  # every subject in a 5% prefix


def test_a_held_out_id_in_a_file_is_refused(tmp_path):
    _gsm8k_fixture(tmp_path, n=3)
    path = tmp_path / "gsm8k.csv.gz"
    text = gzip.decompress(path.read_bytes()).decode().replace("\n2,", "\n900,")
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(ValueError, match="800-1318"):
        load_rows("gsm8k", tmp_path)


def test_compact_copy_fits_pca_on_calibration_rows_only(tmp_path):
    emb = {f"gsm8k:{i}": [float(i % 7), float(i % 3), 1.0] for i in range(60)}
    path = write_compact(emb, tmp_path / "c.npz", components=2)
    back = load_compact(path)
    assert set(back) == set(emb) and len(back["gsm8k:0"]) == 2
    emb2 = dict(emb)
    report_key = next(k for k in emb if not is_calibration(k))
    emb2[report_key] = [100.0, -100.0, 5.0]  # a report row cannot move the projection
    again = load_compact(write_compact(emb2, tmp_path / "d.npz", components=2))
    cal_key = next(k for k in emb if is_calibration(k))
    assert again[cal_key] == pytest.approx(back[cal_key], abs=1e-2)


def test_eval_cli_runs_the_replay_on_a_fixture(tmp_path, monkeypatch):
    from tierflow.cli import app

    emb = _gsm8k_fixture(tmp_path / "data")
    write_compact(emb, compact_path("gsm8k", tmp_path / "results"), components=8)
    monkeypatch.setattr(_routellm_data, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(_replay_features, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["eval", "routellm-gsm8k", "--report", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "routellm-gsm8k (report" in res.output and "router+cascade" in res.output
    assert (tmp_path / "r" / "report.md").is_file() and (tmp_path / "r" / "curve.png").is_file()


def test_without_committed_embeddings_the_router_reads_structure_only(tmp_path, monkeypatch):
    from tierflow.evals.replay import replay_options

    _gsm8k_fixture(tmp_path / "data")
    monkeypatch.setattr(_replay_features, "RESULTS_DIR", tmp_path / "no-results")
    options = replay_options("routellm-gsm8k", candidates=FAST.candidates)
    assert options.feature_sets == ("structure",) and not options.needs_embeddings
    out = replay_report("routellm-gsm8k", data_dir=tmp_path / "data", out_dir=tmp_path / "r",
                        options=options)  # fmt: skip
    assert out.calibration["features"] == "structure"
    assert out.figures["rows"]["file"] == out.figures["rows"]["embedded"] == 120
    assert "No prompt embeddings were read" in out.bench.markdown_path.read_text()
