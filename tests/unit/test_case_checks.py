"""Checks that hold an answer to the question's own case: its input, its parameter, its sentence.

Each shape was a wrong answer the checks passed on a real run (rich 14.3.4 dev and test
splits, attrs): the branch for another input cited, the default the body substitutes left
out, a function's return annotation, the subject of a statement before the question, a
second part about another parameter of the same class, a generic base, "defined as".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa.claims import check_answer, parse_parts

TREE = {
    "padding.py": (
        "from typing import Tuple\n"  # 1
        "\n"
        "\n"
        "class Padding:\n"  # 4
        "    @staticmethod\n"
        "    def unpack(pad) -> Tuple[int, int, int, int]:\n"  # 6
        '        """Unpack padding specified in CSS style."""\n'
        "        if isinstance(pad, int):\n"  # 8
        "            return (pad, pad, pad, pad)\n"
        "        if len(pad) == 2:\n"  # 10
        "            top, right = pad\n"
        "            return (top, right, top, right)\n"  # 12
        "        if len(pad) == 4:\n"  # 13
        "            top, right, bottom, left = pad\n"  # 14
        "            return (top, right, bottom, left)\n"  # 15
        '        raise ValueError(f"1, 2 or 4 integers required; {len(pad)} given")\n'  # 16
    ),
    "style.py": (
        "class Style:\n"  # 1
        "    @classmethod\n"
        "    def null(cls):\n"  # 3
        "        return cls()\n"
        "\n"
        "    @classmethod\n"
        "    def parse(cls, definition):\n"  # 7
        '        if definition.strip() == "none" or not definition:\n'  # 8
        "            return cls.null()\n"  # 9
        "        style = cls()\n"  # 10
        "        return style\n"  # 11
    ),
    "progress.py": (
        "class TextColumn:\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class BarColumn:\n"  # 5
        "    pass\n"
        "\n"
        "\n"
        "class Progress:\n"  # 9
        "    def __init__(self, *columns, refresh=10):\n"  # 10
        "        self.columns = columns or self.get_default_columns()\n"  # 11
        "        self.refresh = refresh\n"
        "\n"
        "    @classmethod\n"
        "    def get_default_columns(cls):\n"  # 15
        "        return (\n"  # 16
        "            TextColumn(),\n"  # 17
        "            BarColumn(),\n"  # 18
        "        )\n"
    ),
    "table.py": (
        "HEAVY = 'heavy'\n"  # 1
        "\n"
        "\n"
        "class Table:\n"  # 4
        "    def __init__(\n"  # 5
        "        self,\n"
        "        box: str = HEAVY,\n"  # 7
        "        safe_box: bool = None,\n"  # 8
        "    ):\n"
        "        self.box = box\n"
        "        self.safe_box = safe_box\n"
    ),
    "live_render.py": "VerticalOverflowMethod = str\n",  # 1
    "live.py": (
        "from .live_render import VerticalOverflowMethod\n"  # 1
        "\n"
        "\n"
        "class Live:\n"  # 4
        "    def __init__(self, vertical_overflow: VerticalOverflowMethod = 'ellipsis'):\n"
        "        self.vertical_overflow = vertical_overflow\n"
    ),
    "prompt.py": (
        "from typing import Generic, TypeVar\n"  # 1
        "T = TypeVar('T')\n"
        "\n"
        "\n"
        "class PromptBase(Generic[T]):\n"  # 5
        "    pass\n"
        "\n"
        "\n"
        "class IntPrompt(PromptBase[int]):\n"  # 9
        "    pass\n"
        "\n"
        "\n"
        "NothingType = int | None\n"  # 13
    ),
}


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


UNPACK = "What does Padding.unpack do if I give it a tuple of three integers, e.g. (1, 2, 3)?"


def test_a_line_under_a_branch_for_another_input_does_not_answer_the_case(root: str) -> None:
    wrong = problems(root, UNPACK, "It unpacks it into top, right, bottom and left.",
                     ("padding.py", 14))  # fmt: skip
    assert wrong and "if len(pad) == 4" in wrong[0] and "padding.py:16" in wrong[0]
    assert problems(root, UNPACK, "It raises ValueError: 1, 2 or 4 integers required.",
                    ("padding.py", 16)) == []  # fmt: skip


def test_a_quoted_input_is_answered_from_the_branch_that_tests_it(root: str) -> None:
    q = 'What does Style.parse give back for the definition "none" or an empty string?'
    wrong = problems(root, q, "Style.parse returns a style object.", ("style.py", 11))
    assert wrong and "style.py:9" in wrong[0]
    assert problems(root, q, "It returns cls.null(), the null style.", ("style.py", 9)) == []


def test_a_parameter_left_out_is_answered_with_what_the_body_puts_in_its_place(
    root: str,
) -> None:
    q = "If I create a Progress without passing any columns, which columns does it get?"
    wrong = problems(root, q, "It has no columns by default.", ("progress.py", 10))
    assert wrong and "get_default_columns" in wrong[0] and "TextColumn, BarColumn" in wrong[0]
    right = check_answer(q, "A TextColumn and a BarColumn.", [("progress.py", 11)], root)
    assert right.problems == [] and ("progress.py", 17) in right.citations


def test_a_function_s_type_is_its_return_annotation_on_its_def_line(root: str) -> None:
    q = "What does Padding.unpack return, by its annotation?"
    wrong = problems(root, q, "A tuple of four integers.", ("padding.py", 15))
    assert wrong and "Tuple[int, int, int, int] at padding.py:6" in wrong[0]
    assert problems(root, q, "Tuple[int, int, int, int]", ("padding.py", 15)) == []


def test_a_statement_before_the_question_does_not_give_the_question_its_subject(
    root: str,
) -> None:
    q = "Live takes a vertical_overflow argument typed VerticalOverflowMethod. Where is VerticalOverflowMethod declared?"  # noqa: E501
    (part,) = parse_parts(q)
    assert part.kind == "location" and part.subject == "VerticalOverflowMethod"
    assert problems(root, q, "In live.py, class Live.", ("live.py", 4))
    assert problems(root, q, "In live_render.py.", ("live_render.py", 1)) == []
    (base,) = parse_parts("IntPrompt is what you use for numbers. What is its base class?")
    assert base.kind == "base" and base.subject == "IntPrompt"


def test_a_second_part_is_about_its_own_parameter_not_the_first_part_s(root: str) -> None:
    q = "What is the default safe_box of Table, and which box style does a Table draw with by default?"  # noqa: E501
    wrong = problems(root, q, "safe_box defaults to None, and the box is None.", ("table.py", 8))
    assert wrong and "part 2 of 2" in wrong[0] and "HEAVY" in wrong[0]
    assert (
        problems(root, q, "safe_box is None; box is HEAVY.", ("table.py", 8), ("table.py", 7)) == []
    )


def test_a_generic_base_is_named_by_its_class_and_defined_as_asks_the_value(root: str) -> None:
    assert (
        problems(root, "What is the parent class of IntPrompt?", "PromptBase", ("prompt.py", 9))
        == []
    )
    q = "What is NothingType defined as in prompt.py?"
    assert parse_parts(q)[0].kind == "value"
    assert problems(root, q, "It is defined at prompt.py:13.", ("prompt.py", 13))
    assert problems(root, q, "int | None", ("prompt.py", 13)) == []


def test_a_name_the_question_sets_aside_is_not_its_subject() -> None:
    (part,) = parse_parts(
        "For the attrs() function (not attrs.define), what is kw_only by default?"
    )
    assert "attrs.define" not in part.subjects and "attrs" in part.subjects
    assert not parse_parts("Is X defined in a.py, or where is it defined?")[0].kind == "yes_no"


STAMPS = {
    "stamps/core.py": (
        "class Stamper:\n"  # 1
        "    def __init__(self, fmt=None, utc=True):\n"  # 2
        "        self._stamp = _make(fmt, utc)\n"  # 3
        "\n"  # 4
        "\n"  # 5
        "def _make(fmt, utc):\n"  # 6
        "    if fmt is None and not utc:\n"  # 7
        '        msg = "UNIX timestamps are always UTC."\n'  # 8
        "        raise ValueError(msg)\n"  # 9
        "    return fmt\n"  # 10
    ),
}


def test_a_raise_whose_message_is_a_variable_is_the_case_s_outcome(tree_of: Any) -> None:
    # ``msg = "..."; raise ValueError(msg)`` (the form ruff's EM101 asks for) holds the message
    # words; "timestamp." ending a sentence is a word of the case, not a dotted code name.
    root = tree_of(STAMPS)
    q = ("I create stamps.core.Stamper(utc=False) and leave the format out, hoping for a "
         "local-time UNIX timestamp. What happens?")  # fmt: skip
    assert problems(root, q, "It raises ValueError: UNIX timestamps are always UTC.",
                    ("stamps/core.py", 9)) == []  # fmt: skip
    (problem,) = problems(root, q, "It stores a stamper made from fmt and utc.",
                          ("stamps/core.py", 3))  # fmt: skip
    assert "the answer does not name ValueError" in problem
