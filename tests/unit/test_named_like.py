"""A search phrase is often the words of a name: "cookie size" is ``max_cookie_size``.

Leads for the search model, never findings: a phrase is not shortcut to the definitions of
its last word (``size = ...`` lines), and the definitions whose names carry its words are
shown before its first step, rarer words weighing more.
"""

from __future__ import annotations

from pathlib import Path

from tests.answer_checks import write_tree
from tierflow.graphs.codebase_qa._facts import index_for
from tierflow.graphs.codebase_qa._named_like import named_like
from tierflow.graphs.codebase_qa.schemas import SearchTask
from tierflow.graphs.codebase_qa.search import prefetch_grep, shortcut_search

TREE = {
    "response.py": (
        "class Response:\n"  # 1
        "    max_cookie_size = 4093\n"  # 2
        "    max_form_size = 500\n"  # 3
        "\n"
        "    def set_cookie(self, key, size=None):\n"  # 5
        "        size = len(key)\n"  # 6
        "        return size\n"
    ),
    "debug.py": "PIN_TIME = 60 * 60 * 24 * 7\nsize = 3\n",
}


def test_a_phrase_gets_the_definitions_named_like_it_and_no_shortcut(tmp_path: Path) -> None:
    env = {"root": write_tree(tmp_path, TREE)}
    index = index_for(env["root"])
    assert index is not None
    assert [d.qualname for d in named_like(index, "cookie size")] == ["Response.max_cookie_size"]
    assert [d.qualname for d in named_like(index, "how long is the PIN time")] == ["PIN_TIME"]
    assert named_like(index, "nothing here matches") == []
    text = prefetch_grep(SearchTask(query="cookie size"), env)
    assert text.startswith(
        "Definitions named like 'cookie size':\nresponse.py:2: max_cookie_size = 4093"
    )
    assert shortcut_search(SearchTask(query="cookie size"), env) is None
    # a code name is still found with no model step
    found = shortcut_search(SearchTask(query="PIN_TIME"), env)
    assert found is not None and (found.findings[0].path, found.findings[0].line) == ("debug.py", 1)
