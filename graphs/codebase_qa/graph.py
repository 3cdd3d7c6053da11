"""Codebase QA: the flagship plans, mini subagents search a sandboxed tree, nano extracts facts.

Input: ``{"request": "<question>", "env": {"root": "<source tree>"}, "budget_usd": 0.05}``.
Output: ``answer`` = ``{"answer": ..., "citations": [{"path", "line"}]}``; every citation is
checked against the files (the answer is repaired once when one does not hold).
The schemas are :mod:`~tierflow.graphs.codebase_qa.schemas`', the search and fallback logic
:mod:`~tierflow.graphs.codebase_qa.search`'s and the checks :mod:`~tierflow.graphs.codebase_qa.checks`';
this module only declares the subagents and the supervisor and wires them.
"""

from __future__ import annotations

from typing import Any

from tierflow.graphs.codebase_qa._drafts import PART_DRAFTS
from tierflow.graphs.codebase_qa.checks import (
    answer_evidence,
    first_searches,
    normalize_answer,
    normalize_findings,
    parts_covered,
    verify_answer,
    verify_facts,
    verify_findings,
)
from tierflow.graphs.codebase_qa.oracle import oracle
from tierflow.graphs.codebase_qa.schemas import (
    Answer,
    Citation,
    ExtractTask,
    Fact,
    Facts,
    Finding,
    Findings,
    SearchTask,
)
from tierflow.graphs.codebase_qa.search import (
    SEARCH_NAME,
    fallback_plan,
    prefetch_grep,
    search_tools,
    shortcut_search,
)
from tierflow.graphs.codebase_qa.suite import make_input, score
from tierflow.graphspec import EvalSuite, GraphSpec, InputRules
from tierflow.nodes.subagent import ContextPolicy, Subagent
from tierflow.nodes.supervisor import Supervisor, build_supervisor_graph

NAME = "codebase_qa"  # the graph's name in langgraph.json, and its root run's in traces

__all__ = [
    "SUPERVISOR",
    "SEARCH",
    "EXTRACT",
    "build",
    "SPEC",
    "graph",
    "SearchTask",
    "Finding",
    "Findings",
    "ExtractTask",
    "Fact",
    "Facts",
    "Citation",
    "Answer",
    # re-exported from tierflow.graphs.codebase_qa.search and .checks, where they live
    "prefetch_grep",
    "normalize_findings",
    "verify_findings",
    "verify_facts",
    "normalize_answer",
    "verify_answer",
    "fallback_plan",
]

SEARCH = Subagent(
    name=SEARCH_NAME,
    description=(
        "searches the source tree with the code index (find_definition/signature/class_bases/"
        "docstring/members/references) and list_files/grep/read_file; reports file:line findings"
    ),
    tier="mini",
    task_schema=SearchTask,
    output_schema=Findings,
    prompt=(
        "You search a source tree. The definitions and grep output under the task are real. If "
        "they show what the task asks for, finish now: copy path, line number and code from "
        "those lines. Otherwise ask find_definition or signature for a Python name, grep a "
        "shorter identifier for text, or read_file around a hit, then finish."
    ),
    tools=search_tools,
    max_steps=3,
    verifier=verify_findings,
    normalize=normalize_findings,
    prefetch=prefetch_grep,
    shortcut=shortcut_search,
)

EXTRACT = Subagent(
    name="extract",
    description="turns search findings into short facts, each with a file:line citation",
    tier="nano",
    task_schema=ExtractTask,
    output_schema=Facts,
    prompt="From the findings in the context, state the facts that answer the question, each citing path and line.",
    context=ContextPolicy.TASK_AND_RESULTS,
    verifier=verify_facts,
)

SUPERVISOR = Supervisor(
    subagents=[SEARCH, EXTRACT],
    prompt=(
        "You answer questions about a source tree by delegating. First delegate 1-3 'search' tasks "
        "(a short identifier or phrase each). Set done=true as soon as the findings show what the "
        "question asks; delegate one 'extract' task with the question only when they do not."
    ),
    answer_schema=Answer,
    answer_prompt=(
        "Answer every part of the question from the evidence and the results only: give the "
        "value, base classes, exception or file exactly as the code shows them, and say what a "
        "function does when asked. The evidence lists the question's parts and the checked facts "
        "for each: answer each part in order (a yes/no part with yes or no and what the cited "
        "code does), never with the task's own fields. Cite the path and line of each line you "
        "rely on, exactly as given."
    ),
    max_turns=3,
    max_tasks_per_turn=3,
    answer_verifier=verify_answer,
    answer_normalize=normalize_answer,
    answer_evidence=answer_evidence,
    fallback_plan=fallback_plan,
    # The answer is drafted on nano from the index-checked facts, part by part when the index
    # has facts for every part (one sentence per part: extraction work a small model does
    # well); the check escalates a poor draft to the flagship, which writes the whole answer.
    # No second planning turn when the index has every part's facts.
    answer_tier="nano",
    part_drafts=PART_DRAFTS,
    enough=parts_covered,
    # When the index has a fact for every part, the searches are planned without a model and
    # the flagship is not called at all unless the draft's check fails.
    first_round=first_searches,
    name=NAME,  # its subagents start where .tierflow/calibration/codebase_qa.json says
)


def build() -> Any:
    """Uncompiled codebase-QA graph (choose the checkpointer at compile time)."""
    return build_supervisor_graph(SUPERVISOR)


SPEC = GraphSpec(
    name=NAME,
    build=build,
    # --root (default: the working folder) is the tree asked about
    inputs=InputRules(root_key="env"),
    suite=EvalSuite(dataset="codebase_qa.jsonl", make_input=make_input, score=score, oracle=oracle),
)
graph = SPEC.compile()
