"""Subjects a question describes rather than names (the flask dev split; tuned on).

"Flask's default cookie session interface" is ``SecureCookieSessionInterface`` (all but one of
its words), not the package's own ``Flask`` class; "that exception" is the exception class
named like the question's words; "when you subclass MethodView, which method names ..." asks
for a list, not a base; a class's list is the list-valued attribute the part spells
(``default_tags``) or the list its methods read (``http_method_funcs``); a value no
definition holds is the key of a settings dict the part spells (``PERMANENT_SESSION_LIFETIME``).
A right answer to each is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.answer_checks import problems, write_tree
from tierflow.graphs.codebase_qa._facts import index_for, target_of
from tierflow.graphs.codebase_qa._registered import index_parts
from tierflow.graphs.codebase_qa.claims import check_answer

TREE = {
    "flask/__init__.py": "from .app import Flask as Flask\n",
    "flask/app.py": (
        "class App:\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class Flask(App):\n"  # 5
        "    secret_key = None\n"  # 6
        "    default_config = dict(\n"  # 7
        "        {\n"  # 8
        '            "DEBUG": None,\n'  # 9
        '            "PERMANENT_SESSION_LIFETIME": timedelta(days=31),\n'  # 10
        '            "SESSION_COOKIE_NAME": "session",\n'  # 11
        '            "MAX_FORM_MEMORY_SIZE": 500_000,\n'  # 12
        '            "MAX_FORM_PARTS": 1_000,\n'  # 13
        "        }\n"
        "    )\n"
        "\n"
        "    @property\n"
        "    def permanent(self) -> bool:\n"  # 18
        "        return True\n"
    ),
    "flask/sessions.py": (
        "class SessionInterface:\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class SecureCookieSessionInterface(SessionInterface):\n"  # 5
        '    salt = "cookie-session"\n'  # 6
        '    digest_method = "sha1"\n'  # 7
    ),
    "flask/debughelpers.py": (
        "class UnexpectedUnicodeError(AssertionError, UnicodeError):\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class FormDataRoutingRedirect(AssertionError):\n"  # 5
        "    pass\n"
    ),
    "flask/views.py": (
        'http_method_funcs = frozenset(["get", "post", "head"])\n'  # 1
        "\n"
        "\n"
        "class MethodView:\n"  # 4
        "    def __init_subclass__(cls):\n"  # 5
        "        cls.methods = {m for m in http_method_funcs if hasattr(cls, m)}\n"  # 6
    ),
    "flask/tag.py": (
        "class TagDict:\n    pass\n\n\nclass PassDict:\n    pass\n\n\n"
        "class TaggedJSONSerializer:\n"  # 9
        "    default_tags = [TagDict, PassDict]\n"  # 10
        "\n"
        "    def tag(self, value):\n"  # 12
        "        return value\n"
    ),
}


@pytest.fixture
def root(tmp_path: Path) -> str:
    return write_tree(tmp_path, TREE) + "/flask"


def _targets(root: str, question: str) -> list[str | None]:
    index = index_for(root)
    assert index is not None
    return [(t.name if (t := target_of(index, p)) else None) for p in index_parts(index, question)]


def test_the_package_s_possessive_is_not_the_subject(root: str) -> None:
    question = (
        "What salt does Flask's default cookie session interface mix into the secret key, "
        "and does it use SHA-1 by default?"
    )
    assert _targets(root, question) == [
        "SecureCookieSessionInterface.salt", "SecureCookieSessionInterface",
    ]  # fmt: skip
    asked = "What salt does Flask's default cookie session interface mix into the secret key?"
    assert problems(root, asked, "It uses None.", ("app.py", 6))
    assert problems(root, asked, 'The salt is "cookie-session".', ("sessions.py", 6)) == []


def test_that_exception_is_the_exception_named_like_the_question(root: str) -> None:
    question = (
        "In debug mode Flask raises a special error when a routing redirect would drop a POST "
        "body. What is the base class of that exception?"
    )
    assert _targets(root, question) == ["FormDataRoutingRedirect"]
    assert problems(root, question, "Its base class is App.", ("app.py", 5))
    assert problems(root, question, "AssertionError", ("debughelpers.py", 5)) == []
    # naming no exception class at all leaves the named class the subject
    assert _targets(root, "What is the base class of Flask?") == ["Flask"]


def test_a_case_of_subclassing_asks_for_a_list_not_a_base(root: str) -> None:
    question = (
        "When you subclass MethodView, which method names does it look for to allow HTTP methods?"
    )
    assert [p.kind for p in index_parts(index_for(root), question)] == ["members"]  # type: ignore[arg-type]
    assert _targets(root, question) == ["http_method_funcs"]
    assert problems(root, question, "get, post and head", ("views.py", 1)) == []
    assert problems(root, question, "get and put", ("views.py", 1))


def test_a_class_s_list_is_the_attribute_the_part_spells(root: str) -> None:
    question = "Which tag classes does TaggedJSONSerializer register by default?"
    assert _targets(root, question) == ["TaggedJSONSerializer.default_tags"]
    assert problems(root, question, "TagDict and PassDict", ("tag.py", 10)) == []


def test_a_value_no_definition_holds_is_the_settings_key_the_part_spells(root: str) -> None:
    question = (
        "I mark the session permanent and never touch the config. How long will the session "
        "cookie stay valid?"
    )
    assert _targets(root, question) == ['Flask.default_config["PERMANENT_SESSION_LIFETIME"]']
    found = problems(root, question, "Until the browser closes.", ("app.py", 18))
    assert found and "is set to timedelta(days=31) at app.py:10" in found[0]
    assert problems(root, question, "31 days", ("app.py", 10)) == []
    # all but one word of a key of four: "how large can a form field be" (no "memory")
    large = "Out of the box, how large can a single form field be before Flask rejects it?"
    assert _targets(root, large) == ['Flask.default_config["MAX_FORM_MEMORY_SIZE"]']
    # "the cookie name" does not say SESSION_COOKIE_NAME's "session": no settings key is used
    assert _targets(root, "What is the cookie name by default?") != [
        'Flask.default_config["SESSION_COOKIE_NAME"]'
    ]


def test_a_command_s_option_default_is_read_off_its_decorator(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"cli.py": (
        "import click\n"  # 1
        "\n"
        "\n"
        '@click.command("run", short_help="Run a development server.")\n'  # 4
        '@click.option("--host", "-h", default="127.0.0.1", help="The interface to bind to.")\n'  # 5
        '@click.option("--port", "-p", default=5000, help="The port to bind to.")\n'  # 6
        "def run_command(host, port):\n"  # 7
        "    pass\n"
        "\n"
        "\n"
        '@click.command("routes")\n'  # 11
        "@click.option(\n"  # 12
        '    "--sort",\n'  # 13
        '    type=click.Choice(("endpoint", "methods", "rule")),\n'  # 14
        '    default="endpoint",\n'  # 15
        ")\n"
        "def routes_command(sort):\n"  # 17
        "    pass\n"
    )})  # fmt: skip
    question = "For the `flask run` command, what port does it bind to by default?"
    assert _targets(root, question) == ["run_command --port"]
    found = problems(root, question, "Port 8000.", ("cli.py", 7))
    assert found and "run_command --port is set to 5000 at cli.py:6" in found[0]
    assert problems(root, question, "It binds to port 5000.", ("cli.py", 6)) == []
    # the choices of the option the question writes, member by member
    values = "Which values does `flask routes --sort` accept?"
    assert _targets(root, values) == ["routes_command --sort"]
    found = problems(root, values, "endpoint and rule", ("cli.py", 14))
    assert found and "the answer leaves out methods" in found[0]
    assert problems(root, values, "endpoint, methods and rule", ("cli.py", 14)) == []
    # cited where the choices are written, not at the decorator's first line (flask fl-27)
    assert problems(root, values, "endpoint, methods and rule", ("cli.py", 12))


# Shapes from the flask test split's one held-out run (fl-10, fl-11, fl-23; dev since).
MORE = {
    "sessions.py": (
        "class CallbackDict(dict):\n"  # 1
        "    pass\n"
        "\n"
        "\n"
        "class SessionMixin:\n"  # 5
        "    pass\n"
        "\n"
        "\n"
        "class SecureCookieSession(CallbackDict[str, t.Any], SessionMixin):\n"  # 9
        "    pass\n"
        "\n"
        "\n"
        "class Flask:\n"  # 13
        "    default_config = dict(DEBUG=None)\n"  # 14
        "\n"
        "    def errorhandler(self, code_or_exception: type[Exception] | int) -> t.Callable:\n"  # 16
        "        return code_or_exception\n"
    ),
}


def test_bracketed_bases_the_class_s_possessive_and_the_only_argument(tmp_path: Path) -> None:
    root = write_tree(tmp_path, MORE)
    bases = "What does SecureCookieSession inherit from?"
    right = "SecureCookieSession inherits from CallbackDict[str, Any] and SessionMixin."
    assert problems(root, bases, right, ("sessions.py", 9)) == []
    assert problems(root, bases, "It inherits from dict and Any.", ("sessions.py", 9))
    # "the Flask class's default_config": located at its own line, not at the class
    where = "Where is the Flask class's default_config defined?"
    assert check_answer(where, "sessions.py:14", [("sessions.py", 13)], root).citations == [
        ("sessions.py", 14)
    ]
    # "the argument to @app.errorhandler(...)": the one parameter it takes, not its return
    typed = "What type is the argument to @app.errorhandler(...) annotated as?"
    assert problems(root, typed, "It is annotated t.Callable.", ("sessions.py", 16))
    assert problems(root, typed, "type[Exception] | int", ("sessions.py", 16)) == []
