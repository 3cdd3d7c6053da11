"""Evals: evaluators, suite runs on scripted tiers (costs at openai prices), report, CLI, LangSmith."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

import tierflow.evals
from tierflow.evals import ExampleResult, SuiteResult, compare, langsmith_evaluate, run
from tierflow.evals.evaluators import (
    answer_match,
    citation_scores,
    exact_match,
    normalize,
    normalized_match,
    routing_correct,
    triage_scores,
)
from tierflow.evals.report import frontier_plot, pareto_frontier, recommend, render_table
from tierflow.evals.scripted import DEFAULT_ACCURACY, models_for

FAST = RetryPolicy(initial_interval=0.0, jitter=False, max_attempts=2)

# openai profile prices per request of the scripted doubles (1000 input, 100 output tokens):
NANO = (1000 * 0.20 + 100 * 1.25) / 1e6  # 0.000325
MINI = (1000 * 0.75 + 100 * 4.50) / 1e6  # 0.0012
FLAGSHIP = (1000 * 2.50 + 100 * 15.00) / 1e6  # 0.004


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
        "LANGSMITH_API_KEY",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def go(suite: str, policy: str = "tiered", limit: int = 3, **kw: Any) -> SuiteResult:
    kw.setdefault("models", models_for(suite))
    return run(suite, policy, limit=limit, profile="openai", retry=FAST, **kw)


# --- evaluators -------------------------------------------------------------------------------


def test_normalized_match_ignores_case_space_punctuation_and_uses_aliases() -> None:
    assert normalize("  `Graph/State.py` ") == "graph state py"
    assert normalized_match("'__END__'", "__end__")
    assert normalized_match(
        "langgraph.graph.StateGraph", "StateGraph", ["langgraph.graph.StateGraph"]
    )
    assert not normalized_match("StateGraphs", "StateGraph")
    assert not normalized_match("", "x")
    assert exact_match(" `2.0` ", "2.0") and not exact_match("2", "2.0")


def test_answer_match_accepts_reference_as_whole_words() -> None:
    assert answer_match("It returns CompiledStateGraph.", "CompiledStateGraph")
    assert not answer_match("It returns CompiledStateGraphX.", "CompiledStateGraph")
    assert answer_match("version 2", "2.0", ["2"])


def test_triage_scores_field_by_field() -> None:
    reference = {
        "category": "billing",
        "urgency": "medium",
        "needs_reply_draft": True,
        "fields": {"order_id": "ORD-12345", "amount_usd": 1240.0, "product": "Acme DB",
                   "customer_email": "a@b.example"},
    }  # fmt: skip
    outcome = {
        "classification": {"category": "Billing", "urgency": "high", "complex": True},
        "fields": {"order_id": "ord-12345", "amount_usd": 1240.001, "product": None,
                   "customer_email": "A@B.example"},
        "draft": {"subject": "s", "body": "b"},
    }  # fmt: skip
    assert triage_scores(outcome, reference) == {
        "category": 1.0, "urgency": 0.0, "needs_reply_draft": 1.0, "order_id": 1.0,
        "amount_usd": 1.0, "product": 0.0, "customer_email": 1.0,
    }  # fmt: skip
    assert set(triage_scores(None, reference).values()) == {0.0}


def test_citation_scores(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("\n".join(f"line {n}" for n in range(1, 11)) + "\n")
    evidence = [{"path": "pkg/a.py", "start_line": 4, "end_line": 6, "contains": "line 5"}]
    near = citation_scores([{"path": "langgraph/pkg/a.py", "line": 8}], evidence, tmp_path)
    assert near == {"cites_exist": 1.0, "evidence_file": 1.0, "evidence_line": 1.0}
    far = citation_scores([{"path": "pkg/a.py", "line": 9}], evidence, tmp_path)
    assert far == {"cites_exist": 1.0, "evidence_file": 1.0, "evidence_line": 0.0}
    missing = citation_scores([{"path": "pkg/a.py", "line": 99}, {"path": "../x.py", "line": 1}],
                              evidence, tmp_path)  # fmt: skip
    assert missing["cites_exist"] == 0.0
    assert citation_scores([], evidence, tmp_path)["cites_exist"] == 0.0


def test_routing_correct() -> None:
    assert routing_correct(" Nano", "nano") == 1.0
    assert routing_correct(None, "nano") == routing_correct("mini", "nano") == 0.0


# --- suite runs on scripted tiers -------------------------------------------------------------


def test_triage_tiered_costs_at_openai_prices() -> None:
    result = go("triage")
    # t-001, t-002: classify (nano) + extract (mini); t-003 needs a draft (flagship).
    assert [e.cost_usd for e in result.examples] == pytest.approx(
        [NANO + MINI, NANO + MINI, NANO + MINI + FLAGSHIP]
    )
    assert result.cost_usd == pytest.approx(0.008575)
    assert result.quality == 1.0 and result.errors == 0 and result.escalation_rate == 0.0
    assert result.examples[2].prediction["status"] == "sent"  # draft review was approved
    assert result.examples[0].subagent_tiers == {"classify": "nano", "extract": "mini"}
    assert result.tokens == 7 * 1100  # seven requests


def test_compare_policies_price_every_tier() -> None:
    nano, top = compare("triage", ["all-nano", "all-flagship"], limit=2, profile="openai",
                        models=models_for("triage"), retry=FAST)  # fmt: skip
    assert (nano.policy, top.policy) == ("all-nano", "all-flagship")
    assert nano.cost_usd == pytest.approx(4 * NANO)  # 0.0013
    assert top.cost_usd == pytest.approx(4 * FLAGSHIP)  # 0.016


def test_codebase_qa_and_routing_suites() -> None:
    qa = go("codebase_qa", limit=2)
    # supervisor x2 + answer on flagship, one search on mini, per question
    assert qa.cost_usd == pytest.approx(2 * (3 * FLAGSHIP + MINI))
    assert qa.quality == 1.0 and qa.metric("evidence_line") == 1.0
    routing = go("routing", "all-nano")
    assert routing.cost_usd == pytest.approx(3 * NANO) and routing.quality == 1.0
    assert routing.examples[0].subagent_tiers == {"route": "nano"}


def test_verifier_rejection_escalates_and_is_counted() -> None:
    models = models_for("triage")
    right = models["mini"].responder

    def bad_order_id(messages: Any) -> Any:
        reply = right(messages)
        reply.tool_calls[0]["args"]["order_id"] = "ORD-00000"  # not in the ticket: rejected
        return reply

    models["mini"].responder = bad_order_id
    result = go("triage", limit=1, models=models)
    ex = result.examples[0]
    assert ex.escalations == 1 and result.escalation_rate == 1.0
    assert ex.cost_usd == pytest.approx(NANO + MINI + FLAGSHIP)
    assert ex.subagent_tiers["extract"] == "flagship" and ex.quality == 1.0


def test_unattended_budget_stop_ends_budget_exhausted() -> None:
    result = go("triage", limit=1, budget_usd=1e-7)
    ex = result.examples[0]
    assert ex.error is None and ex.cost_usd == 0.0 and ex.quality < 1.0
    assert ex.prediction["status"] == "budget_exhausted"  # unattended: no interrupt


def test_unknown_suite_and_policy_fail_with_the_choices() -> None:
    with pytest.raises(ValueError, match="choose from"):
        go("nope")
    with pytest.raises(ValueError, match="'all'"):
        go("routing", "cheap")


def test_cheaper_tiers_score_lower_with_degraded_doubles() -> None:
    models = models_for("routing", accuracy=DEFAULT_ACCURACY)
    nano, top = compare("routing", ["all-nano", "all-flagship"], limit=20, profile="openai",
                        models=models, retry=FAST)  # fmt: skip
    assert top.quality == 1.0 and 0.3 < nano.quality < 0.9


# --- report -----------------------------------------------------------------------------------


def result(policy: str, quality: float, cost: float, tiers: dict[str, str]) -> SuiteResult:
    usage = [{"node": n, "subagent": n, "cost_usd": cost / len(tiers)} for n in tiers]
    ex = ExampleResult(
        id="x", quality=quality, scores={"q": quality}, subagent_quality={"classify": quality},
        cost_usd=cost, input_tokens=10, output_tokens=5, cached_tokens=0, latency_s=1.0,
        escalations=0, subagent_tiers=tiers, usage=usage,
    )  # fmt: skip
    return SuiteResult("triage", policy, "openai", (ex,))


def test_recommend_picks_the_cheapest_tier_within_tolerance() -> None:
    results = [
        result("all-flagship", 0.90, 0.04, {"classify": "flagship", "draft": "flagship"}),
        result("tiered", 0.87, 0.02, {"classify": "nano", "draft": "flagship"}),
        result("all-mini", 0.80, 0.01, {"classify": "mini", "draft": "mini"}),
    ]
    recs = {r.subagent: r for r in recommend(results, tolerance=0.05)}
    assert recs["classify"].tier == "nano" and recs["classify"].best_tier == "flagship"
    assert "quality 0.870" in recs["classify"].evidence and "0.900" in recs["classify"].evidence
    # draft has no metric of its own: suite quality 0.80 on mini is outside 0.05 of 0.90
    assert recs["draft"].tier == "flagship" and "suite quality" in recs["draft"].evidence
    assert {r.subagent: r.tier for r in recommend(results, tolerance=0.2)}["draft"] == "mini"


def test_pareto_frontier_and_table() -> None:
    a = result("cheap", 0.5, 0.01, {"classify": "nano"})
    b = result("dear", 0.9, 0.05, {"classify": "flagship"})
    c = result("worse", 0.4, 0.03, {"classify": "mini"})
    assert [r.policy for r in pareto_frontier([a, b, c])] == ["cheap", "dear"]
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(render_table([a, b]))
    text = console.export_text()
    assert "cheap" in text and "0.010000" in text and "0.900" in text


def test_frontier_plot_writes_a_png(tmp_path: Path) -> None:
    results = [result("cheap", 0.5, 0.01, {"c": "nano"}), result("dear", 0.9, 0.05, {"c": "mini"})]
    path = frontier_plot(results, tmp_path / "deep" / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- CLI and LangSmith ------------------------------------------------------------------------


def test_eval_command_prints_table_plot_and_recommendation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from tierflow.evals.cli import eval_command

    seen: dict[str, Any] = {}

    def fake_compare(suite: str, policies: list[str], **kw: Any) -> list[SuiteResult]:
        seen.update(suite=suite, policies=policies, **kw)
        return compare(suite, policies, limit=kw["limit"], profile="openai",
                       models=models_for(suite), retry=FAST)  # fmt: skip

    monkeypatch.setattr(tierflow.evals, "compare", fake_compare)
    app = typer.Typer()
    app.command()(eval_command)
    plot = tmp_path / "f.png"
    out = CliRunner().invoke(
        # a priced remote profile: a unit test must never start the local llama.cpp servers
        app,
        ["routing", "--policy", "all", "--limit", "2", "--plot", str(plot), "--profile", "openai"],
    )
    assert out.exit_code == 0, out.output
    assert seen["policies"] == ["tiered", "all-flagship", "all-nano", "cascade"]
    assert "all-nano" in out.output and "route: use nano" in out.output
    assert plot.read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(app, ["routing", "--policy", "cheap"])
    assert bad.exit_code != 0


def test_langsmith_evaluate_offline_with_scripted_tiers() -> None:
    results = langsmith_evaluate("triage", "tiered", 2, profile="openai",
                                 models=models_for("triage"), retry=FAST)  # fmt: skip
    rows = [{r.key: r.score for r in row["evaluation_results"]["results"]} for row in results]
    assert len(rows) == 2
    assert [row["quality"] for row in rows] == [1.0, 1.0]
    assert [row["cost_usd"] for row in rows] == pytest.approx([NANO + MINI] * 2)


def test_recommend_respects_a_quality_floor_and_says_when_data_is_thin() -> None:
    results = [
        result("all-flagship", 0.50, 0.04, {"classify": "flagship"}),
        result("all-nano", 0.333, 0.01, {"classify": "nano"}),
    ]
    (rec,) = recommend(results, tolerance=0.5, floor=0.6)
    assert rec.tier is None and "no tier reaches the quality floor 0.60" in rec.evidence
    assert rec.thin and "too few to decide" in rec.evidence  # one example per tier
    (ok,) = recommend(results, tolerance=0.5, floor=0.3, min_examples=1)
    assert ok.tier == "nano" and not ok.thin


def test_escalation_rate_only_where_escalation_can_happen_and_scripted_is_labelled() -> None:
    from rich.console import Console

    nano = result("all-nano", 0.5, 0.01, {"classify": "nano"})
    tiered = result("tiered", 0.9, 0.02, {"classify": "nano"})
    assert nano.escalation_rate is None and tiered.escalation_rate == 0.0
    scripted = SuiteResult("triage", "tiered", "openai", tiered.examples, scripted=True)
    console = Console(record=True, width=200)
    console.print(render_table([nano, scripted]))
    text = console.export_text()
    assert "SCRIPTED test models" in text
    row = next(line for line in text.splitlines() if "all-nano" in line)
    cells = [c.strip() for c in row.split("│")][1:-1]
    assert cells[1] == "all-nano" and cells[8] == "-", cells  # the escalation-rate column


def test_compare_reports_progress_after_each_example() -> None:
    seen: list[Any] = []
    results = compare("routing", ["all-nano", "all-flagship"], limit=3, profile="openai",
                      models=models_for("routing"), retry=FAST, progress=seen.append)  # fmt: skip
    assert [(p.policy, p.done, p.total) for p in seen] == [
        ("all-nano", 1, 3), ("all-nano", 2, 3), ("all-nano", 3, 3),
        ("all-flagship", 1, 3), ("all-flagship", 2, 3), ("all-flagship", 3, 3),
    ]  # fmt: skip
    # Spend grows to the policy's total; the ETA is 0 once a policy is done.
    assert seen[2].spent_usd == pytest.approx(results[0].cost_usd)
    assert seen[0].spent_usd <= seen[1].spent_usd <= seen[2].spent_usd
    assert seen[2].eta_s == 0 and seen[0].eta_s is not None and seen[0].eta_s >= 0


def test_the_progress_bar_shows_examples_and_spend() -> None:
    from rich.console import Console

    from tierflow.evals import progress_bar

    console = Console(record=True, width=160, force_terminal=False)
    with progress_bar(console) as bar:
        run("routing", "all-nano", limit=2, profile="openai", models=models_for("routing"),
            retry=FAST, progress=bar)  # fmt: skip
    text = console.export_text()
    assert "routing all-nano" in text and "2/2" in text and "$0.0" in text


def test_progress_written_to_a_file_is_plain_lines_at_each_twentieth() -> None:
    import io

    from rich.console import Console

    from tierflow.evals import Progress, progress_bar

    out = io.StringIO()
    with progress_bar(Console(file=out, width=160)) as bar:
        for done in range(1, 41):
            bar(Progress("gsm8k", "all-nano", done, 40, 0.001 * done, 3.0 * done))
    lines = out.getvalue().splitlines()
    assert len(lines) == 20  # every second example of 40, nothing in between
    assert lines[0] == "gsm8k all-nano: 2/40 $0.0020 elapsed 0:00:06 ETA 0:01:54"
    assert lines[-1] == "gsm8k all-nano: 40/40 $0.0400 elapsed 0:02:00 ETA 0:00:00"
