"""Questions answered part by part: typed parts, each checked against the code index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.answer_checks import write_tree
from tierflow.graphs.codebase_qa.checks import answer_evidence
from tierflow.graphs.codebase_qa.claims import check_answer, parse_parts
from tierflow.graphs.codebase_qa.schemas import SearchTask
from tierflow.graphs.codebase_qa.search import prefetch_grep, search_tools, shortcut_search

TREE = {
    "pkg/__init__.py": "from pkg.editor import Editor as Editor\n",
    "pkg/editor.py": (
        '"""Editing."""\n'  # 1
        "import typing as t\n"  # 2
        "\n"  # 3
        "LIMIT = 30\n"  # 4
        "\n"  # 5
        "\n"  # 6
        "class Base:\n"  # 7
        "    pass\n"  # 8
        "\n"  # 9
        "\n"  # 10
        "class Editor(Base):\n"  # 11
        '    """An editor.\n'  # 12
        "\n"  # 13
        "    :param extension: the file's extension.\n"  # 14
        '    """\n'  # 15
        "\n"  # 16
        "    shells = {'bash': 1, 'zsh': 2}\n"  # 17
        "\n"  # 18
        "    def __init__(\n"  # 19
        "        self,\n"  # 20
        "        parent: t.Optional['Base'] = None,\n"  # 21
        '        extension: str = ".txt",\n'  # 22
        "    ) -> None:\n"  # 23
        "        self.extension = extension\n"  # 24
        "\n"  # 25
        "    def edit(self, text: str, strict: bool = False) -> str:\n"  # 26
        '        """Edit ``text``; never empty."""\n'  # 27
        "        if not text:\n"  # 28
        '            raise ValueError("empty")\n'  # 29
        "        return text\n"  # 30
    ),
    "pkg/colors.py": (
        "import enum\n"  # 1
        "\n"  # 2
        "\n"  # 3
        "class Color(enum.Enum):\n"  # 4
        '    """Colours."""\n'  # 5
        "\n"  # 6
        "    RED = 1\n"  # 7
        "    GREEN = 2\n"  # 8
    ),
    "pkg/runner.py": (
        "def run_job(job):\n"  # 1
        + "".join(f"    step_{i} = job.step({i})\n" for i in range(2, 18))  # 2-17
        + "    try:\n"  # 18
        "        job.go()\n"  # 19
        "    except Abort:\n"  # 20
        '        print("Aborted!")\n'  # 21
    ),
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TIERFLOW_MODEL_CACHE", str(tmp_path / "cache"))
    return write_tree(tmp_path / "src", TREE)


def problems(root: str, question: str, answer: str, *cites: tuple[str, int]) -> list[str]:
    return check_answer(question, answer, list(cites), root).problems


def test_a_question_is_split_into_typed_parts() -> None:
    parts = parse_parts(
        "Where is the Editor class defined, and what is the default extension its constructor uses?"
    )
    assert [(p.number, p.of, p.kind, p.subject) for p in parts] == [
        (1, 2, "location", "Editor"),
        (2, 2, "default", "Editor"),  # "its constructor" is the earlier part's class
    ]
    assert "signature" in parts[1].wants
    kinds = {
        "What is the base class of Editor?": "base",
        "What is the annotated type of the parent parameter of Editor.__init__?": "type",
        "Which shells are registered in Editor.shells?": "members",
        "Does Editor.edit accept an empty text?": "yes_no",
        "What is the value of LIMIT?": "value",
        "What does Editor.edit return?": "behaviour",
        "What are the parameters of Editor.edit?": "members",
        # a keyword argument written as code is not the word "default"
        "What happens if I pass both default= and factory= to Editor.edit?": "behaviour",
        "What is the default of Editor.edit's factory?": "default",
    }
    assert {q: parse_parts(q)[0].kind for q in kinds} == kinds
    two = parse_parts("Where is edit defined, and when text is empty does it raise?")
    assert [p.kind for p in two] == ["location", "yes_no"]


def test_location_cites_the_definition_not_an_import_site(root: str) -> None:
    q = "Where is the class Editor defined?"
    assert problems(root, q, "In pkg/editor.py.", ("pkg/editor.py", 11)) == []
    assert problems(root, q, "In pkg/__init__.py.", ("pkg/__init__.py", 1)) == [
        "no cited line defines Editor; it is defined at pkg/editor.py:11"
    ]
    moved = check_answer(q, "In pkg/editor.py.", [("pkg/editor.py", 1)], root)
    assert moved.problems == [] and moved.citations == [("pkg/editor.py", 11)]


