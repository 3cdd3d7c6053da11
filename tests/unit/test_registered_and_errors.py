"""Names reached by a registered key, a part that asks for an error, an answer echoing a schema.

Shapes from the jinja2 and marshmallow splits after their one held-out run (dev now): "the
wordwrap filter" is ``do_wordwrap`` by ``FILTERS = {"wordwrap": do_wordwrap}``; a sandbox's
``range(...)`` is the ``safe_range`` it registers as a global; "what error message is given"
answered by describing the class around it; and an answer that was the ``Findings`` schema's
own field description ("one sentence: what was found"). A right answer to each is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._refusals import no_answer
from tierflow.graphs.codebase_qa._registered import index_parts
from tierflow.tools.code_index import CodeIndex

TREE = {
    "filters.py": (
        "def do_wordwrap(s: str, width: int = 79) -> str:\n"  # 1
        "    return s\n"
        "\n"
        "\n"
        "def do_upper(s: str) -> str:\n"  # 5
        "    return s.upper()\n"
        "\n"
        "\n"
        "FILTERS = {\n"  # 9
        '    "wordwrap": do_wordwrap,\n'  # 10
        '    "upper": do_upper,\n'  # 11
        '    "abs": abs,\n'  # 12: a builtin, no definition of the tree
        "}\n"
    ),
    "sandbox.py": (
        "MAX_RANGE = 100000\n"  # 1
        "\n"
        "\n"
        "def safe_range(*args: int) -> range:\n"  # 4
        "    rng = range(*args)\n"
        "    if len(rng) > MAX_RANGE:\n"  # 6
        '        raise OverflowError("Range too big.")\n'  # 7
        "    return rng\n"
        "\n"
        "\n"
        "class SandboxedEnvironment:\n"  # 11
        "    def __init__(self, globals_=None):\n"  # 12
        "        self.globals = {}\n"
        '        self.globals["range"] = safe_range\n'  # 14
        "        value = globals_\n"
        '        self.globals["other"] = value\n'  # 16: a local: data, not a registration
    ),
    "unsafe.py": (
        'UNSAFE_GENERATOR_ATTRIBUTES = {"gi_frame", "gi_code"}\n'  # 1
        'UNSAFE_COROUTINE_ATTRIBUTES = {"cr_frame", "cr_code"}\n'  # 2
        "\n"
        "\n"
        "class TemplateNode:\n"  # 5: two words of any question name no definition
        '    attributes = ("lineno", "environment")\n'  # 6
    ),
    "loaders.py": (
        "class FileSystemLoader:\n"  # 1
        "    def __init__(\n"  # 2
        '        self, searchpath, encoding: str = "utf-8", followlinks: bool = False\n'  # 3
        "    ) -> None:\n"
        "        self.followlinks = followlinks\n"  # 5
        "\n"
        "    def list_templates(self):\n"  # 7
        "        return walk(self.searchpath, followlinks=self.followlinks)\n"  # 8
    ),
    "fields.py": (
        "class Enum:\n"  # 1
        '    default_error_messages = {"unknown": "Must be one of: {choices}."}\n'  # 2
        "\n"
        "    def __init__(self, enum, by_value: bool = False):\n"  # 4
        "        self.enum = enum\n"
        "        self.by_value = by_value\n"  # 6
        "\n"
        "    def _deserialize(self, value):\n"  # 8
        "        if value not in self.enum.__members__:\n"  # 9
        '            raise self.make_error("unknown")\n'  # 10
        "        return self.enum[value]\n"
    ),
}

UNSAFE = "Which attributes of generator and coroutine objects does the sandbox treat as unsafe?"
WRAP = "If I use the wordwrap filter without giving a width, at what line width does it wrap?"
RANGE = "In a SandboxedEnvironment, what happens when a template calls range(1000000)?"
ENUM = (
    "For fields.Enum: with the default by_value, are members loaded by name or by value, and "
    "what error message is given when loading something that isn't a member?"
)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


def _index(root: str) -> CodeIndex:
    index = index_for(root)
    assert index is not None
    return index


def test_the_index_reads_string_keys_bound_to_definitions(root: str) -> None:
    index = _index(root)
    assert [(r.container, r.path, r.line, r.definition.qualname)
            for r in index.registered("wordwrap")] == [("FILTERS", "filters.py", 10, "do_wordwrap")]  # fmt: skip
    assert [r.definition.qualname for r in index.registered("range")] == ["safe_range"]
    assert index.registered("abs") == []  # a builtin: nothing of the tree
    assert index.registered("other") == []  # a local variable's value is data


def test_a_key_used_as_its_registry_names_it_leads_the_part_s_subjects(root: str) -> None:
    index = _index(root)
    (part,) = index_parts(index, WRAP)
    assert part.subjects == ("filters.do_wordwrap",)
    assert facts(index, part)[0].startswith("filters.py:1: parameter width of do_wordwrap")
    (part,) = index_parts(index, RANGE)
    assert part.subjects[:2] == ("sandbox.safe_range", "SandboxedEnvironment")
    # a key that is only a word ("upper case") is not the filter: the noun must be its registry's
    (part,) = index_parts(index, "What is the upper bound of a range of lines?")
    assert "filters.do_upper" not in part.subjects


def test_the_registered_function_decides_the_answer(root: str) -> None:
    assert problems(root, WRAP, "It wraps at 79 characters.", ("filters.py", 1)) == []
    found = problems(root, WRAP, "It wraps at 80 characters.", ("filters.py", 10))
    assert found and "79" in found[0]
    right = "safe_range raises OverflowError: Range too big."
    assert problems(root, RANGE, right, ("sandbox.py", 7)) == []


def test_an_error_asked_for_must_be_named_or_quoted(root: str) -> None:
    vague = "The default by_value is False, so members are loaded by name."
    found = problems(root, ENUM, vague, ("fields.py", 4))
    assert found and "names no exception and quotes no message of Enum" in found[-1]
    assert "Must be one of" in found[-1]
    quoted = vague + ' Loading an unknown name fails with "Must be one of: {choices}."'
    assert problems(root, ENUM, quoted, ("fields.py", 4), ("fields.py", 2)) == []


def test_an_answer_that_is_a_schema_s_field_description_is_no_answer() -> None:
    why = no_answer("What happens if I pass a plain string?", "one sentence: what was found", [])
    assert why is not None and "schema's field description" in why
    # the same words inside a real answer are the answer's own
    assert no_answer("What is lineno?", "lineno is the 1-based line number of the node", []) is None


def test_a_name_spelled_out_in_the_question_s_words_is_its_subject(root: str) -> None:
    index = _index(root)
    (part,) = index_parts(index, UNSAFE)
    assert part.subjects == (
        "unsafe.UNSAFE_GENERATOR_ATTRIBUTES", "unsafe.UNSAFE_COROUTINE_ATTRIBUTES",
    )  # fmt: skip
    # two words of the question ("template", "node") are no name it spells
    (part,) = index_parts(index, "Which attributes does a template node have?")
    assert part.subjects == () and part.spelled == ()


def test_a_list_asked_of_several_spelled_names_is_their_members_together(root: str) -> None:
    right = "Generators: gi_frame, gi_code; coroutines: cr_frame, cr_code."
    assert problems(root, UNSAFE, right, ("unsafe.py", 1), ("unsafe.py", 2)) == []
    found = problems(root, UNSAFE, "gi_frame and gi_code", ("unsafe.py", 1))
    assert found and "leaves out cr_frame, cr_code" in found[0]
    # the jinja2 answer that passed: another class's attributes, cited there
    found = problems(root, UNSAFE, "'lineno' and 'environment' are unsafe.", ("unsafe.py", 6))
    assert found and "not among them" in found[0]


LINKS = "Does FileSystemLoader follow symbolic links by default?"


def test_a_yes_no_by_default_is_decided_by_the_flag_the_question_spells(root: str) -> None:
    # jinja2 (after its held-out run): "follow symbolic links" spells followlinks=False
    assert problems(root, LINKS, "No, it does not follow them.", ("loaders.py", 1)) == []
    found = problems(root, LINKS, "Yes, it follows symbolic links.", ("loaders.py", 3))
    assert found and "followlinks) defaults to False at loaders.py:3" in found[0]
    assert "the answer is no" in found[0]
    # without "by default" the body decides, as before: a def line is no citation of it
    found = problems(root, "Does FileSystemLoader follow symbolic links?", "No.", ("loaders.py", 1))
    assert found and "inside the body" in found[0]
