"""Answers from held-out trees: mangled paths mapped, locations named, parts judged on their body.

Each case is a shape a real local-model answer about httpx took (bench/results/), rebuilt on a
small tree: ``#/models.py`` for ``_models.py``, a right definition line whose answer names no
file, a second part answered only by the class line the first part cited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import write_tree
from tierflow.checks import Verdict
from tierflow.graphs.codebase_qa._paths import (
    fix_file_names,
    resolve_cite,
    resolve_path,
    shown_lines,
)
from tierflow.graphs.codebase_qa._values import states
from tierflow.graphs.codebase_qa.checks import normalize_answer, verify_answer
from tierflow.graphs.codebase_qa.claims import check_answer, parse_parts
from tierflow.graphs.codebase_qa.schemas import Answer, Citation

TREE = {
    "__init__.py": 'from ._decoders import MultiDecoder\n__all__ = ["MultiDecoder", "Timeout"]\n',
    "_config.py": (
        '__all__ = ["Limits", "Timeout"]\n'  # 1
        "\n"  # 2
        "class Timeout:\n"  # 3
        "    def __init__(self, timeout: float = 5.0) -> None:\n"  # 4
        "        self.timeout = timeout\n"  # 5
        "\n"  # 6
        "\n"  # 7
        "class Limits:\n"  # 8
        "    pass\n"  # 9
        "\n"  # 10
        "DEFAULT_TIMEOUT_CONFIG = Timeout(timeout=5.0)\n"  # 11
    ),
    "_decoders.py": (
        "class ContentDecoder:\n"  # 1
        "    def decode(self, data: bytes) -> bytes:\n"  # 2
        "        return data\n"  # 3
        "\n"  # 4
        "\n"  # 5
        "class MultiDecoder(ContentDecoder):\n"  # 6
        '    """Handle the case where multiple encodings have been applied."""\n'  # 7
        "\n"  # 8
        "    def __init__(self, children: list[ContentDecoder]) -> None:\n"  # 9
        "        # the order is reversed for decoding\n"  # 10
        "        self.children = list(reversed(children))\n"  # 11
        "\n"  # 12
        "    def decode(self, data: bytes) -> bytes:\n"  # 13
        "        for child in self.children:\n"  # 14
        "            data = child.decode(data)\n"  # 15
        "        return data\n"  # 16
    ),
}
FILES = sorted(TREE)


@pytest.fixture
def root(tmp_path: Path) -> str:
    for name, text in TREE.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("_config.py", "_config.py"),
        ("#/config.py", "_config.py"),
        ("config.py", "_config.py"),
        ("./_decoders.py", "_decoders.py"),
        ("httpx/_decoders.py", "_decoders.py"),
        ("#/$defs/Citation", None),
        ("other.py", None),
    ],
)
def test_a_mangled_path_means_the_one_file_it_can_mean(given: str, meant: str | None) -> None:
    assert resolve_path(given, FILES) == meant


def test_a_line_inside_the_path_is_the_citation_line() -> None:
    assert resolve_cite("/decoders.py:13", 148, FILES) == ("_decoders.py", 13)
    assert resolve_cite("nowhere.py:3", 3, FILES) is None


def test_a_schema_reference_for_a_path_takes_the_one_shown_file_with_that_line() -> None:
    # seen on attrs: a 0.5B draft cited "#/$defs/Citation" at the right lines of exceptions.py
    shown = shown_lines("_config.py:4: parameter timeout ...\n_decoders.py:6: class ...", FILES)
    assert shown == {4: {"_config.py"}, 6: {"_decoders.py"}}
    assert resolve_cite("#/$defs/Citation", 6, FILES, shown) == ("_decoders.py", 6)
    assert resolve_cite("search", 4, FILES, shown) == ("_config.py", 4)
    # a line no shown file has, or one two shown files have, is left for the check to reject
    assert resolve_cite("#/$defs/Citation", 9, FILES, shown) is None
    both = shown_lines("_config.py:6: x\n_decoders.py:6: y", FILES)
    assert resolve_cite("#/$defs/Citation", 6, FILES, both) is None
    # a path naming a Python file that does not exist is not moved to another file
    assert resolve_cite("nowhere.py", 6, FILES, shown) is None


def test_a_draft_citing_the_schema_reference_is_checked_at_the_evidence_lines(root: str) -> None:
    q = "What is the default timeout of Timeout's constructor?"
    out = _final(root, q, "The default is 5.0.", [("#/$defs/Citation", 4)])
    assert out.citations == [Citation(path="_config.py", line=4)]
    assert verify_answer(out, {"request": q, "env": {"root": root}}) is None


def test_file_names_in_the_text_are_mapped_and_real_ones_kept() -> None:
    text = "decoders.py:6 defines it; see also _config.py and pkg/_config.py"
    assert fix_file_names(text, FILES) == (
        "_decoders.py:6 defines it; see also _config.py and pkg/_config.py"
    )
    # a name two files could mean stays as written
    assert fix_file_names("in a.py", ["x/_a.py", "y/a_.py", "z/_a.py"]) == "in a.py"


def _final(root: str, question: str, text: str, cites: list[tuple[str, int]]) -> Answer:
    state = {"request": question, "env": {"root": root}}
    given = Answer(answer=text, citations=[Citation(path=p, line=n) for p, n in cites])
    out = normalize_answer(given, state)
    assert isinstance(out, Answer)
    return out


def test_a_right_location_whose_text_names_no_file_gets_it_named(root: str) -> None:
    q = "Where is the class MultiDecoder defined (it is re-exported by __init__.py)?"
    out = _final(root, q, "MultiDecoder is defined here: class MultiDecoder(ContentDecoder)",
                 [("#/decoders.py", 6)])  # fmt: skip
    assert out.citations == [Citation(path="_decoders.py", line=6)]
    assert out.answer.endswith("(defined in _decoders.py, line 6)")
    assert verify_answer(out, {"request": q, "env": {"root": root}}) is None
    # a wrong definition line is not named for it: it stays wrong
    bad = _final(root, q, "MultiDecoder is defined here", [("__init__.py", 1)])
    assert "(defined in" not in bad.answer
    assert verify_answer(bad, {"request": q, "env": {"root": root}})


def test_the_text_s_mangled_file_name_is_the_tree_s(root: str) -> None:
    q = "Where is the class MultiDecoder defined?"
    out = _final(
        root, q, "decoders.py:6: class MultiDecoder is defined here", [("_decoders.py", 6)]
    )
    assert out.answer.startswith("_decoders.py:6:")
    assert "(defined in" not in out.answer


def test_an_order_question_is_behaviour_and_needs_the_body(root: str) -> None:
    q = "Where is MultiDecoder defined, and in what order does it apply its child decoders when decoding?"
    assert [p.kind for p in parse_parts(q)] == ["location", "behaviour"]
    # The first part's class line is no answer to the second (the httpx answer that passed)
    only_class = check_answer(
        q, "MultiDecoder is defined in _decoders.py at line 6. It inherits from ContentDecoder.",
        [("_decoders.py", 6)], root,
    )  # fmt: skip
    assert only_class.problems and "part 2 of 2" in only_class.problems[0]
    said = check_answer(
        q, "MultiDecoder is defined in _decoders.py at line 6; it decodes with its children reversed.",
        [("_decoders.py", 6)], root,
    )  # fmt: skip
    assert said.problems == []
    # the behaviour is cited in the body, not at the class line
    assert any(n > 7 for p, n in said.citations if p == "_decoders.py")


def test_the_members_of_a_named_file_s_all(root: str) -> None:
    q = "What names does the __all__ of _config.py contain?"
    (part,) = parse_parts(q)
    assert (part.kind, part.subject, part.files) == ("members", "__all__", ("_config.py",))
    assert check_answer(q, "Limits and Timeout", [("_config.py", 1)], root).problems == []
    wrong = check_answer(q, "MultiDecoder, Timeout", [("__init__.py", 2)], root).problems
    assert wrong and "leaves out Limits" in wrong[0]


def test_a_call_of_literal_numbers_is_stated_by_its_numbers() -> None:
    assert states("The timeout is 5.0 seconds", "Timeout(timeout=5.0)")
    assert not states("The timeout is 10 seconds", "Timeout(timeout=5.0)")
    assert states("100 connections, 20 kept alive", "Limits(max_connections=100, keep=20)")
    assert not states("100 connections", "Limits(max_connections=100, keep=20)")
    assert not states("5.0", 'Timeout(5.0, unit="ms")')  # a string argument: not numbers only


# --- shapes first seen on attrs (its package is ``attr``; users write ``attrs.``) ---------------

ATTR_TREE = {
    "validators.py": (
        "def set_disabled(disabled):\n"  # 1
        "    global _run_validators\n"  # 2
        "    _run_validators = not disabled\n"  # 3
        "\n"  # 4
        "\n"  # 5
        "def not_(validator, *, msg=None,\n"  # 6
        "         exc_types=(ValueError, TypeError)):\n"  # 7
        "    return validator\n"  # 8
        "\n"  # 9
        "\n"  # 10
        "class _NotValidator:\n"  # 11
        "    exc_types = None\n"  # 12
    ),
}


@pytest.fixture
def attr_root(tmp_path: Path) -> str:
    return write_tree(tmp_path, ATTR_TREE)


def test_the_public_package_name_finds_the_tree_s_definition(attr_root: str) -> None:
    q = "attrs.validators.not_ takes exc_types. Which exception types does it catch if I don't pass it?"
    (part,) = parse_parts(q)
    assert part.kind == "default" and "I" not in part.subjects
    # the not_ parameter's default, not the _NotValidator attribute of the same name
    assert check_answer(q, "exc_types is defined at validators.py:12", [("validators.py", 12)],
                        attr_root).problems  # fmt: skip
    ok = check_answer(q, "ValueError and TypeError", [("validators.py", 6)], attr_root)
    assert ok.problems == []
    assert ok.citations == [("validators.py", 7)]  # moved from the def line to the parameter's


def test_the_question_asked_back_is_no_answer_even_with_true_in_it(attr_root: str) -> None:
    q = "After attrs.validators.set_disabled(True), does the __init__ still call the validators?"
    assert [p.kind for p in parse_parts(q)] == ["yes_no"]
    problems = check_answer(q, q, [("validators.py", 3)], attr_root).problems
    assert problems and "restates the question" in problems[0]


def test_a_members_part_naming_no_member_is_unanswered(root: str) -> None:
    q = "Which names does the __all__ of _config.py list?"
    problems = check_answer(
        q, "__all__ is defined at _config.py:1", [("_config.py", 1)], root
    ).problems
    assert problems


def test_a_yes_no_only_a_person_can_settle_is_not_repairable(qa_root: Path) -> None:
    # The cited line holds the constant, but whether "yes" is right is not in it: no model's
    # repair can make the answer pass, so the check says so (the repairs end, unverified).
    state = {"request": "Is MAX_ATTEMPTS 3?", "env": {"root": str(qa_root)}}
    said = verify_answer(
        Answer(answer="Yes, MAX_ATTEMPTS = 3", citations=[Citation(path="pkg/retry.py", line=3)]),
        state,
    )
    assert isinstance(said, Verdict) and not said.ok and not said.repairable
    assert said.reason is not None and said.reason.endswith("a reviewer must confirm it")
    # a problem a repair can fix (a citation outside the deciding body) stays a plain reason
    state["request"] = "Is RetryPolicy a class?"
    wrong_place = Answer(answer="yes", citations=[Citation(path="pkg/retry.py", line=6)])
    assert "inside the body of" in str(verify_answer(wrong_place, state))