def test_a_default_is_the_signature_s(root: str) -> None:
    q = "What is the default extension of Editor.__init__?"
    ok = check_answer(q, 'It defaults to ".txt".', [("pkg/editor.py", 19)], root)
    assert ok.problems == []
    assert problems(root, q, 'It defaults to ".md".', ("pkg/editor.py", 22)) == [
        'Editor.__init__(extension) is set to ".txt" at pkg/editor.py:22, but the answer says ".md"'
    ]
    assert problems(root, "What is the value of LIMIT?", "LIMIT is 20.", ("pkg/editor.py", 4))


def test_a_type_is_the_annotation_and_never_the_class_itself(root: str) -> None:
    q = "What is the annotated type of the parent parameter of Editor.__init__?"
    assert problems(root, q, "t.Optional['Base']: a Base or None.", ("pkg/editor.py", 21)) == []
    (problem,) = problems(root, q, "parent is an Editor.", ("pkg/editor.py", 21))
    assert "Editor is the class itself" in problem and "leaves out Optional, Base" in problem


def test_bases_are_the_class_statement_s(root: str) -> None:
    q = "What is the base class of Editor?"
    assert problems(root, q, "Editor extends Base.", ("pkg/editor.py", 11)) == []
    assert problems(root, q, "Editor extends object.", ("pkg/editor.py", 11))


def test_members_are_checked_one_by_one(root: str) -> None:
    q = "Which shells are registered in Editor.shells?"
    assert problems(root, q, "bash and zsh", ("pkg/editor.py", 17)) == []
    (problem,) = problems(root, q, "bash and fish", ("pkg/editor.py", 17))
    assert "leaves out zsh" in problem
    q2 = "What are the parameters of Editor.edit?"
    assert problems(root, q2, "text and strict", ("pkg/editor.py", 26)) == []
    assert problems(root, q2, "text only", ("pkg/editor.py", 26))


def test_a_yes_no_must_cite_the_deciding_body(root: str) -> None:
    q = "Does Editor.edit accept an empty text?"
    assert problems(root, q, "No: it raises ValueError.", ("pkg/editor.py", 29)) == []
    for line in (26, 27, 1):  # its def line, its docstring, line 1
        (problem,) = problems(root, q, "No: it raises ValueError.", ("pkg/editor.py", line))
        assert "must cite the code that decides it" in problem
    assert "says neither" in problems(root, q, "It is in editor.py.", ("pkg/editor.py", 29))[0]
    assert "names KeyError" in problems(root, q, "No: KeyError.", ("pkg/editor.py", 29))[0]


def test_an_unanswered_part_is_named(root: str) -> None:
    q = "Where is edit defined, and when text is empty does it raise?"
    (problem,) = problems(root, q, "edit is defined in pkg/editor.py.", ("pkg/editor.py", 26))
    assert problem.startswith('part 2 of 2 (yes_no about edit: "when text is empty does it raise")')


def test_an_echo_of_the_task_fields_or_the_question_is_no_answer(root: str) -> None:
    q = "Which attributes does Editor document?"
    (problem,) = problems(root, q, "Its query and its file glob.", ("pkg/editor.py", 11))
    assert "restates the search tool's task fields (query, file_glob)" in problem
    (problem,) = problems(
        root, "Where is Editor defined?", "Editor is defined.", ("pkg/editor.py", 11)
    )
    assert "restates the question" in problem
    # seen on rich (held out): 'which attribute does the shorthand "uu" stand for?' answered "uu"
    (problem,) = problems(
        root, 'Which shorthand "uu" does Editor define?', "uu", ("pkg/editor.py", 11)
    )
    assert "restates the question" in problem


def test_the_answer_sees_each_part_and_its_facts(root: str) -> None:
    q = "Where is the Editor class defined, and what is the default extension its constructor uses?"
    text = answer_evidence({"request": q, "env": {"root": root}})
    assert "part 1 of 2 (location about Editor" in text
    assert "pkg/editor.py:11: class Editor is defined here" in text
    assert "pkg/editor.py:22: parameter extension of Editor.__init__" in text and '".txt"' in text


