"""The code index: definitions by kind, re-exports, lookups, the on-disk cache and the tools."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from langchain_core.tools import ToolException

from tierflow.local.weights import default_cache_dir
from tierflow.tools.code_index import (
    CodeIndex,
    Kind,
    ReExport,
    UnknownName,
    default_index_dir,
    index_tools,
)

TREE = {
    "consts.py": '''\
"""Constants."""
MAX_RETRIES = 3
TIMEOUT: float = 2.5
"""Seconds before a request gives up."""
''',
    "models.py": '''\
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, TypedDict

from pydantic import BaseModel, Field

from consts import MAX_RETRIES


class Base:
    """Base docstring.

    More about the base.
    """

    def greet(self, name: str, *, loud: bool = False) -> str:
        return name


class Session(Base):
    """A session."""

    default_timeout = 5

    def __init__(self, url: str, retries: int = MAX_RETRIES) -> None:
        self.url = url

    def request(
        self,
        method: str = "GET",
        *args,
        timeout: float | None = None,  # seconds
        **kwargs,
    ) -> dict:
        """Send a request.

        Returns the response.
        """
        return {}


@dataclass(frozen=True)
class Config:
    name: str
    retries: int = 3
    tags: list[str] = field(default_factory=list)
    limit: ClassVar[int] = 9


class Point(NamedTuple):
    x: int
    y: int = 0


class User(BaseModel):
    id: int
    name: str = Field("anon", description="shown name")
    _secret: str = "s"


class Movie(TypedDict):
    title: str
    year: int
''',
    "pkg/__init__.py": '''\
"""Package doc."""
from .core import Engine
from ._config import DEFAULT_PORT

__all__ = ["Engine", "DEFAULT_PORT", "Registry"]


class Registry:
    """Defined in the package's __init__."""
''',
    "pkg/_config.py": "DEFAULT_PORT = 8080\n",
    "pkg/core.py": """\
from models import User


class Engine:
    def run(self, steps: int = 1) -> None:
        pass


class Admin(User):
    level: int = 1
""",
    "pkg/nested/__init__.py": "",
    "pkg/nested/_config.py": 'LOG_LEVEL = "INFO"\n',
    "app.py": """\
import consts
from pkg import Engine, Registry

engine = Engine()
registry = Registry()
print(consts.MAX_RETRIES)
""",
    "overloads.py": '''\
from typing import overload


@overload
def parse(value: int) -> int: ...
@overload
def parse(value: str) -> str: ...
def parse(value, strict: bool = True):
    """The implementation."""
    return value
