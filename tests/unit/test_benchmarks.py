"""Benchmark suites end to end on scripted tiers: response cache, calibration, reports, CLI."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import RetryPolicy
from typer.testing import CliRunner

from tierflow.cache import ResponseCache, request_key
from tierflow.evals import run
from tierflow.evals._suites import load_items
from tierflow.evals.benchmark_report import benchmark_report, random_mix, wilson
from tierflow.evals.calibrate import calibrate, choose_threshold
from tierflow.evals.scripted import bench_models_for

RETRY = RetryPolicy(max_attempts=1, initial_interval=0, jitter=False)


@pytest.fixture(autouse=True)
def _no_default_calibration(tmp_path, monkeypatch):
    """Run where no .tierflow/calibration/<graph>.json of this checkout is found."""
    monkeypatch.chdir(tmp_path)


def _requests(models) -> int:
    return sum(len(m.requests) for m in models.values())


def test_request_key_depends_on_what_the_answer_depends_on():
    msgs = [HumanMessage("2+2?")]
    base = request_key("m", msgs, [], None, {"max_tokens": 8})
    assert base == request_key("m", [HumanMessage("2+2?")], [], None, {"max_tokens": 8})
    assert base != request_key("m2", msgs, [], None, {"max_tokens": 8})
    assert base != request_key("m", msgs, [], None, {"max_tokens": 8, "temperature": 0.7})
    assert base != request_key("m", [HumanMessage("2+3?")], [], None, {"max_tokens": 8})
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert base != request_key("m", msgs, [tool], "f", {"max_tokens": 8})


def test_an_exported_cache_answers_a_run_on_another_machine(tmp_path):
    # A run's responses, exported and imported into an empty cache, answer the same run again
    # with no model call and the same figures (what bench/results keeps beside a report).
    models = bench_models_for("gsm8k")
    first = run("gsm8k", "cascade", limit=3, profile="openai", models=models, retry=RETRY,
                response_cache=str(tmp_path / "here.sqlite"))  # fmt: skip
    made = _requests(models)
    ResponseCache(tmp_path / "here.sqlite").export(tmp_path / "kept.jsonl.gz")
    there = ResponseCache(tmp_path / "there.sqlite")
    assert there.load(tmp_path / "kept.jsonl.gz") == made
    again = run("gsm8k", "cascade", limit=3, profile="openai", models=models, retry=RETRY,
                response_cache=str(there.path))  # fmt: skip
    assert _requests(models) == made
    assert again.cost_usd == first.cost_usd and again.quality == first.quality
    assert [e.model_latency_s for e in again.examples] == [
        e.model_latency_s for e in first.examples
    ]


def test_cache_keeps_messages_with_tool_calls(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    msg = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}],
                    usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7})  # fmt: skip
    key = request_key("m", [HumanMessage("hi")], [], None, {})
    cache.put(key, msg, latency_s=1.5)
    got, latency = cache.get(key)
    assert got.tool_calls[0]["args"] == {"x": 1} and got.usage_metadata["output_tokens"] == 2
    assert latency == 1.5 and len(cache) == 1


def test_a_second_policy_and_a_rerun_pay_nothing_twice(tmp_path):
    cache = str(tmp_path / "responses.sqlite")
    models = bench_models_for("gsm8k")
    first = run("gsm8k", "all-nano", limit=4, profile="openai", models=models, retry=RETRY,
                response_cache=cache)  # fmt: skip
    made = _requests(models)
    assert made == 4 and first.cost_usd > 0
    again = run("gsm8k", "all-nano", limit=4, profile="openai", models=models, retry=RETRY,
                response_cache=cache)  # fmt: skip
    assert _requests(models) == made  # every request answered from the cache
    assert again.cost_usd == first.cost_usd and [e.quality for e in again.examples] == [
        e.quality for e in first.examples
    ]
    assert all(r["cached_response"] for e in again.examples for r in e.usage)
    assert sum(e.paid_usd for e in again.examples) == 0.0
    # An interrupted run that continues (more items) only pays for the new ones.
    run("gsm8k", "all-nano", limit=6, profile="openai", models=models, retry=RETRY,
        response_cache=cache)  # fmt: skip
    assert _requests(models) == made + 2
    # The cascade's first step is all-nano's request: only its samples and climbs are new.
    before = len(models["nano"].requests)
    cascade = run("gsm8k", "cascade", limit=4, profile="openai", models=models, retry=RETRY,
                  response_cache=cache)  # fmt: skip
    nano_new = [r for r in models["nano"].requests[before:]]
    assert nano_new and all(r.temperature == 0.7 for r in nano_new)
    assert cascade.n == 4


def test_calibration_is_written_with_evidence_and_changes_what_a_run_does(tmp_path):
    models = bench_models_for("mmlu", {"nano": 1.0, "mini": 1.0, "flagship": 1.0})
    out = tmp_path / "mmlu.json"
    cal = calibrate("mmlu", 0.95, limit=20, profile="openai", models=models, retry=RETRY,
                    response_cache=str(tmp_path / "c.sqlite"), out=out)  # fmt: skip
    sub = cal.subagents["solve"]
    saved = json.loads(out.read_text())
    assert saved["version"] == cal.version and saved["items"] == 20
    # nano is as good as flagship here, so it is the start tier; mini adds nothing.
    assert sub.start_tier == "nano" and sub.ladder == ["nano", "flagship"]
    assert set(sub.evidence["tiers"]) == {"nano", "mini", "flagship"}
    assert sub.evidence["tiers"]["nano"]["n"] == 20 and sub.router is not None
    assert sub.evidence["threshold_sweep"]
    plain = run("mmlu", "static", limit=3, profile="openai", models=models, retry=RETRY)
    loaded = run("mmlu", "static", limit=3, profile="openai", models=models, retry=RETRY,
                 calibration=str(out))  # fmt: skip
    assert {e.subagent_tiers["solve"] for e in plain.examples} == {"mini"}
    assert {e.subagent_tiers["solve"] for e in loaded.examples} == {"nano"}


def test_a_report_without_all_flagship_claims_nothing_relative_to_it(tmp_path):
    # A partial run (the cheap policies first, the flagship in a later session) must not
    # print "0% of the quality" or "0% of the cost": there is nothing to be relative to.
    report = benchmark_report("mmlu", ["all-nano", "cascade"], limit=6, profile="openai",
                              models=bench_models_for("mmlu"), retry=RETRY,
                              response_cache=str(tmp_path / "c.sqlite"),
                              out_dir=tmp_path / "rep")  # fmt: skip
    nano = report.row("all-nano")
    assert nano.rel_cost is None and nano.rel_quality is None and nano.cost_usd > 0
    assert report.retained_at(0.5) is None and report.cost_for(0.95) is None
    assert "all-flagship did not run" in report.headline()
    text = report.markdown_path.read_text()
    assert "| all-nano | 6 |" in text and "% of the quality" not in text
    row = next(line for line in text.splitlines() if line.startswith("| all-nano |"))
    assert row.split(" | ")[4] == "-" and row.split(" | ")[6] == "-"
    assert report.plot_path.stat().st_size > 5000  # absolute cost and quality


def test_choose_threshold_takes_the_cheapest_that_keeps_quality():
    p = [0.9, 0.6, 0.2]
    cheap = [(1.0, 1.0), (0.0, 1.0), (0.0, 1.0)]
    top = [(1.0, 10.0), (1.0, 10.0), (1.0, 10.0)]
    theta, sweep = choose_threshold(p, cheap, top, target=1.0, confidence=None)
    assert theta == 0.9  # only the first item may start cheap without losing quality
    assert min(c for _, c, q in sweep if q >= 1.0) == 21.0
    theta, _ = choose_threshold(p, cheap, top, target=0.3, confidence=None)
    assert theta == 0.2  # everything cheap: the highest threshold that still does it


def test_live_calibration_chooses_its_threshold_as_the_replays_do():
    # 20 items; the cheap path is right on the first 19 and costs 1 against 10. On these rows
    # everything cheap keeps 95%; with 90% confidence that is luck on 20 items, so the
    # threshold keeps the hardest items on the top path.
    p = [1 - i / 20 for i in range(20)]
    cheap = [(1.0, 1.0)] * 19 + [(0.0, 1.0)]
    top = [(1.0, 10.0)] * 20
    plain, _ = choose_threshold(p, cheap, top, target=0.95, confidence=None)
    sure, _ = choose_threshold(p, cheap, top, target=0.95)
    assert plain == min(p) and sure > plain
    # the same choice tierflow.difficulty makes for the replays
    from tierflow.difficulty import choose_threshold as replays

    assert sure == replays(p, [1.0] * 19 + [0.0], [1.0] * 20, 0.95, [1.0] * 20, [10.0] * 20, 0.9)


def test_report_has_every_policy_the_curve_and_the_published_point(tmp_path):
    models = bench_models_for("mmlu")
    cache = str(tmp_path / "c.sqlite")
    cal = tmp_path / "cal.json"
    calibrate("mmlu", 0.9, limit=12, profile="openai", models=models, retry=RETRY,
              response_cache=cache, out=cal)  # fmt: skip
    policies = ["all-flagship", "all-nano", "cascade", "router+cascade", "random"]
    report = benchmark_report("mmlu", policies, limit=12, profile="openai", models=models,
                              retry=RETRY, response_cache=cache, calibration=str(cal),
                              out_dir=tmp_path / "rep")  # fmt: skip
    assert [r.policy for r in report.rows] == policies
    assert report.row("all-flagship").rel_cost == 1.0 and report.curve
    text = report.markdown_path.read_text()
    assert "RouteLLM (published)" in text and "Headline" in text and "router+cascade" in text
    assert report.plot_path.stat().st_size > 5000
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert set(data["items"]) == set(policies) and len(data["items"]["random"]) == 12
    assert report.calibration and report.calibration.startswith("mmlu@")


def test_random_mix_and_intervals():
    assert random_mix(1.0, 11.0, 6.0) == 0.5 and random_mix(1.0, 11.0, 0.0) == 0.0
    low, high = wilson(30, 100)
    assert low < 0.3 < high and round(high - low, 2) == 0.18


def test_calibrating_for_bfcls_report_also_calibrates_its_native_graph(tmp_path, monkeypatch):
    # `tierflow eval bfcl --calibrate` must leave the bfcl_native graph (the report's native
    # tool-calling rows) a calibration too, or its cascade climbs the profile's whole ladder.
    from tierflow.calibration import load_calibration
    from tierflow.evals.calibrate import calibrate_for_report

    monkeypatch.chdir(tmp_path)
    made = calibrate_for_report("bfcl", 0.9, out=tmp_path / "mine.json", limit=6,
                                profile="openai", models=bench_models_for("bfcl"), retry=RETRY,
                                response_cache=str(tmp_path / "c.sqlite"))  # fmt: skip
    native_file = tmp_path / ".tierflow" / "calibration" / "bfcl_native.json"
    assert [file for _, file in made] == [tmp_path / "mine.json", native_file.relative_to(tmp_path)]
    assert [cal.suite for cal, _ in made] == ["bfcl", "bfcl_native"]
    assert load_calibration(native_file).suite == "bfcl_native" and native_file.exists()
    only = calibrate_for_report("mmlu", 0.9, limit=6, profile="openai", retry=RETRY,
                                models=bench_models_for("mmlu"))  # fmt: skip
    assert [cal.suite for cal, _ in only] == ["mmlu"]


def test_calibrate_cli_refuses_a_bad_target():
    from tierflow.cli import app

    res = CliRunner().invoke(app, ["calibrate", "gsm8k", "--target-quality", "1.5"])
    assert res.exit_code == 2 and "(0, 1]" in res.output
    res = CliRunner().invoke(app, ["calibrate", "gsm8k", "--confidence", "1.2"])
    assert res.exit_code == 2 and "[0.5, 1)" in res.output


def test_unknown_suite_is_named_with_the_choices():
    with pytest.raises(ValueError, match="choose from"):
        calibrate("nope", 0.95)


@pytest.mark.parametrize(
    "module",
    ["tierflow.cache", "tierflow.calibration", "tierflow.tiers", "tierflow.nodes.verifier",
     "tierflow.graphs.benchmarks.specs", "tierflow.evals.benchmark_report", "tierflow.evals._figures", "tierflow.evals.calibrate",
     "tierflow.evals.headroom"],
)  # fmt: skip
def test_docstring_examples_run(module):
    import doctest
    import importlib

    failed, attempted = doctest.testmod(importlib.import_module(module))
    assert attempted > 0 and failed == 0


def test_bfcl_forced_and_native_tool_calling_score_the_same_calls():
    for suite in ("bfcl", "bfcl_native"):
        models = bench_models_for(suite, {"nano": 1.0, "mini": 1.0, "flagship": 1.0})
        result = run(suite, "all-nano", limit=8, profile="openai", models=models, retry=RETRY)
        assert result.quality == 1.0 and result.errors == 0, suite
        request = models["nano"].requests[0]
        if suite == "bfcl":  # the calls forced into one schema
            assert request.tool_names == ["finish"]
        else:  # the item's own functions, offered natively; nothing is run
            assert "finish" not in request.tool_names and request.tool_choice == "auto"
            (item,) = load_items("bfcl", 1)
            assert request.tool_names == [t["function"]["name"] for t in item["tools"]]


def test_mbpp_cascade_sends_code_failing_its_stated_test_up_the_ladder():
    models = bench_models_for("mbpp", {"nano": 0.0, "mini": 0.0, "flagship": 1.0})
    result = run("mbpp", "cascade", limit=3, profile="openai", models=models, retry=RETRY)
    assert result.quality == 1.0
    assert all(
        e.subagent_tiers["solve"] == "flagship" and e.escalations >= 1 for e in result.examples
    )
    # Each wrong answer went back to its tier once, with the test's error, before climbing.
    repairs = [r for r in models["nano"].requests if len(r.messages) == 4]
    assert len(repairs) == 3 and len(models["nano"].requests) == 6
    assert all("the stated test fails" in str(r.messages[-1].content) for r in repairs)


def _mbpp_calibration(tmp_path, models):
    cal = calibrate("mbpp", 0.95, limit=6, profile="openai", models=models, retry=RETRY,
                    response_cache=str(tmp_path / "c.sqlite"), out=tmp_path / "mbpp.json")  # fmt: skip
    sub = cal.subagents["solve"]
    assert sub.verifier is not None and sub.verifier.kind == "tests"
    return sub.verifier.repairs, sub.evidence["repairs"]


def test_mbpp_calibration_drops_repairs_that_fix_nothing(tmp_path):
    # Scripted answers are the same on a repair: it only adds its cost.
    models = bench_models_for("mbpp", {"nano": 0.5, "mini": 0.5, "flagship": 1.0})
    repairs, seen = _mbpp_calibration(tmp_path, models)
    assert repairs == 0 and (seen["declared"], seen["kept"]) == (1, 0)
    assert seen["with"]["quality"] == seen["without"]["quality"]
    assert seen["with"]["cost_usd"] > seen["without"]["cost_usd"]


def test_mbpp_calibration_keeps_repairs_that_fix_code_for_less_than_the_flagship(tmp_path):
    models = bench_models_for("mbpp", {"nano": 0.0, "mini": 0.0, "flagship": 1.0})
    right = bench_models_for("mbpp", {"nano": 1.0})["nano"].responder
    wrong = models["nano"].responder

    def fixes_when_told(messages, temperature, seed):
        told = "was rejected" in str(messages[-1].content)
        return (right if told else wrong)(messages, temperature, seed)

    models["nano"].responder = fixes_when_told
    repairs, seen = _mbpp_calibration(tmp_path, models)
    assert repairs == 1 and (seen["declared"], seen["kept"]) == (1, 1)
    assert seen["with"]["quality"] == seen["without"]["quality"] == 1.0
    assert seen["with"]["cost_usd"] < seen["without"]["cost_usd"]


def test_mbpp_stated_test_says_what_the_code_returned_for_the_repair_to_go_by():
    from tierflow.graphs.benchmarks.specs import MBPP

    check = MBPP.verifier.check
    assert check is not None and MBPP.verifier.repairs == 1
    task = {"test": "assert add(1, 2) == 3"}
    assert check(task, {"code": "def add(a, b):\n    return a + b\n"}) is None
    wrong = check(task, {"code": "def add(a, b):\n    return [a, b]\n"})
    assert wrong == "the stated test fails: AssertionError (add(1, 2) returned [1, 2])"
    crash = check(task, {"code": "def add(a, b):\n    return a / 0\n"})
    assert crash == "the stated test fails: ZeroDivisionError: division by zero"
    assert "does not parse" in str(check(task, {"code": "def add(:"}))


def test_bfcl_report_sets_native_tool_calling_beside_forced_for_the_small_tier(tmp_path):
    # Forced answers: nano's right on every item, the flagship's on some; native ones only from
    # the flagship, on every item.
    forced = bench_models_for("bfcl", {"nano": 1.0, "mini": 1.0, "flagship": 0.5})
    wrong = bench_models_for("bfcl", {"nano": 0.0, "mini": 0.0, "flagship": 1.0})

    def by_mode(right, wrong_native):
        def respond(messages, temperature, seed):
            forced_request = str(messages[1].content).startswith("Task (")
            return (right if forced_request else wrong_native)(messages, temperature, seed)

        return respond

    for tier, model in forced.items():
        model.responder = by_mode(model.responder, wrong[tier].responder)
    report = benchmark_report(
        "bfcl", ["all-flagship", "all-nano", "cascade"], limit=6, profile="openai",
        models=forced, retry=RETRY, out_dir=tmp_path,
        response_cache=str(tmp_path / "cache.sqlite"),
    )  # fmt: skip
    assert [r.policy for r in report.rows] == ["all-flagship", "all-nano", "cascade"]
    native_top, native, native_cascade = report.variants
    assert native.policy == "all-nano (native tools)" and native.n == 6
    assert [v.base for v in report.variants] == ["all-flagship", "all-nano", "cascade"]
    # Some wrong native calls drop a required argument: the schema check sends those (and only
    # those) up the ladder, where the flagship's native calls are right.
    assert 0 < native_cascade.quality <= native_cascade.escalation_rate < 1
    assert native_cascade.cost_usd > native.cost_usd
    assert native.quality == 0.0 and report.row("all-nano").quality == 1.0
    assert native_top.quality == 1.0
    # A variant's rows are relative to its own all-flagship, not to the forced one.
    forced_top = report.row("all-flagship")
    assert 0 < forced_top.quality < 1
    assert native_top.rel_cost == 1.0 and native_top.rel_quality == 1.0
    assert native.rel_cost == pytest.approx(native.cost_usd / native_top.cost_usd)
    assert native_cascade.rel_quality == native_cascade.quality  # not quality / forced_top's
    text = report.markdown_path.read_text()
    assert "all-nano (native tools) | 6 | 0.000" in text
    assert "- all-nano (native tools): 0.000" in text and "vs all-nano: 1.000" in text
    assert "- all-flagship (native tools): 1.000" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["variants"][1]["policy"] == "all-nano (native tools)"
    assert len(saved["items"]["all-nano (native tools)"]) == 6
    # Headline figures come from the tier policies only.
    assert "native" not in report.headline()


def test_report_works_out_what_a_cascade_would_need_from_its_own_items(tmp_path):
    # The flagship is always right; nano on a hash-picked half; the agreement check is noisy.
    # Calibration drops mini (no better than nano): the cascade is nano -> flagship.
    models = bench_models_for("mmlu", {"nano": 0.5, "mini": 0.5, "flagship": 1.0})
    cache, cal = str(tmp_path / "c.sqlite"), tmp_path / "cal.json"
    calibrate("mmlu", 0.95, limit=12, profile="openai", models=models, retry=RETRY,
              response_cache=cache, out=cal)  # fmt: skip
    report = benchmark_report("mmlu", ["all-flagship", "all-nano", "cascade", "router"], limit=16,
                              profile="openai", models=models, retry=RETRY, calibration=str(cal),
                              response_cache=cache, out_dir=tmp_path)  # fmt: skip
    h = report.headroom
    top, nano, cascade, router = report.results
    assert h is not None and h.cost == 0.45 and h.quality == 0.95
    assert h.cheap_accuracy == nano.quality
    # A perfect router pays nano where it does as well as the flagship, else the flagship.
    strong = {e.id: e for e in top.examples}
    best = sum(max(e.quality, strong[e.id].quality) for e in nano.examples) / nano.n
    routed = sum(e.cost_usd if e.quality >= strong[e.id].quality else strong[e.id].cost_usd
                 for e in nano.examples)  # fmt: skip
    assert h.oracle == pytest.approx((routed / top.cost_usd, best / top.quality))
    # The check's measured rates are those of the run: accepted = answered by nano.
    right = {e.id for e in nano.examples if e.quality == 1.0}
    kept = {e.id for e in cascade.examples if e.escalations == 0}
    tpr, fpr = h.measured
    assert tpr == len(kept & right) / len(right)
    assert fpr == len(kept - right) / (nano.n - len(right))
    # The expected cascade at the measured rates is the cascade that ran (the same requests).
    cost, quality = h.measured_outcome
    assert quality == pytest.approx(cascade.quality / top.quality)
    assert cost == pytest.approx(cascade.cost_usd / top.cost_usd, rel=1e-6)
    # A perfect verifier pays nano and the check everywhere and the flagship on nano's misses.
    fixed = (nano.cost_usd + report.row("cascade").verifier_usd) / top.cost_usd
    assert h.perfect_verifier == pytest.approx((fixed + 1 - nano.quality, best / top.quality))
    assert h.needed_cheap_accuracy == pytest.approx(1 - (0.45 - fixed))
    # Letting more wrong answers through never costs more, and never gains quality.
    looser = [h.outcome(tpr, 0.5) for tpr in (1.0, 0.5)]
    assert all(c <= h.outcome(t, 0.0)[0] + 1e-9 and q <= h.outcome(t, 0.0)[1] + 1e-9
               for (c, q), t in zip(looser, (1.0, 0.5), strict=True))  # fmt: skip
    # A router that sends the flagship exactly the items it does better on is the perfect one.
    assert h.routed(1.0, 0.0) == pytest.approx(h.oracle)
    # The router run's rates: sent up, by whether the flagship does better there.
    cheap_q = {e.id: e.quality for e in nano.examples}
    gain = {e.id for e in top.examples if e.quality > cheap_q[e.id]}
    up = {e.id for e in router.examples if e.subagent_tiers["solve"] == "flagship"}
    assert h.router_measured == (len(up & gain) / len(gain), len(up - gain) / (16 - len(gain)))
    assert h.routed(*h.router_measured) == pytest.approx(
        (router.cost_usd / top.cost_usd, router.quality / top.quality)
    )
    text = report.markdown_path.read_text()
    assert "What it would take to keep 95%" in text and "| TPR | verifier (cascade) |" in text
    saved = json.loads((tmp_path / "results.json").read_text())["headroom"]
    assert saved["measured_tpr_fpr"] == [tpr, fpr]


def _synthetic_report(policies: dict[str, list[tuple[float, float]]]):
    """A report from hand-made per-item (quality, cost) lists, with no model run."""
    from pathlib import Path

    from tierflow.evals._results import ExampleResult, SuiteResult
    from tierflow.evals.benchmark_report import BenchReport, _relative, _row
    from tierflow.evals.headroom import headroom

    def result(name, items):
        examples = tuple(
            ExampleResult(str(i), q, {}, {}, c, 0, 0, 0, 0.0, 0, {"solve": name})
            for i, (q, c) in enumerate(items)
        )
        return SuiteResult("mmlu", name, "openai", examples)

    results = {name: result(name, items) for name, items in policies.items()}
    rows = [_row(r) for r in results.values()]
    _relative(rows)
    report = BenchReport("mmlu", "report", "openai", list(results.values()), rows, [], None,
                         Path("unused"))  # fmt: skip
    report.headroom = headroom(results["all-nano"], results["all-flagship"], None)
    report.captured = report.captured_usd()
    return report


def test_headline_is_the_share_of_the_perfect_routers_saving_captured_at_95():
    # The flagship is right everywhere at $10; nano on items 0 and 2 at $1. A perfect router
    # pays the flagship on items 1 and 3 only: 22/40 = 55% of the cost, a saving of 45%.
    # The router keeps 100% at 31/40 = 77.5%: it captures 22.5/45 = 50% of that saving. The
    # cheaper "cheap" policy keeps 75% only, so it does not count.
    policies = {
        "all-flagship": [(1.0, 10.0)] * 4,
        "all-nano": [(1.0, 1.0), (0.0, 1.0), (1.0, 1.0), (0.0, 1.0)],
        "router": [(1.0, 1.0), (1.0, 10.0), (1.0, 10.0), (1.0, 10.0)],
        "cheap": [(1.0, 1.0), (1.0, 10.0), (1.0, 1.0), (0.0, 1.0)],
    }
    report = _synthetic_report(policies)
    c = report.captured
    assert report.headroom.oracle == pytest.approx((0.55, 1.0))
    assert c.policy == "router" and c.cost == pytest.approx(0.775) and c.kept == 1.0
    assert c.share == pytest.approx(0.5)
    assert "captured share of the perfect router's saving at >= 95% of all-flagship's " \
           "quality: 50.0% (router" in report.headline()  # fmt: skip


def test_headline_says_none_when_no_cheaper_policy_keeps_95_percent():
    policies = {
        "all-flagship": [(1.0, 10.0)] * 4,
        "all-nano": [(1.0, 1.0), (0.0, 1.0), (1.0, 1.0), (0.0, 1.0)],
        "cheap": [(1.0, 1.0), (1.0, 10.0), (1.0, 1.0), (0.0, 1.0)],  # 75% of the quality
    }
    report = _synthetic_report(policies)
    assert report.captured.policy is None and report.captured.share is None
    assert "captured share of the perfect router's saving: none at >= 95%" in report.headline()
    from tierflow.evals.headroom import captured_share

    # All-flagship itself (cost 1) keeps 100% but saves nothing: never the answer.
    assert captured_share([("all-flagship", 1.0, 1.0)], 0.5).share is None
