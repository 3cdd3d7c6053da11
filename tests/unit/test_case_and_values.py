"""Shapes from the werkzeug dev split's one run (six wrong answers passed; dev, tuned on).

A behaviour asked with arguments ("run_simple with threaded=True and processes=4") is decided
by the test of those arguments, followed into the function they are passed to; a value named
by a constant is that constant's value; a number that is another parameter's default is no
value of what is asked; an answer in the question's own words (stemmed) restates it; a list
a function reads is the constant its body uses; a parameter the words spell ("fall back" ...
"mimetype") is the one asked; "the defaults of a and of b" is two parts. A right answer to each
is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa.claims import parse_parts

TREE = {
    "serving.py": (
        "LISTEN_QUEUE = 128\n"  # 1
        "\n"
        "\n"
        "def make_server(host, threaded=False, processes=1):\n"  # 4
        "    if threaded and processes > 1:\n"  # 5
        '        raise ValueError("Cannot have a multi-thread and multi-process server.")\n'  # 6
        "    if threaded:\n"  # 7
        "        return ThreadedServer(host)\n"  # 8
        "    return BaseServer(host)\n"  # 9
        "\n"
        "\n"
        "def run_simple(host, threaded: bool = False, processes: int = 1, salt_length: int = 16):\n"  # 12
        "    srv = make_server(host, threaded, processes)\n"  # 13
        "    srv.serve_forever()\n"  # 14
        "\n"
        "\n"
        "class BaseServer:\n"  # 17
        "    request_queue_size = LISTEN_QUEUE\n"  # 18
        "\n"
        "\n"
        "class ThreadedServer(BaseServer):\n"  # 21
        "    pass\n"
    ),
    "utils.py": (
        '_charset_mimetypes = {"application/sql", "application/xml-dtd"}\n'  # 1
        "\n"
        "\n"
        "def get_content_type(mimetype: str, charset: str) -> str:\n"  # 4
        "    if mimetype.startswith('text/') or mimetype in _charset_mimetypes:\n"  # 5
        "        mimetype += '; charset=' + charset\n"
        "    return mimetype\n"  # 7
        "\n"
        "\n"
        "class SharedData:\n"  # 10
        "    def __init__(self, app, cache_timeout: int = 60 * 60 * 12,\n"  # 11
        '                 fallback_mimetype: str = "application/octet-stream"):\n'  # 12
        "        self.cache_timeout = cache_timeout\n"  # 13
        "\n"
        "\n"
        "class Request:\n"  # 16
        "    max_form_memory_size: int | None = 500_000\n"  # 17
        "    max_form_parts = 1000\n"  # 18
    ),
}

RUN = "What happens if I call run_simple with both threaded=True and processes=4?"


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE)


def test_a_behaviour_asked_with_arguments_is_decided_by_their_test_one_call_deep(
    root: str,
) -> None:
    vague = "run_simple starts a server that handles many requests with threads and processes."
    found = problems(root, RUN, vague, ("serving.py", 12))
    assert found and "decided at serving.py:5 (make_server)" in found[0]
    assert "it raises ValueError there, and the answer names no exception" in found[0]
    assert problems(root, RUN, "It raises ValueError.", ("serving.py", 12)) == []
    # threaded=True alone takes another branch: the test of both is not entered
    alone = "What happens if I call run_simple with threaded=True and processes=1?"
    assert problems(root, alone, "It returns a ThreadedServer.", ("serving.py", 8)) == []


def test_a_value_named_by_a_constant_is_the_constant_s_value(root: str) -> None:
    question = "What listen backlog (request_queue_size) does BaseServer use?"
    found = problems(root, question, "request_queue_size = LISTEN_QUEUE", ("serving.py", 18))
    assert found and "LISTEN_QUEUE is 128 (serving.py:1)" in found[0]
    assert problems(root, question, "LISTEN_QUEUE, which is 128", ("serving.py", 18)) == []


def test_another_parameter_s_default_is_no_value_of_what_is_asked(root: str) -> None:
    question = "If I call run_simple and give no iteration count, how many iterations are used?"
    found = problems(root, question, "16 iterations are used.", ("serving.py", 12))
    assert found and "16 is the default of run_simple's salt_length" in found[0]


def test_an_answer_in_the_question_s_stemmed_words_restates_it(root: str) -> None:
    question = "Apart from text/* types, which mimetypes does get_content_type append a charset to?"
    found = problems(root, question, "It appends a charset to text/* types.", ("utils.py", 5))
    assert found and "restates the question" in found[0]


def test_a_list_a_function_reads_is_the_constant_its_body_uses(root: str) -> None:
    question = "Which mimetypes does get_content_type give a charset to, besides text/* ones?"
    found = problems(root, question, "application/json", ("utils.py", 4))
    assert found and "_charset_mimetypes (utils.py:1) has" in found[0]
    right = "application/sql and application/xml-dtd"
    assert problems(root, question, right, ("utils.py", 1)) == []


def test_a_parameter_the_words_spell_is_the_one_asked(root: str) -> None:
    question = (
        "For SharedData: what cache_timeout does it use if I don't pass one, and which "
        "mimetype does it fall back to for files whose type it cannot guess?"
    )
    wrong = "cache_timeout is 60 * 60 * 12; it falls back to .json"
    assert problems(root, question, wrong, ("utils.py", 11), ("utils.py", 13))
    right = "cache_timeout is 60 * 60 * 12; it falls back to application/octet-stream"
    assert problems(root, question, right, ("utils.py", 11), ("utils.py", 12)) == []


def test_the_defaults_of_a_and_of_b_are_two_parts(root: str) -> None:
    question = "On Request, what are the class-level defaults of max_form_memory_size and of max_form_parts?"
    assert [p.kind for p in parse_parts(question)] == ["default", "default"]
    found = problems(root, question, "500_000 and None", ("utils.py", 17))
    assert found and "max_form_parts is set to 1000" in found[0]
    right = "max_form_memory_size is 500_000 and max_form_parts is 1000"
    assert problems(root, question, right, ("utils.py", 17), ("utils.py", 18)) == []
