"""Citation grounding: near misses are snapped to the real line, inventions are rejected."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import HumanMessage

from tierflow.graphs.codebase_qa import (
    Answer,
    Findings,
    SearchTask,
    normalize_answer,
    normalize_findings,
    prefetch_grep,
    verify_findings,
)
from tierflow.graphs.codebase_qa.grounding import check, locate, normalize_code
from tierflow.nodes.subagent import _fit


def test_normalize_code_unescapes_and_unifies_quotes() -> None:
    assert normalize_code("&#34;&#34;&#34;Doc&#39;s&#34;&#34;&#34;\n  more") == '"""Doc"s"""'
    assert normalize_code("x = 'a'") == normalize_code('x  =  "a"')


def test_locate_snaps_the_line_to_the_quoted_code(qa_root: Path) -> None:
    root = str(qa_root)
    assert locate(root, ("./pkg/budget.py", 1, "def spend(amount):")) == (
        "pkg/budget.py",
        4,
        "def spend(amount):",
    )
    # the closest of several matches wins
    assert locate(root, ("pkg/retry.py", 99, "MAX_ATTEMPTS"))[1] == 9  # type: ignore[index]
    assert locate(root, ("pkg/retry.py", 2, "MAX_ATTEMPTS"))[1] == 3  # type: ignore[index]
    assert locate(root, ("pkg/retry.py", 3, "def invented():")) is None
    assert locate(root, ("pkg/nope.py", 1, None)) is None
    assert locate(root, ("../outside.py", 1, None)) is None


def test_check_names_the_problem(qa_root: Path) -> None:
    root = str(qa_root)
    assert check(root, [("pkg/budget.py", 4, "def spend(amount):")]) is None
    assert "pkg/budget.py:40 does not exist" in str(check(root, [("pkg/budget.py", 40, None)]))
    problem = check(root, [("pkg/retry.py", 1, "def spend(amount):")])
    assert problem is not None and "does not contain 'def spend(amount):'" in problem


def test_normalize_findings_keeps_grounded_and_drops_invented(qa_root: Path) -> None:
    env = {"root": str(qa_root)}
    mixed = Findings.model_validate(
        {
            "summary": "s",
            "findings": [
                {"path": "pkg/budget.py", "line": 2, "snippet": "def spend(amount):"},
                {"path": "pkg/retry.py", "line": 1, "snippet": "def invented():"},
            ],
        }
    )
    out = normalize_findings(SearchTask(query="spend"), mixed, env)
    assert [(f.path, f.line) for f in out.findings] == [("pkg/budget.py", 4)]
    invented = Findings.model_validate(
        {
            "summary": "s",
            "findings": [{"path": "pkg/retry.py", "line": 1, "snippet": "def invented():"}],
        }
    )
    # nothing grounded: kept as is so the verifier can tell the model what is wrong
    assert normalize_findings(SearchTask(query="x"), invented, env) == invented


def test_normalize_answer_drops_citations_of_missing_lines(qa_root: Path) -> None:
    state = {"env": {"root": str(qa_root)}}
    answer = Answer.model_validate(
        {
            "answer": "a",
            "citations": [
                {"path": "pkg/budget.py", "line": 4},
                {"path": "src/made_up.py", "line": 10},
            ],
        }
    )
    assert normalize_answer(answer, state).citations[0].path == "pkg/budget.py"
    assert len(normalize_answer(answer, state).citations) == 1
    only_bad = Answer.model_validate({"answer": "a", "citations": [{"path": "x.py", "line": 1}]})
    assert normalize_answer(only_bad, state) == only_bad


def test_fit_keeps_the_task_and_the_latest_steps() -> None:
    msgs = [HumanMessage("TASK")] + [HumanMessage(f"step {i} " + "x" * 100) for i in range(10)]
    fitted = _fit(msgs, 400)
    assert fitted[0].content == "TASK"
    assert "earlier steps left out" in str(fitted[1].content)
    assert fitted[-1].content == msgs[-1].content
    assert sum(len(str(m.content)) for m in fitted[2:]) <= 400
    assert _fit(msgs[:3], 10_000) == msgs[:3]


def _found(path: str, line: int, snippet: str) -> Findings:
    """Findings of one line, as the search subagent reports them."""
    return Findings.model_validate(
        {"summary": "s", "findings": [{"path": path, "line": line, "snippet": snippet}]}
    )


def test_findings_must_mention_the_query_when_the_tree_has_it(qa_root: Path) -> None:
    env = {"root": str(qa_root)}
    off_topic = _found("pkg/retry.py", 3, "MAX_ATTEMPTS = 3")
    problem = verify_findings(SearchTask(query="spend"), off_topic, env)
    assert problem is not None
    assert "no finding is where 'spend' is defined; it is defined at pkg/budget.py:4" in problem
    # a query that is not an identifier: any line mentioning it will do
    problem = verify_findings(SearchTask(query="retry helpers"), off_topic, env)
    assert problem is not None and "no finding contains 'retry helpers'" in problem
    on_topic = _found("pkg/budget.py", 4, "def spend(amount):")
    assert verify_findings(SearchTask(query="spend"), on_topic, env) is None
    # a query the tree does not contain cannot be demanded
    assert verify_findings(SearchTask(query="nowhere_to_be_found"), off_topic, env) is None


def test_prefetch_puts_definitions_before_mentions(qa_root: Path) -> None:
    (qa_root / "pkg" / "use.py").write_text("from pkg.budget import spend\n\nspend(3)\n")
    text = prefetch_grep(SearchTask(query="spend"), {"root": str(qa_root)})
    defined, mentions = text.split("\n\n")
    assert defined.splitlines() == [
        "Where 'spend' is defined:",
        "pkg/budget.py:4: def spend(amount):",
    ]
    assert mentions.splitlines()[0] == "Other lines mentioning 'spend':"
    assert "pkg/use.py:1: from pkg.budget import spend" in mentions
    assert prefetch_grep(SearchTask(query="absent_name"), {"root": str(qa_root)}) == (
        "grep('absent_name') found no lines."
    )


def test_a_path_written_as_a_whole_tool_line_is_split(qa_root: Path) -> None:
    env = {"root": str(qa_root)}
    copied = _found("pkg/budget.py:4: def spend(amount):", 4, "")
    out = normalize_findings(SearchTask(query="spend"), copied, env)
    assert [(f.path, f.line, f.snippet) for f in out.findings] == [
        ("pkg/budget.py", 4, "def spend(amount):")
    ]
    assert verify_findings(SearchTask(query="spend"), out, env) is None
    # a tool line that names a line the file lacks is still rejected, not invented
    wrong = copied.model_copy(
        update={"findings": [copied.findings[0].model_copy(update={"path": "pkg/budget.py:400"})]}
    )
    assert verify_findings(SearchTask(query="spend"), normalize_findings(
        SearchTask(query="spend"), wrong, env), env) is not None  # fmt: skip


def test_a_dotted_query_is_found_at_its_definition(qa_root: Path) -> None:
    env = {"root": str(qa_root)}
    at_def = _found("pkg/budget.py", 4, "def spend(amount):")
    # `pkg.budget.spend` is written nowhere, but the finding is where it is defined
    assert verify_findings(SearchTask(query="pkg.budget.spend"), at_def, env) is None
    elsewhere = _found("pkg/retry.py", 3, "MAX_ATTEMPTS = 3")
    problem = verify_findings(SearchTask(query="pkg.budget.spend"), elsewhere, env)
    assert problem is not None and "pkg/budget.py:4" in problem