def test_search_uses_the_index_for_python_names(root: str) -> None:
    env: dict[str, Any] = {"root": root}
    names = [t.name for t in search_tools(env)]
    assert names[:3] == ["list_files", "grep", "read_file"] and "find_definition" in names
    found = shortcut_search(SearchTask(query="Editor"), env)
    assert found is not None and [(f.path, f.line) for f in found.findings] == [
        ("pkg/editor.py", 11)
    ]
    assert "pkg/editor.py:11: class Editor(Base):" in prefetch_grep(SearchTask(query="Editor"), env)


async def test_a_two_part_answer_missing_a_part_ends_unverified(
    scripted, make_ctx, thread, root
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from tierflow.graphs.codebase_qa import build
    from tierflow.testing import tool_reply
    from tierflow.tiers import TierPolicy

    q = "Where is edit defined, and when text is empty does it raise?"
    half = tool_reply("final_answer", {"answer": "edit is defined in pkg/editor.py.",
                                       "citations": [{"path": "pkg/editor.py", "line": 26}]})  # fmt: skip
    search = [{"subagent": "search", "task": {"query": "edit"}}]
    flag = scripted("flag", [
        tool_reply("decide", {"plan": "look", "delegate": search, "done": False}),
        tool_reply("decide", {"plan": "done", "delegate": [], "done": True}),
        half, half,
    ])  # fmt: skip
    found = {"findings": [{"path": "pkg/editor.py", "line": 26, "snippet": "def edit("}],
             "summary": "pkg/editor.py:26"}  # fmt: skip
    mini = scripted(
        "mini", [tool_reply("next_action", {"step": {"action": "finish", "result": found}})]
    )
    graph = build().compile(checkpointer=InMemorySaver())
    ctx = make_ctx({"flagship": flag, "mini": mini}, policy=TierPolicy(human=False))
    out = await graph.ainvoke({"request": q, "env": {"root": root}}, thread(), context=ctx)

    assert out["status"] == "unverified"
    assert all(p.startswith("part 2 of 2 (yes_no about edit") for p in out["answer_problems"])


def test_a_right_fact_cited_elsewhere_is_cited_where_the_index_has_it(root: str) -> None:
    q = "What is the default extension of Editor.__init__?"
    moved = check_answer(q, 'It is ".txt".', [("pkg/__init__.py", 1)], root)
    assert moved.problems == [] and moved.citations == [("pkg/editor.py", 22)]
    (problem,) = problems(root, q, 'In pkg/__init__.py: ".txt".', ("pkg/__init__.py", 1))
    assert "but the answer names pkg/__init__.py" in problem
    assert problems(root, q, 'It is ".md".', ("pkg/__init__.py", 1))  # a wrong value stays wrong


def test_members_are_cited_at_their_own_lines(root: str) -> None:
    q = "What are the members of the Color enum?"
    report = check_answer(q, "RED and GREEN", [("pkg/colors.py", 4)], root)
    assert report.problems == []
    assert report.citations == [("pkg/colors.py", 4), ("pkg/colors.py", 7), ("pkg/colors.py", 8)]
    assert "leaves out GREEN" in problems(root, q, "RED only", ("pkg/colors.py", 4))[0]


def test_a_yes_no_sees_and_is_pointed_at_the_lines_about_it(root: str) -> None:
    q = "Does run_job catch Abort and print 'Aborted!'?"
    text = answer_evidence({"request": q, "env": {"root": root}})
    assert "pkg/runner.py:20: except Abort:" in text and "pkg/runner.py:21:" in text
    assert "pkg/runner.py:2:" not in text  # a long body's first lines do not crowd it out
    (problem,) = problems(root, q, "Yes.", ("pkg/runner.py", 1))
    assert "The lines about it: pkg/runner.py:20: except Abort:" in problem
    said = "Yes: job.go() runs in a try whose except Abort prints it."
    assert problems(root, q, said, ("pkg/runner.py", 19), ("pkg/runner.py", 20)) == []


RENDER = {
    "logs/render.py": (
        'KWARG_NAMES = ("exc_info", "stack_info")\n'  # 1
        "\n"  # 2
        "\n"  # 3
        "def render_kwargs(logger, name, event_dict):\n"  # 4
        '    """Render ``event_dict`` as keyword arguments."""\n'  # 5
        "    return {\n"  # 6
        '        "msg": event_dict.pop("event"),\n'  # 7
        "        **{kw: event_dict.pop(kw) for kw in KWARG_NAMES if kw in event_dict},\n"  # 8
        "    }\n"  # 9
    ),
}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        # "declared" names a type here, not a place
        ("What is the declared type of the serializer argument of Renderer?", "type"),
        ("What is the declared return type of render_kwargs?", "type"),
        ("Which source file defines render_kwargs?", "location"),
        # a plural noun after "which" (with words before it) asks for a list
        ("Which event dict keys does render_kwargs pass on as keyword arguments?", "members"),
        ("If I never call setup(), which processors make up the default chain?", "members"),
        ("Which class does Renderer subclass?", "base"),  # singular: one answer
    ],
)
def test_the_kind_of_a_part_is_what_its_question_asks(question: str, kind: str) -> None:
    assert [p.kind.value for p in parse_parts(question)] == [kind]