''',
    "broken.py": "def oops(:\n    pass\n",
    ".hidden.py": "class Hidden:\n    pass\n",
    ".secret/keys.py": "API_KEY = 'x'\n",
    "README.md": "# not python\n",
}


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def index(tree: Path, cache: Path) -> CodeIndex:
    return CodeIndex.build(tree, cache_dir=cache)


# --- definitions -------------------------------------------------------------------------------


def test_every_kind_is_indexed_with_its_span(index: CodeIndex) -> None:
    kinds = {d.qualname: d.kind for d in index}
    assert kinds["MAX_RETRIES"] is Kind.MODULE_CONSTANT
    assert kinds["Session"] is Kind.CLASS
    assert kinds["Session.request"] is Kind.METHOD
    assert kinds["Session.url"] is Kind.ATTRIBUTE
    assert kinds["Session.default_timeout"] is Kind.CLASS_ATTRIBUTE
    assert kinds["Config.retries"] is Kind.FIELD
    assert kinds["Config.limit"] is Kind.CLASS_ATTRIBUTE  # ClassVar is not a field
    assert kinds["consts"] is Kind.MODULE
    request = index.find_definition("Session.request")[0]
    text = TREE["models.py"]
    assert (request.line, request.end_line) == (
        _line(text, "def request("),
        _line(text, "return {}"),
    )


def test_lookups_answer_the_definition_line_not_an_import_site(index: CodeIndex) -> None:
    core = TREE["pkg/core.py"]
    for name in ["Engine", "pkg.Engine", "pkg.core.Engine", "tree.pkg.Engine"]:
        found = index.find_definition(name)[0]
        assert found.where == f"pkg/core.py:{_line(core, 'class Engine')}", name
    engine = index.find_definition("Engine")[0]
    assert ReExport("pkg.Engine", "pkg/__init__.py", 2, True) in engine.reexported_from
    registry = index.find_definition("pkg.Registry")[0]
    assert registry.where == f"pkg/__init__.py:{_line(TREE['pkg/__init__.py'], 'class Registry')}"
    port = index.find_definition("pkg.DEFAULT_PORT")[0]
    assert (port.where, port.value) == ("pkg/_config.py:1", "8080")
    assert index.find_definition("LOG_LEVEL")[0].where == "pkg/nested/_config.py:1"
    assert index.find_definition("`Session.request()`")[0].qualname == "Session.request"
    # An inherited method is found on the subclass, at the base's definition.
    assert index.find_definition("Session.greet")[0].qualname == "Base.greet"
    # Of an overloaded function, the implementation answers first.
    assert index.signature("parse") == "def parse(value, strict: bool = True)"


def test_signatures_keep_defaults_and_annotations_as_written(index: CodeIndex) -> None:
    assert index.signature("Session.request") == (
        'def request(self, method: str = "GET", *args, timeout: float | None = None, **kwargs) -> dict'
    )
    params = index.find_definition("Session.request")[0].parameters
    assert ("method", "str", '"GET"') in params and ("timeout", "float | None", "None") in params
    assert ("*args", None, None) in params
    assert index.signature("Session") == (
        "def __init__(self, url: str, retries: int = MAX_RETRIES) -> None"
    )
    assert index.signature("Config") == (
        "Config(name: str, retries: int = 3, tags: list[str] = field(default_factory=list))"
    )
    assert index.signature("TIMEOUT") == "TIMEOUT: float = 2.5"
    assert index.signature("Engine.run") == "def run(self, steps: int = 1) -> None"


def test_bases_docstrings_and_members(index: CodeIndex) -> None:
    assert index.class_bases("Session") == ("Base",)
    assert [a.qualname for a in index.ancestors("Session")] == ["Base"]
    assert index.docstring("Base") == "Base docstring.\n\nMore about the base."
    assert index.find_definition("Base")[0].summary == "Base docstring."
    assert index.docstring("consts.TIMEOUT") == "Seconds before a request gives up."
    assert index.docstring("pkg") == "Package doc."

    def fields(name: str) -> dict[str, str | None]:
        return {m.name: m.default for m in index.members(name) if m.kind is Kind.FIELD}

    assert fields("Config") == {"name": None, "retries": "3", "tags": "default_factory=list"}
    assert fields("Point") == {"x": None, "y": "0"}
    assert fields("User") == {"id": None, "name": '"anon"'}  # _secret is private, not a field
    assert fields("Movie") == {"title": None, "year": None}
    # A pydantic model's subclass in another file has fields too, its own and inherited.
    admin = index.find_definition("Admin")[0]
    assert admin.flavor == "pydantic"
    assert fields("Admin") == {"level": "1", "id": None, "name": '"anon"'}
    assert {m.name for m in index.members("Session")} >= {
        "request",
        "url",
        "greet",
        "default_timeout",
    }
    assert [m.name for m in index.members("pkg")] == ["Engine", "DEFAULT_PORT", "Registry"]


def test_references_label_import_sites(index: CodeIndex) -> None:
    refs = {(r.path, r.line): r for r in index.references("Engine")}
    assert refs[("pkg/__init__.py", 2)].kind == "import"
    assert refs[("app.py", 2)].kind == "import"
    assert refs[("app.py", 4)].kind == "use" and refs[("app.py", 4)].text == "engine = Engine()"
    assert [r.kind for r in index.references("MAX_RETRIES") if r.path == "app.py"] == ["use"]
    assert len(index.references("Engine", limit=1)) == 1


def test_unparseable_hidden_and_other_files(index: CodeIndex) -> None:
    assert [s.path for s in index.skipped] == ["broken.py"]
    assert "syntax error at line 1" in index.skipped[0].reason
    assert not any(d.path.startswith(".") or "secret" in d.path for d in index)
    with pytest.raises(UnknownName) as info:
        index.find_definition("Hidden")
    assert "Hidden" in str(info.value)
    assert index.suggest("Sesion")[0] == "Session"
    assert {d.path for d in index} == {
        "consts.py", "models.py", "app.py", "pkg/__init__.py", "pkg/_config.py", "pkg/core.py",
        "pkg/nested/__init__.py", "pkg/nested/_config.py", "overloads.py",
    }  # fmt: skip


# --- cache -------------------------------------------------------------------------------------


def test_cache_reuses_unchanged_files_and_follows_changes(tree: Path, cache: Path) -> None:
    first = CodeIndex.build(tree, cache_dir=cache)
    assert (first.stats.parsed, first.stats.reused) == (10, 0)  # 9 indexed + the broken one
    again = CodeIndex.build(tree, cache_dir=cache)
    assert (again.stats.parsed, again.stats.reused, again.stats.removed) == (0, 10, 0)
    assert len(again) == len(first) and again.skipped == first.skipped

    (tree / "consts.py").write_text(TREE["consts.py"] + "EXTRA = 1\n")
    touched = CodeIndex.build(tree, cache_dir=cache)
    assert touched.stats.parsed == 1
    assert touched.find_definition("EXTRA")[0].where == "consts.py:5"

    (tree / "pkg" / "nested" / "_config.py").unlink()
    dropped = CodeIndex.build(tree, cache_dir=cache)
    assert (dropped.stats.parsed, dropped.stats.removed) == (0, 1)
    with pytest.raises(UnknownName):
        dropped.find_definition("LOG_LEVEL")
    assert list(cache.glob("*.json")) == [dropped.stats.cache_path]


def test_a_corrupt_cache_file_is_rebuilt(tree: Path, cache: Path) -> None:
    path = CodeIndex.build(tree, cache_dir=cache).stats.cache_path
    assert path is not None
    for bad in ["{not json", json.dumps({"schema": 999}), json.dumps([1, 2])]:
        path.write_text(bad)
        rebuilt = CodeIndex.build(tree, cache_dir=cache)
        assert rebuilt.stats.parsed == 10 and rebuilt.stats.note.startswith("rebuilt")
        assert rebuilt.find_definition("Engine")[0].path == "pkg/core.py"
    assert CodeIndex.build(tree, cache_dir=cache).stats.parsed == 0


def test_default_cache_dir_follows_tierflow_model_cache(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERFLOW_MODEL_CACHE", str(tmp_path / "models"))
    built = CodeIndex.build(tree)
    assert built.stats.cache_path is not None
    assert built.stats.cache_path.parent == tmp_path / "models" / "index"
    assert default_index_dir() == default_cache_dir() / "index"  # the weights' folder
    monkeypatch.delenv("TIERFLOW_MODEL_CACHE")
    assert default_index_dir() == default_cache_dir() / "index"


# --- tools -------------------------------------------------------------------------------------


@pytest.fixture
def tools(tree: Path, cache: Path) -> dict:
    return {t.name: t for t in index_tools({"root": str(tree)}, cache_dir=cache)}


def test_tools_answer_in_path_line_source_lines(tools: dict) -> None:
    assert list(tools) == [
        "find_definition", "signature", "class_bases", "docstring", "references", "members",
    ]  # fmt: skip
    found = tools["find_definition"].invoke({"name": "pkg.Engine"}).split("\n")
    assert found[0] == "pkg/core.py:4 class Engine:"
    assert "re-exported as pkg.Engine (pkg/__init__.py:2)" in found[1]
    signature = tools["signature"].invoke({"name": "Session.request"})
    assert signature.startswith(
        f"models.py:{_line(TREE['models.py'], 'def request(')} def request("
        'self, method: str = "GET", *args, timeout: float | None = None,'
    )
    assert '  parameter method: str = "GET"' in signature
    bases = tools["class_bases"].invoke({"name": "Session"})
    assert (
        "models.py:19 class Session(Base):" in bases and "Base -> models.py:9 class Base:" in bases
    )
    assert "BaseModel: not defined in this tree (imported from pydantic at models.py:4)" in (
        tools["class_bases"].invoke({"name": "User"})
    )
    assert tools["docstring"].invoke({"name": "Registry"}) == (
        "pkg/__init__.py:8 class Registry:\n  Defined in the package's __init__."
    )
    members = tools["members"].invoke({"name": "Point"})
    at = _line(TREE["models.py"], "class Point")
    assert members.split("\n") == [
        f"models.py:{at} class Point(NamedTuple):",
        "fields:",
        f"models.py:{at + 1} x: int",
        f"models.py:{at + 2} y: int = 0",
    ]
    refs = tools["references"].invoke({"name": "Registry"}).split("\n")
    assert refs[0].startswith("2 references to 'Registry' in 1 file (")
    assert "app.py:2 [import] from pkg import Engine, Registry" in refs
    # A name from outside the tree has no definition here, but its uses are listed.
    outside = tools["references"].invoke({"name": "dataclass"}).split("\n")
    assert "models.py:1 [import] from dataclasses import dataclass, field" in outside
    assert f"models.py:{_line(TREE['models.py'], '@dataclass')} @dataclass(frozen=True)" in outside


def test_tools_errors_say_what_to_do(tools: dict, tree: Path) -> None:
    with pytest.raises(ToolException) as info:
        tools["find_definition"].invoke({"name": "Sesion"})
    message = str(info.value)
    assert "no definition of 'Sesion'" in message and "'Session'" in message
    assert "grep('Sesion')" in message
    with pytest.raises(ToolException, match="imported from 'dataclasses'"):
        tools["signature"].invoke({"name": "dataclass"})
    with pytest.raises(ToolException, match="name is empty"):
        tools["docstring"].invoke({"name": " "})
    with pytest.raises(ToolException, match="not a class or module"):
        tools["members"].invoke({"name": "MAX_RETRIES"})
    with pytest.raises(ValueError, match="pass an existing directory"):
        index_tools({"root": str(tree / "missing")})


# --- a tree nobody tuned the index to ----------------------------------------------------------


def test_the_installed_langgraph_package(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("langgraph")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    started = time.perf_counter()
    index = CodeIndex.build(root, cache_dir=tmp_path)
    cold = time.perf_counter() - started
    warm = CodeIndex.build(root, cache_dir=tmp_path)
    print(f"\nlanggraph: {index.stats.files} files, {len(index)} definitions, "
          f"cold {cold:.2f} s, warm {warm.stats.seconds:.2f} s")  # fmt: skip
    assert warm.stats.parsed == 0

    graph = index.find_definition("langgraph.graph.StateGraph")[0]
    state = (root / "graph" / "state.py").read_text().split("\n")
    assert graph.path == "graph/state.py" and state[graph.line - 1].startswith("class StateGraph(")
    assert index.class_bases("StateGraph")[0].startswith("Generic[")
    assert "StateGraph" in [a.name for a in index.ancestors("MessageGraph")]
    retry = {m.name: m for m in index.members("RetryPolicy")}
    assert retry["max_attempts"].kind is Kind.FIELD
    assert (retry["max_attempts"].annotation, retry["max_attempts"].default) == ("int", "3")
    assert retry["initial_interval"].default == "0.5" and retry["jitter"].default == "True"
    assert index.find_definition("RetryPolicy")[0].flavor == "namedtuple"
