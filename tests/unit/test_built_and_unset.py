"""Checks for answers a small model's part drafts got wrong on the dev splits (rich, marshmallow).

Each shape passed the checks before: the annotation's base class given as the class a function
builds, an option declared without a value answered with a guess, another exception than the
one the cited ``raise`` raises, and an error message asked with "raised" (a behaviour, not a
value). A right answer to each is accepted, so none of these is a check that cannot pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa.claims import parse_parts

TREE = {
    "syntax.py": (
        "class SyntaxTheme:\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class ANSISyntaxTheme(SyntaxTheme):\n"  # 5
        "    pass\n"
        "\n"
        "\n"
        "class PygmentsSyntaxTheme(SyntaxTheme):\n"  # 9
        "    pass\n"
        "\n"
        "\n"
        "class Syntax:\n"  # 13
        "    @classmethod\n"
        "    def get_theme(cls, name) -> SyntaxTheme:\n"  # 15
        "        if isinstance(name, SyntaxTheme):\n"
        "            return name\n"  # 17
        "        theme: SyntaxTheme\n"  # 18
        "        if name in THEMES:\n"
        "            theme = ANSISyntaxTheme()\n"  # 20
        "        else:\n"
        "            theme = PygmentsSyntaxTheme()\n"  # 22
        "        return theme\n"  # 23
    ),
    "schema.py": (
        "import typing\n"  # 1
        "\n"
        "\n"
        "class SchemaOpts:\n"  # 4
        "    def __init__(self, meta):\n"  # 5
        '        self.index_errors = getattr(meta, "index_errors", True)\n'  # 6
        "\n"
        "\n"
        "class Schema:\n"  # 9
        "    class Meta:\n"  # 10
        "        index_errors: typing.ClassVar[bool]\n"  # 11
        "\n"
        "    def load(self, data):\n"  # 13
        "        return self._do_load(data, postprocess=False)\n"  # 14
    ),
    "bccache.py": (
        "class FileSystemBytecodeCache:\n"  # 1
        '    """Stores bytecode as files named like jinja2 templates."""\n'
        "\n"
        '    def __init__(self, directory=None, pattern: str = "__jinja2_%s.cache"):\n'  # 4
        "        self.pattern = pattern\n"  # 5
        "        self.undefined: type = directory\n"  # 6
    ),
    "validate.py": (
        "class ValidationError(Exception):\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class Length:\n"  # 5
        "    def __init__(self, min=None, max=None, *, equal=None):\n"  # 6
        "        if equal is not None and any([min, max]):\n"  # 7
        "            raise ValueError(\n"  # 8
        '                "The `equal` parameter was provided, maximum or "\n'  # 9
        '                "minimum parameter must not be provided."\n'
        "            )\n"
        "        self.equal = equal\n"  # 12
    ),
}

GET_THEME = 'Which theme class does Syntax.get_theme build for the name "ansi_dark"?'
UNSET = "If my Schema's class Meta doesn't set index_errors, what value does the schema use?"
LENGTH = "What does validate.Length do if I give it equal=5 together with max=10?"


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


def test_the_class_a_function_builds_is_not_its_annotation_nor_its_variable(root: str) -> None:
    # "SyntaxTheme" is only the annotation (theme: SyntaxTheme); "theme" is the variable
    for wrong, cite in [
        ("The result is a SyntaxTheme instance.", 18),
        ("get_theme returns theme.", 23),
    ]:
        found = problems(root, GET_THEME, wrong, ("syntax.py", cite))
        assert found and "ANSISyntaxTheme" in found[0] and "PygmentsSyntaxTheme" in found[0]
    assert problems(root, GET_THEME, "An ANSISyntaxTheme (syntax.py:20).", ("syntax.py", 20)) == []


def test_an_option_declared_without_a_value_is_what_the_code_reads_it_as(root: str) -> None:
    found = problems(root, UNSET, "The schema uses False.", ("schema.py", 14))
    assert found and "reads as True (schema.py:6)" in found[0]
    assert problems(root, UNSET, "It uses True.", ("schema.py", 11)) == []
    # the answering model is shown the same fact
    (part,) = parse_parts(UNSET)
    index = index_for(root)
    assert index is not None
    assert any("schema.py:6: when index_errors is not set" in f for f in facts(index, part))


def test_another_exception_than_the_cited_raise_raises_is_refused(root: str) -> None:
    wrong = 'Length raises a ValidationError: "The `equal` parameter was provided, maximum or"'
    found = problems(root, LENGTH, wrong, ("validate.py", 9))
    assert found and "raises ValueError" in found[0] and "ValidationError" in found[0]
    right = 'It raises ValueError: "The `equal` parameter was provided, maximum or minimum ..."'
    assert problems(root, LENGTH, right, ("validate.py", 8)) == []


def test_an_error_asked_for_is_a_behaviour_part() -> None:
    question = "what error message is raised when many is on and the input is not a collection"
    assert [p.kind for p in parse_parts(question)] == ["behaviour"]
    question = "If I don't pass allow_nan, what is it, and what error message does a NaN produce?"
    assert [p.kind for p in parse_parts(question)] == ["default", "behaviour"]


def test_a_plain_word_the_question_leaves_out_is_the_constructor_s_parameter(root: str) -> None:
    # jinja2 test split (after its one run): "without a pattern" asks the default of ``pattern``
    question = "If I create a FileSystemBytecodeCache without a pattern, what pattern does it use?"
    found = problems(root, question, 'It uses "jinja2".', ("bccache.py", 1))
    assert found and '"__jinja2_%s.cache" at bccache.py:4' in found[0]
    assert problems(root, question, "It uses __jinja2_%s.cache.", ("bccache.py", 4)) == []


def test_a_parameter_of_the_constructor_is_not_the_attribute_of_that_name(root: str) -> None:
    question = (
        "How is the `directory` parameter of FileSystemBytecodeCache's constructor annotated?"
    )
    assert [p.kind for p in parse_parts(question)] == ["type"]
    found = problems(root, question, "It is annotated type.", ("bccache.py", 6))
    assert found and "has no annotation at bccache.py:4" in found[0]


def test_a_sentence_s_first_word_is_not_a_base_it_names(root: str) -> None:
    question = "What are the base classes of ANSISyntaxTheme?"
    right = "The base class of ANSISyntaxTheme is SyntaxTheme"
    assert problems(root, question, right, ("syntax.py", 5)) == []
    found = problems(root, question, "The base class is PygmentsSyntaxTheme", ("syntax.py", 5))
    assert found and "are SyntaxTheme" in found[0]


def test_a_decorated_method_is_located_and_typed_at_its_def_line(root: str) -> None:
    question = "What does Syntax.get_theme return, by its annotation?"
    (part,) = parse_parts(question)
    index = index_for(root)
    assert index is not None
    assert facts(index, part)[0].startswith("syntax.py:15: method Syntax.get_theme")
    assert problems(root, question, "SyntaxTheme", ("syntax.py", 14)) == []  # cite moves to 15
