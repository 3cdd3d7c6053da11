"""``tierflow calibrate`` for a supervisor graph: each subagent's start tier, read at run time.

Scripted tiers on the codebase_qa suite: a mini whose searches never finish makes every
search climb, so starting on mini costs more than starting on the flagship and the file says
start on the flagship; the next run of the graph reads it (the default file, or one named in
the run's context) and mini is never asked. With a mini that does the work, mini is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langgraph.types import RetryPolicy

from tierflow.calibration import load_calibration
from tierflow.errors import InputError
from tierflow.evals import run
from tierflow.evals.calibrate_graph import calibrate_graph
from tierflow.evals.scripted import OracleChatModel, models_for

RETRY = RetryPolicy(max_attempts=1, initial_interval=0, jitter=False)
ITEMS = 8


def _lost_mini() -> OracleChatModel:
    return OracleChatModel(
        script=[], label="lost-mini", responder=lambda _messages: AIMessage("I could not find it.")
    )


def test_a_subagent_whose_cheap_tasks_climb_starts_on_the_flagship(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    models = models_for("codebase_qa") | {"mini": _lost_mini()}
    cal = calibrate_graph("codebase_qa", 0.95, limit=ITEMS, profile="openai", models=models,
                          retry=RETRY)  # fmt: skip
    written = load_calibration(tmp_path / ".tierflow" / "calibration" / "codebase_qa.json")
    assert written == cal
    search = cal.subagents["search"]
    low, high = search.evidence["declared"], search.evidence["top"]
    assert search.start_tier == "flagship", search.evidence["chosen_because"]
    assert low["start_tier"] == "mini" and low["tasks"] > 0 and low["climbed"] == low["tasks"]
    assert high["start_tier"] == "flagship" and high["climbed"] == 0
    assert low["cost_usd"] > high["cost_usd"]
    assert "climb" in search.evidence["chosen_because"]
    # The graph reads its default file: the searches start on the flagship, mini is not asked.
    asked = len(models["mini"].requests)
    after = run("codebase_qa", "tiered", limit=ITEMS, profile="openai", models=models, retry=RETRY)
    assert len(models["mini"].requests) == asked
    assert {e.subagent_tiers.get("search") for e in after.examples} - {None} == {"flagship"}


def test_a_cheap_tier_that_does_the_work_keeps_its_start(tmp_path: Path) -> None:
    models = models_for("codebase_qa")
    out = tmp_path / "cal.json"
    cal = calibrate_graph("codebase_qa", 0.95, limit=ITEMS, profile="openai", models=models,
                          retry=RETRY, out=out)  # fmt: skip
    search = cal.subagents["search"]
    assert search.start_tier == "mini", search.evidence["chosen_because"]
    assert search.evidence["declared"]["cost_usd"] < search.evidence["top"]["cost_usd"]
    # A file named in the run's context is the one read (here: it keeps mini).
    asked = len(models["mini"].requests)
    run("codebase_qa", "tiered", limit=ITEMS, profile="openai", models=models, retry=RETRY,
        calibration=str(out))  # fmt: skip
    assert len(models["mini"].requests) > asked


def test_a_suite_without_a_supervisor_graph_is_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="no graph suite 'gsm8k'.*codebase_qa"):
        calibrate_graph("gsm8k", 0.95, profile="openai")
    with pytest.raises(InputError, match=r"give a share in \(0, 1\]"):
        calibrate_graph("codebase_qa", 1.5, profile="openai")
