"""A "what happens" case set by data, not by an argument: the raise whose message speaks of it.

Shapes from the werkzeug test split's one held-out run (wz-12, wz-26: two wrong answers
reported ``answered`` under both policies; that split is dev since). ``request.get_json()`` on a
text/plain body ends in ``raise UnsupportedMediaType("... Content-Type was not ...")`` through
``on_json_loading_failed(None)``; ``headers['X'] = 'a\\nb'`` runs ``Headers.__setitem__``, which
ends in ``raise ValueError("Header values must not contain newline characters.")`` two calls
deep. A question that names no code at all ("my view function ends without a return
statement") is about the function whose raise message says most of it (flask dev, fl-19). A
right answer to each is accepted; a branch the question's values rule out is not walked; two
exceptions that speak of the case as much decide nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._lookup import lookup
from tierflow.graphs.codebase_qa._outcomes import case_raise
from tierflow.graphs.codebase_qa._registered import index_parts

TREE = {
    "request.py": (
        "class UnsupportedMediaType(Exception):\n"  # 1
        "    code = 415\n"  # 2
        "\n"
        "\n"
        "class BadRequest(Exception):\n"  # 5
        "    code = 400\n"  # 6
        "\n"
        "\n"
        "class Request:\n"  # 9
        "    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):\n"  # 10
        "        if cache and self._cached is not None:\n"  # 11
        "            return self._cached\n"  # 12
        "        if not (force or self.is_json):\n"  # 13
        "            if not silent:\n"  # 14
        "                return self.on_json_loading_failed(None)\n"  # 15
        "            return None\n"  # 16
        "        return self.loads(self.data)\n"  # 17
        "\n"
        "    def on_json_loading_failed(self, e):\n"  # 19
        "        if e is not None:\n"  # 20
        '            raise BadRequest(f"Failed to decode JSON object: {e}")\n'  # 21
        "        raise UnsupportedMediaType(\n"  # 22
        "            \"Did not attempt to load JSON data because the request Content-Type was not 'application/json'.\"\n"  # 23
        "        )\n"
    ),
    "headers.py": (
        "def _str_header_value(value):\n"  # 1
        "    if '\\n' in str(value):\n"  # 2
        '        raise ValueError("Header values must not contain newline characters.")\n'  # 3
        "    return str(value)\n"  # 4
        "\n"
        "\n"
        "class Headers:\n"  # 7
        "    def __init__(self):\n"  # 8
        "        self._list = []\n"  # 9
        "\n"
        "    def add(self, key, value):\n"  # 11
        "        self._list.append((key, value))\n"  # 12
        "\n"
        "    def set(self, key, value):\n"  # 14
        "        self._list = [(key, _str_header_value(value))]\n"  # 15
        "\n"
        "    def __setitem__(self, key, value):\n"  # 17
        "        if isinstance(key, int):\n"  # 18
        "            self._list[key] = (key, value)\n"  # 19
        "        else:\n"
        "            self.set(key, value)\n"  # 21
    ),
}

GET_JSON = (
    "A client POSTs a body with Content-Type text/plain and my view calls request.get_json() "
    "with the default arguments. What happens?"
)
NEWLINE = (
    "What happens when I assign a header value containing a newline character, e.g. "
    "response.headers['X-Note'] = 'one' + chr(10) + 'two', on a Headers object?"
)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


def test_the_raise_whose_message_speaks_of_the_case_decides_it(root: str) -> None:
    wrong = "It returns None if the cache is True and the silent parameter is False."
    found = problems(root, GET_JSON, wrong, ("request.py", 10))
    assert found and "ends at request.py:22 through Request.on_json_loading_failed()" in found[0]
    assert "the answer does not name UnsupportedMediaType" in found[0]
    right = "It raises UnsupportedMediaType (415): the Content-Type is not application/json."
    assert problems(root, GET_JSON, right, ("request.py", 22)) == []
    # the answering model is shown the raise as a fact
    index = index_for(root)
    assert index is not None
    [part] = index_parts(index, GET_JSON)
    shown = [f for f in facts(index, part) if f.startswith("request.py:22: for this case")]
    assert shown and "raises UnsupportedMediaType" in shown[0]


def test_indexing_written_as_code_runs_the_class_s_item_method(root: str) -> None:
    index = index_for(root)
    assert index is not None
    [part] = index_parts(index, NEWLINE)
    assert part.subject is not None and part.subject.endswith("Headers.__setitem__")
    wrong = "The code writes: `self._list.append((key, value))`"
    found = problems(root, NEWLINE, wrong, ("headers.py", 12))
    assert found and "headers.py:3 through Headers.set() -> _str_header_value()" in found[0]
    right = "Headers.__setitem__ calls set, which raises ValueError: no newline characters."
    assert problems(root, NEWLINE, right, ("headers.py", 3)) == []


def test_a_branch_the_question_s_values_rule_out_is_not_walked(root: str) -> None:
    index = index_for(root)
    assert index is not None
    [get_json] = lookup(index, "Request.get_json")
    # silent=True: the branch that calls on_json_loading_failed is not entered
    quiet = "What happens on a text/plain Content-Type when I call get_json with silent=True?"
    assert case_raise(index, get_json, quiet) is None
    assert case_raise(index, get_json, GET_JSON) is not None


def test_two_exceptions_that_speak_of_the_case_as_much_decide_nothing(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"m.py": (
        "def parse(text, strict=True):\n"
        "    if strict:\n"
        '        raise ValueError("malformed header line")\n'
        '    raise KeyError("malformed header line")\n'
    )})  # fmt: skip
    index = index_for(root)
    assert index is not None
    [parse] = lookup(index, "parse")
    asked = "What happens when parse gets a malformed header line?"
    assert case_raise(index, parse, asked) is not None  # strict=True by default: ValueError only
    assert case_raise(index, parse, asked + " I pass strict as a variable.") is None


def test_a_case_no_code_is_named_for_is_the_raise_whose_message_says_it(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"app.py": (
        "class App:\n"  # 1
        "    def make_response(self, rv):\n"  # 2
        "        if rv is None:\n"  # 3
        "            raise TypeError(\n"  # 4
        '                "The view function did not return a valid response. The"\n'
        '                " function either returned None or ended without a return statement."\n'
        "            )\n"
        "        return rv\n"  # 8
        "\n"
        "    def add_url_rule(self, rule):\n"  # 10
        '        raise ValueError("A rule needs a view function.")\n'  # 11
    )})  # fmt: skip
    question = (
        "What happens if my view function ends without a return statement, so it returns None?"
    )
    found = problems(root, question, "Nothing: an empty 200 response is sent.", ("app.py", 8))
    assert found and "ends at app.py:4: raise TypeError" in found[0]
    right = "Flask raises TypeError: the view function did not return a valid response."
    assert problems(root, question, right, ("app.py", 4)) == []


def test_the_methods_that_raise_an_error_are_listed_with_their_aliases(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"sessions.py": (
        "class NullSession(dict):\n"  # 1
        "    def _fail(self, *args, **kwargs):\n"  # 2
        '        raise RuntimeError("The session is unavailable because no secret key was set.")\n'  # 3
        "\n"
        "    __setitem__ = __delitem__ = clear = popitem = _fail\n"  # 5
        "\n"
        "    def get(self, key):\n"  # 7
        "        return None\n"
    )})  # fmt: skip
    question = "Which methods of NullSession raise the 'session is unavailable' error?"
    found = problems(root, question, "popitem raises it.", ("sessions.py", 5))
    assert found and "the answer leaves out __setitem__, __delitem__, clear" in found[0]
    right = "__setitem__, __delitem__, clear and popitem"
    assert problems(root, question, right, ("sessions.py", 5)) == []