def test_a_list_a_function_makes_is_its_body_s_never_its_parameters(tree_of: Any) -> None:
    root = tree_of(RENDER)
    q = "Which event dict keys does render_kwargs pass as keyword arguments, not in extra?"
    (problem,) = problems(root, q, "event_dict", ("logs/render.py", 4))
    assert "event_dict is a parameter of render_kwargs" in problem
    (problem,) = problems(root, q, "exc_info and stack_info", ("logs/render.py", 4))
    assert "no cited line is in the body of render_kwargs" in problem
    # the constant the body reads holds the list: citing it is citing the body's evidence
    assert problems(root, q, "exc_info and stack_info", ("logs/render.py", 1)) == []
    (problem,) = problems(root, q, "exc_info and stack_info", ("logs/render.py", 7))
    assert "is not in the cited lines" in problem
    # a question that asks for the parameters still gets them
    assert problems(root, "Which parameters does render_kwargs take?",
                    "logger, name and event_dict", ("logs/render.py", 4)) == []  # fmt: skip


def test_a_dotted_name_says_which_of_two_same_named_definitions() -> None:
    (part,) = parse_parts(
        "The web layer has its own Renderer (pkg.web.Renderer). What is its base?"
    )
    assert "pkg.web.Renderer" in part.subjects and "Renderer" not in part.subjects


def test_a_named_enum_s_members_are_the_list_not_a_signature_s(root: str) -> None:
    q = "Which color parameters can Editor take? List the members of the Color enum."
    assert problems(root, q, "RED and GREEN", ("pkg/colors.py", 4)) == []
    (problem,) = problems(root, q, "parent and extension", ("pkg/editor.py", 19))
    assert "Color (pkg/colors.py:4) has RED, GREEN" in problem


def test_an_answer_that_says_nothing_is_no_answer(root: str) -> None:
    (problem,) = problems(root, "How many shells does Editor.shells hold?", ", ",
                          ("pkg/editor.py", 17))  # fmt: skip
    assert problem.startswith("the answer says nothing")


def test_where_something_ends_up_asks_what_the_code_does() -> None:
    assert [p.kind.value for p in parse_parts("Where do the bytes end up?")] == ["value"]
    assert [p.kind.value for p in parse_parts("Where does pkg define Editor?")] == ["location"]


def test_a_value_answer_naming_only_the_question_s_own_names_is_refused(root: str) -> None:
    q = "I use Editor and pass no extension. Where does the extension end up?"
    (problem,) = problems(
        root, q, "The extension is kept by the Editor class.", ("pkg/editor.py", 11)
    )
    assert "states no value beyond the question's own names" in problem
    assert problems(root, q, "In self.extension", ("pkg/editor.py", 24)) == []


TWINS = {
    "logs/__init__.py": "",
    "logs/render.py": "class Renderer:\n    pass\n",  # 1
    "logs/web.py": (
        "from logs.render import Renderer as BaseRenderer\n"  # 1
        "\n"  # 2
        "\n"  # 3
        "class Renderer(BaseRenderer):\n"  # 4
        "    pass\n"  # 5
    ),
}


def test_the_bases_asked_are_the_named_class_s_not_a_same_named_one_s(tree_of: Any) -> None:
    root = tree_of(TWINS)
    q = "The web layer has its own Renderer (logs.web.Renderer). Which class does it subclass?"
    (problem,) = problems(root, q, "class Renderer, defined here", ("logs/render.py", 1))
    assert "no cited line is the class statement of Renderer (logs/web.py:4)" in problem
    assert problems(root, q, "BaseRenderer (logs.render.Renderer)", ("logs/web.py", 4)) == []


def test_a_constructor_s_parameters_are_the_attributes_it_stores(root: str) -> None:
    q = "Which attributes does Editor document in its __init__?"
    assert problems(root, q, "parent and extension", ("pkg/editor.py", 19)) == []
