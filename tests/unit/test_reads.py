"""A value a function uses "by default" that its signature does not hold: the constant it reads.

Shape from the werkzeug test split's one held-out run (wz-08, answered 1024 and `unverified`;
dev since): ``set_cookie`` passes ``max_size=self.max_cookie_size`` and the class sets
``max_cookie_size = 4093``. The answering model is shown that constant, a value answer must
state it, and a right answer is accepted.
"""

from __future__ import annotations

from pathlib import Path

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._registered import index_parts

TREE = {
    "response.py": (
        "PIN_TIME = 60 * 60 * 24 * 7\n"  # 1
        "\n"
        "\n"
        "def dump_cookie(key, value, max_size=None):\n"  # 4
        "    return key\n"  # 5
        "\n"
        "\n"
        "class Response:\n"  # 8
        "    max_cookie_size = 4093\n"  # 9
        "    charset = 'utf-8'\n"  # 10
        "\n"
        "    def set_cookie(self, key: str, value: str = '', max_age: int | None = None):\n"  # 12
        "        header = dump_cookie(key, value, max_size=self.max_cookie_size)\n"  # 13
        "        return header\n"  # 14
    ),
}
QUESTION = (
    "Response.set_cookie warns when the Set-Cookie header is too large. Above what size in "
    "bytes does it warn by default?"
)


def test_a_value_read_from_a_class_attribute_is_that_attribute_s(tmp_path: Path) -> None:
    root = write_tree(tmp_path, TREE)
    index = index_for(root)
    assert index is not None
    shown = [f for p in index_parts(index, QUESTION) for f in facts(index, p)]
    assert "response.py:9: Response.max_cookie_size = 4093 (read at response.py:13)" in shown
    found = problems(root, QUESTION, "It warns above 1024 bytes.", ("response.py", 12))
    assert (
        found
        and "Response.max_cookie_size = 4093 (response.py:9, read at response.py:13)" in found[0]
    )
    assert problems(root, QUESTION, "Above 4093 bytes (max_cookie_size).", ("response.py", 9)) == []
    # charset is read nowhere in set_cookie, and PIN_TIME is no size: neither is shown
    assert not any("charset" in f or "PIN_TIME" in f for f in shown)
