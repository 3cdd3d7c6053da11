"""The answer checker: each claim the question asks for must agree with the cited code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems as check
from tests.answer_checks import write_tree
from tierflow.graphs.codebase_qa.claims import check_answer, question_parts, subjects_of

TREE = {
    "models.py": (
        "import os\n"
        "\n"
        "REDIRECT_LIMIT = 30\n"
        "CHUNK = 10 * 1024\n"
        "\n"
        "\n"
        "class Response:\n"
        "    def __init__(self, status=200, retries=3):\n"
        "        self.trust_env = True\n"
        "        self.max_redirects = REDIRECT_LIMIT\n"
        "\n"
        "    def raise_for_status(self):\n"
        "        if self.status >= 400:\n"
        "            raise HTTPError(self.status)\n"
    ),
    "errors.py": (
        "class BaseError(IOError):\n"
        "    pass\n"
        "\n"
        "\n"
        "class HTTPError(BaseError):\n"
        "    pass\n"
        "\n"
        "\n"
        "class ConnectTimeout(HTTPError, TimeoutError):\n"
        "    pass\n"
    ),
    "pricing.py": (
        "def cost_usd(price, input_tokens, output_tokens):\n"
        '    """Dollars for one request."""\n'
        "    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000\n"
    ),
    "api.py": "from models import Response\n",
}


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


def test_question_parts_and_subjects() -> None:
    assert question_parts("Where is CaseInsensitiveDict defined, and what is its base class?") == [
        "defined",
        "base",
    ]
    assert question_parts("What is the value of DEFAULT_REDIRECT_LIMIT?") == ["value"]
    assert question_parts("Does Session retry a ValueError?") == ["yes_no"]
    assert question_parts("Where is cost_usd defined, and what does it compute?") == [
        "defined",
        "behaviour",
    ]
    assert subjects_of("What is the default value of trust_env on a new Session?")[0] == "trust_env"
    assert subjects_of("`langgraph.managed` re-exports `IsLastStep`. Where?")[0] == "IsLastStep"


def test_a_value_must_be_the_one_on_the_cited_line(root: str) -> None:
    q = "What is the value of REDIRECT_LIMIT?"
    assert check(root, q, "REDIRECT_LIMIT is 30.", ("models.py", 3)) == []
    # The first wrong answer: the right line, another value.
    assert check(root, q, "REDIRECT_LIMIT is 20.", ("models.py", 3)) == [
        "REDIRECT_LIMIT is set to 30 at models.py:3, but the answer says 20"
    ]


def test_evident_equivalents_of_a_value_count(root: str) -> None:
    assert (
        check(root, "What is the value of CHUNK?", "CHUNK is 10240 bytes.", ("models.py", 4)) == []
    )
    assert check(root, "What is the default of trust_env?", "It is true.", ("models.py", 9)) == []
    assert check(root, "What is the default of retries?", "three", ("models.py", 8)) == []
    assert check(root, "What is the default of retries?", "5", ("models.py", 8))


def test_a_value_set_from_a_constant_may_be_answered_with_the_constant_s_value(root: str) -> None:
    verdict = check_answer(
        "What is the default value of max_redirects?", "30", [("models.py", 10)], root
    )
    assert verdict.problems == []
    assert ("models.py", 3) in verdict.citations  # the constant's line joins the evidence


def test_defined_in_needs_a_line_that_defines_the_name(root: str) -> None:
    q = "Where is the class Response defined?"
    assert check(root, q, "In models.py, line 7.", ("models.py", 7)) == []
    # The second wrong answer: a file and line where the class is not defined.
    assert check(root, q, "Response is defined in api.py.", ("api.py", 1)) == [
        "no cited line defines Response; it is defined at models.py:7"
    ]
    assert check(root, q, "Response is defined in models.py at line 2.", ("models.py", 7)) == [
        "the answer says line 2, but Response is defined at models.py:7"
    ]


def test_a_citation_off_by_some_lines_moves_to_the_definition(root: str) -> None:
    verdict = check_answer(
        "Where is the class Response defined?", "In models.py.", [("models.py", 1)], root
    )
    assert verdict.problems == [] and verdict.citations == [("models.py", 7)]


def test_base_classes_must_be_the_class_statement_s(root: str) -> None:
    q = "What is the base class of HTTPError?"
    assert check(root, q, "HTTPError inherits from BaseError.", ("errors.py", 5)) == []
    # The third wrong answer: line 1 of a file as evidence for a base class.
    problems = check(root, q, "HTTPError inherits from Exception.", ("api.py", 1))
    assert problems == ["no cited line is the class statement of HTTPError (errors.py:5)"]
    # The right class line, the wrong base.
    assert check(root, q, "HTTPError inherits from Exception.", ("errors.py", 5)) == [
        "HTTPError's bases at errors.py:5 are BaseError, but the answer names Exception"
    ]
    # Every base must be named; ancestors may be named too.
    q2 = "Which classes does ConnectTimeout inherit from?"
    assert check(root, q2, "HTTPError and TimeoutError", ("errors.py", 9)) == []
    assert check(root, q2, "HTTPError, TimeoutError (and so BaseError)", ("errors.py", 9)) == []
    assert check(root, q2, "HTTPError", ("errors.py", 9))


def test_raises_needs_a_raise_in_the_subject_s_body(root: str) -> None:
    q = "Which exception does Response.raise_for_status raise?"
    verdict = check_answer(q, "It raises HTTPError.", [("models.py", 12)], root)
    assert verdict.problems == [] and verdict.citations == [("models.py", 14)]
    assert check(root, q, "It raises ValueError.", ("models.py", 12))


def test_what_a_function_computes_must_be_said(root: str) -> None:
    q = "Where is the function cost_usd defined, and what does it compute?"
    ok = "cost_usd in pricing.py computes the dollars: input tokens times the input price plus output tokens times the output price."
    assert check(root, q, ok, ("pricing.py", 1)) == []
    # The main job's own answer on main: the place, not what it computes.
    problems = check(
        root,
        q,
        "The function cost_usd is defined in the pricing.py file at line 1.",
        ("pricing.py", 1),
    )
    # The unanswered part is named: the second, what it computes.
    assert len(problems) == 1 and problems[0].startswith(
        'part 2 of 2 (behaviour about cost_usd: "what does it compute"): '
        "the answer does not say what cost_usd does"
    )


def test_names_and_values_an_answer_states_must_be_in_its_citations(root: str) -> None:
    q = "Which class does the api module import?"
    assert check(root, q, "Response", ("api.py", 1)) == []
    assert check(root, q, "HTTPError", ("api.py", 1))


def test_citations_that_support_no_claim_are_dropped(root: str) -> None:
    verdict = check_answer(
        "What is the value of REDIRECT_LIMIT?",
        "30",
        [("models.py", 3), ("api.py", 1), ("nope.py", 4)],
        root,
    )
    assert verdict.problems == [] and verdict.citations == [("models.py", 3)]


def test_a_missing_file_is_reported_only_while_a_claim_fails(root: str) -> None:
    problems = check(root, "What is the value of REDIRECT_LIMIT?", "20", ("nope.py", 4))
    assert problems[0] == "nope.py:4 does not exist (copy path and line from the tool output)"
    assert problems[1].startswith("REDIRECT_LIMIT is set to 30 at models.py:3")


async def test_the_answer_check_is_recorded_as_a_verdict(scripted, make_ctx, thread, qa_root):
    from langgraph.checkpoint.memory import InMemorySaver

    from tierflow.graphs.codebase_qa import build
    from tierflow.testing import tool_reply

    def answer(path: str, line: int) -> object:
        args = {"answer": f"see {path}", "citations": [{"path": path, "line": line}]}
        return tool_reply("final_answer", args)

    def decide(done: bool) -> object:
        search = [{"subagent": "search", "task": {"query": "class RetryPolicy"}}]
        return tool_reply("decide", {"plan": "look", "delegate": [] if done else search,
                                     "done": done})  # fmt: skip

    found = {"findings": [{"path": "pkg/retry.py", "line": 6, "snippet": "class RetryPolicy:"}],
             "summary": "pkg/retry.py:6"}  # fmt: skip
    mini = scripted("mini", [tool_reply("next_action", {"step": {"action": "finish",
                                                                 "result": found}})])  # fmt: skip
    flag = scripted("flag", [decide(False), decide(True), answer("pkg/budget.py", 1),
                             answer("pkg/retry.py", 6)])  # fmt: skip
    graph = build().compile(checkpointer=InMemorySaver())
    request = {"request": "Where is RetryPolicy defined?", "env": {"root": str(qa_root)}}
    out = await graph.ainvoke(request, thread(), context=make_ctx({"flagship": flag, "mini": mini}))

    problem = "no cited line defines RetryPolicy; it is defined at pkg/retry.py:6"
    assert out["status"] == "answered" and out["answer_problems"] == [problem]
    notes = [(e["check"], e["ok"], e["reason"]) for e in out["events"] if e["kind"] == "verified"]
    assert notes == [("subagent", True, None), ("answer", False, problem), ("answer", True, None)]
