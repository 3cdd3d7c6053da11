"""Sandboxes: the file tools (path containment, symlink escapes, output formats, limits) and the
code runner that scores generated code (``tierflow.tools.code_sandbox``).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool, ToolException

import tierflow.tools
from tierflow.tools import Sandbox, SandboxError, fs_tools
from tierflow.tools.code_sandbox import run_python


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.py").write_text("SECRET = 'do not leak'\n")
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """A small project whose tree contains symlinks both inside and outside the root."""
    project = tmp_path / "root"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "src" / "app.py").write_text("import os\n\ndef main():\n    return 'SECRET-free'\n")
    (project / "src" / "util.py").write_text("def helper():\n    return 1\n")
    (project / "README.md").write_text("# Title\nhelper docs\n")
    (project / ".hidden").mkdir()
    (project / ".hidden" / "x.py").write_text("def helper(): ...\n")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "y.py").write_text("def helper(): ...\n")
    (project / "leak.py").symlink_to(outside / "secret.py")
    (project / "leakdir").symlink_to(outside, target_is_directory=True)
    (project / "src" / "deep" / "leak2").symlink_to(outside, target_is_directory=True)
    (project / "src" / "deep" / "leak3.py").symlink_to(outside / "secret.py")
    (project / "alias.py").symlink_to(project / "src" / "util.py")
    (project / "srclink").symlink_to(Path("src"), target_is_directory=True)
    return project


@pytest.fixture
def fs(root: Path) -> dict[str, BaseTool]:
    return {t.name: t for t in fs_tools(root)}


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- the sandbox itself ---------------------------------------------------------------------


def test_tools_have_the_exact_names(root: Path) -> None:
    assert [t.name for t in fs_tools(root)] == ["list_files", "grep", "read_file"]


def test_root_is_stored_as_real_path(tmp_path: Path, root: Path) -> None:
    via_link = tmp_path / "root_link"
    via_link.symlink_to(root, target_is_directory=True)
    box = Sandbox(via_link)
    assert box.root == Path(os.path.realpath(root))
    assert box.resolve(".") == box.root
    assert box.resolve("") == box.root


@pytest.mark.parametrize(
    "make_bad", [lambda p: p / "missing", lambda p: p / "outside" / "secret.py"]
)
def test_root_must_be_an_existing_directory(tmp_path: Path, outside: Path, make_bad) -> None:
    with pytest.raises(ValueError, match="pass an existing directory"):
        Sandbox(make_bad(tmp_path))


@pytest.mark.parametrize(
    "bad", ["..", "../outside/secret.py", "a/../../x", "src/..", "./..", "src/../app.py"]
)
def test_dotdot_is_rejected_everywhere(fs: dict[str, BaseTool], bad: str) -> None:
    for name, args in [
        ("read_file", {"path": bad}),
        ("list_files", {"path": bad}),
        ("grep", {"pattern": "x", "path": bad}),
    ]:
        with pytest.raises(SandboxError, match=r"'\.\.' is not allowed") as info:
            fs[name].invoke(args)
        assert info.value.path == bad
        assert "relative to the sandbox root" in str(info.value)


def test_absolute_paths_are_rejected(fs: dict[str, BaseTool], outside: Path) -> None:
    for bad in [str(outside / "secret.py"), "/etc/passwd", "/"]:
        with pytest.raises(SandboxError, match="absolute paths are not allowed"):
            fs["read_file"].invoke({"path": bad})
    with pytest.raises(SandboxError, match="absolute"):
        fs["list_files"].invoke({"path": "/"})


def test_absolute_path_to_the_root_itself_is_rejected(fs: dict[str, BaseTool], root: Path) -> None:
    with pytest.raises(SandboxError, match="absolute"):
        fs["read_file"].invoke({"path": str(root / "src" / "app.py")})


def test_nul_is_rejected(root: Path) -> None:
    with pytest.raises(SandboxError, match="NUL"):
        Sandbox(root).resolve("src/app.py\x00.txt")


def test_sandbox_error_is_a_tool_exception_carrying_data(root: Path) -> None:
    with pytest.raises(ToolException) as info:
        Sandbox(root).resolve("../x")
    assert isinstance(info.value, SandboxError)
    assert info.value.root == Path(os.path.realpath(root))
    assert str(root) not in str(info.value)  # the model is not shown the absolute root


# --- symlinks -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["leak.py", "leakdir/secret.py", "src/deep/leak3.py"])
def test_read_file_rejects_symlinks_to_files_outside(fs: dict[str, BaseTool], path: str) -> None:
    with pytest.raises(SandboxError, match="outside the sandbox"):
        fs["read_file"].invoke({"path": path})


@pytest.mark.parametrize("path", ["leakdir", "src/deep/leak2", "src/deep/leak2/"])
def test_symlinked_directory_outside_is_rejected(fs: dict[str, BaseTool], path: str) -> None:
    with pytest.raises(SandboxError, match="outside the sandbox"):
        fs["list_files"].invoke({"path": path})
    with pytest.raises(SandboxError, match="outside the sandbox"):
        fs["grep"].invoke({"pattern": "SECRET", "path": path, "glob": "*"})


def test_escaping_symlinks_are_neither_listed_nor_searched(fs: dict[str, BaseTool]) -> None:
    listing = fs["list_files"].invoke({})
    assert "leak" not in listing
    assert "secret" not in listing
    found = fs["grep"].invoke({"pattern": "do not leak", "glob": "*"})
    assert found == "no matches for 'do not leak' under ."


def test_symlinks_inside_the_root_are_allowed(fs: dict[str, BaseTool]) -> None:
    out = lines(fs["read_file"].invoke({"path": "alias.py"}))
    assert out == ["alias.py lines 1-2 of 2", "1: def helper():", "2:     return 1"]
    assert "alias.py" in lines(fs["list_files"].invoke({}))
    assert lines(fs["list_files"].invoke({"path": "srclink"})) == [
        "srclink/app.py",
        "srclink/util.py",
    ]
    assert fs["grep"].invoke({"pattern": "helper", "path": "srclink"}) == (
        "srclink/util.py:1: def helper():"
    )


# --- list_files -----------------------------------------------------------------------------


def test_list_files_is_sorted_recursive_and_skips_hidden(fs: dict[str, BaseTool]) -> None:
    # Symlinked directories are not descended into, so srclink/ does not duplicate src/.
    assert lines(fs["list_files"].invoke({})) == [
        "README.md",
        "alias.py",
        "src/app.py",
        "src/util.py",
    ]


def test_list_files_pattern_and_subfolder(fs: dict[str, BaseTool]) -> None:
    assert lines(fs["list_files"].invoke({"pattern": "*.md"})) == ["README.md"]
    assert lines(fs["list_files"].invoke({"path": "./src/", "pattern": "a*"})) == ["src/app.py"]
    assert fs["list_files"].invoke({"pattern": "*.rs"}) == "no files matching '*.rs' under ."


def test_list_files_cap_message(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("x\n")
    list_files = fs_tools(tmp_path, max_entries=3)[0]
    assert lines(list_files.invoke({})) == [
        "f0.txt",
        "f1.txt",
        "f2.txt",
        "... 2 more (narrow the path or pattern)",
    ]


def test_list_files_missing_folder(fs: dict[str, BaseTool]) -> None:
    with pytest.raises(ToolException, match="no such file or folder: 'nope'"):
        fs["list_files"].invoke({"path": "nope"})


def test_null_arguments_mean_defaults(fs: dict[str, BaseTool]) -> None:
    # Small models often send null for optional arguments.
    assert fs["list_files"].invoke({"path": None, "pattern": None}) == fs["list_files"].invoke({})


# --- grep -----------------------------------------------------------------------------------


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n    needle = 2   \n")
    (tmp_path / "pkg.py").write_text("needle\nneedle again\n")
    (tmp_path / "b.py").write_text("nothing\n\n\nneedle in b\n")
    (tmp_path / "notes.md").write_text("needle in markdown\n")
    return tmp_path


def test_grep_format_and_sorting(code: Path) -> None:
    grep = fs_tools(code)[1]
    assert lines(grep.invoke({"pattern": "needle"})) == [
        "b.py:4: needle in b",
        "pkg.py:1: needle",
        "pkg.py:2: needle again",
        "pkg/mod.py:2: needle = 2",
    ]


def test_grep_glob_and_path(code: Path) -> None:
    grep = fs_tools(code)[1]
    assert grep.invoke({"pattern": "needle", "glob": "*.md"}) == "notes.md:1: needle in markdown"
    assert grep.invoke({"pattern": "needle", "path": "pkg"}) == "pkg/mod.py:2: needle = 2"
    assert grep.invoke({"pattern": "needle", "path": "notes.md"}) == (
        "notes.md:1: needle in markdown"
    )


def test_grep_regex(code: Path) -> None:
    grep = fs_tools(code)[1]
    assert grep.invoke({"pattern": r"^needle\s+again$"}) == "pkg.py:2: needle again"


def test_grep_cap(code: Path) -> None:
    grep = fs_tools(code, max_matches=2)[1]
    assert lines(grep.invoke({"pattern": "needle", "glob": "*"})) == [
        "b.py:4: needle in b",
        "notes.md:1: needle in markdown",
        "... 3 more matches",
    ]


def test_grep_no_matches(code: Path) -> None:
    grep = fs_tools(code)[1]
    assert grep.invoke({"pattern": "zzz"}) == "no matches for 'zzz' under ."
    assert grep.invoke({"pattern": "zzz", "path": "pkg/"}) == "no matches for 'zzz' under pkg"


def test_grep_invalid_regex_falls_back_to_literal(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("call(1\nfoo(\n")
    grep = fs_tools(tmp_path)[1]
    first, *rest = lines(grep.invoke({"pattern": "foo("}))
    assert "not a valid regex" in first
    assert "literal" in first
    assert rest == ["a.py:2: foo("]


def test_grep_truncates_long_lines(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text("   " + "needle" + "x" * 500 + "\n")
    out = fs_tools(tmp_path)[1].invoke({"pattern": "needle"})
    prefix = "long.py:1: "
    assert out.startswith(prefix + "needlexx")
    assert len(out) == len(prefix) + 200


def test_grep_skips_binary_and_huge_files(tmp_path: Path) -> None:
    (tmp_path / "bin.py").write_bytes(b"needle\x00\x01\x02")
    (tmp_path / "big.py").write_text("needle\n" + "y" * 1_100_000)
    (tmp_path / "ok.py").write_text("needle\n")
    assert fs_tools(tmp_path)[1].invoke({"pattern": "needle"}) == "ok.py:1: needle"


# --- read_file ------------------------------------------------------------------------------


@pytest.fixture
def ten(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ten.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    return tmp_path


def test_read_file_whole_file(ten: Path) -> None:
    out = lines(fs_tools(ten)[2].invoke({"path": "docs/ten.txt"}))
    assert out[0] == "docs/ten.txt lines 1-10 of 10"
    assert out[1:] == [f"{i}: line {i}" for i in range(1, 11)]


def test_read_file_range_and_clamp(ten: Path) -> None:
    read = fs_tools(ten)[2]
    out = lines(read.invoke({"path": "docs/ten.txt", "start_line": 3, "end_line": 5}))
    assert out[0] == "docs/ten.txt lines 3-5 of 10"
    assert out[1:4] == ["3: line 3", "4: line 4", "5: line 5"]
    assert "start_line=6" in out[-1]
    out = lines(read.invoke({"path": "./docs//ten.txt", "start_line": 9, "end_line": 99}))
    assert out == ["docs/ten.txt lines 9-10 of 10", "9: line 9", "10: line 10"]


def test_read_file_caps_lines_per_call(ten: Path) -> None:
    read = fs_tools(ten, max_read_lines=4)[2]
    out = lines(read.invoke({"path": "docs/ten.txt"}))
    assert out[0] == "docs/ten.txt lines 1-4 of 10"
    assert len(out) == 6
    assert out[-1] == "... 6 more lines; call read_file with start_line=5"
    out = lines(read.invoke({"path": "docs/ten.txt", "start_line": 2, "end_line": 10}))
    assert out[0] == "docs/ten.txt lines 2-5 of 10"
    assert "at most 4 lines per call" in out[-1]


@pytest.mark.parametrize("start", [0, -1, 11, 500])
def test_read_file_start_out_of_range(ten: Path, start: int) -> None:
    with pytest.raises(ToolException, match="use start_line from 1 to 10"):
        fs_tools(ten)[2].invoke({"path": "docs/ten.txt", "start_line": start})


def test_read_file_end_before_start(ten: Path) -> None:
    with pytest.raises(ToolException, match="before start_line"):
        fs_tools(ten)[2].invoke({"path": "docs/ten.txt", "start_line": 5, "end_line": 2})


def test_read_file_errors(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "blob.py").write_bytes(b"abc\x00def")
    read = fs_tools(tmp_path)[2]
    with pytest.raises(ToolException, match="is a folder"):
        read.invoke({"path": "sub"})
    with pytest.raises(ToolException, match="no such file"):
        read.invoke({"path": "missing.py"})
    with pytest.raises(ToolException, match="binary"):
        read.invoke({"path": "blob.py"})


def test_read_file_rejects_fifos(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ToolException, match="not a regular file"):
        fs_tools(tmp_path)[2].invoke({"path": "pipe"})


def test_read_file_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    assert fs_tools(tmp_path)[2].invoke({"path": "empty.py"}) == "empty.py is empty (0 lines)"


def test_limits_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_matches must be at least 1"):
        fs_tools(tmp_path, max_matches=0)


# --- package boundary -----------------------------------------------------------------------


def test_tools_package_is_a_leaf() -> None:
    # tools may import only itself from tierflow, and tierflow's error vocabulary
    # (tierflow.errors: the stdlib and one enum), so a tool's bad setup is a SpecError naming
    # the fix: never the engine, nodes or graphs.
    for source in Path(tierflow.tools.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module or ""}
            else:
                continue
            bad = {n for n in names if n.split(".")[0] in {"tierflow", "nodes", "graphs"}}
            bad = {n for n in bad if not n.startswith("tierflow.tools") and n != "tierflow.errors"}
            assert not bad, f"{source.name} imports {bad}"


# --- forgiving patterns for small models ------------------------------------------------------


@pytest.mark.parametrize(
    "noisy", ["def helper.*\n", ".*def helper.*", "def helper\\n", "def helper$"]
)
def test_grep_strips_line_noise_small_models_add(fs: dict[str, BaseTool], noisy: str) -> None:
    out = fs["grep"].invoke({"pattern": noisy, "path": "src"})
    assert lines(out) == ["src/util.py:1: def helper():"]


def test_grep_falls_back_to_case_insensitive_and_says_so(fs: dict[str, BaseTool]) -> None:
    out = lines(fs["grep"].invoke({"pattern": "DEF HELPER", "path": "src"}))
    assert out[0].startswith("note: no exact-case match for 'DEF HELPER'")
    assert out[1:] == ["src/util.py:1: def helper():"]
    exact = lines(fs["grep"].invoke({"pattern": "def helper", "path": "src"}))
    assert not exact[0].startswith("note:")


@pytest.mark.parametrize("glob_like", ["*.py", ".*py", "*", ".py", "**.py"])
def test_grep_rejects_a_file_glob_given_as_pattern(fs: dict[str, BaseTool], glob_like: str) -> None:
    with pytest.raises(ToolException, match="looks like a file-name glob"):
        fs["grep"].invoke({"pattern": glob_like})


def _grep(base: Path) -> BaseTool:
    return {t.name: t for t in fs_tools(str(base))}["grep"]


def test_a_catastrophic_pattern_returns_a_clear_error_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tierflow.tools.fs as fs

    monkeypatch.setattr(fs, "_GREP_BUDGET_S", 0.5)
    (tmp_path / "a.py").write_text("a" * 40 + "\n")
    with pytest.raises(ToolException, match="backtracks badly"):
        _grep(tmp_path).invoke({"pattern": "(a|aa)+b"})


def test_grep_over_a_huge_tree_stops_at_its_budget_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tierflow.tools.fs as fs

    for i in range(300):
        (tmp_path / f"m{i:03}.py").write_text("x = 1\n" * 200 + "needle\n")
    ticks = iter(range(10**7))  # a clock that moves 1 ms per reading: no wall-clock in the test
    monkeypatch.setattr(fs.time, "monotonic", lambda: next(ticks) / 1000)
    monkeypatch.setattr(fs, "_GREP_BUDGET_S", 0.7)  # about three files' worth of lines
    out = _grep(tmp_path).invoke({"pattern": "needle"})
    assert out.count("needle") >= 2
    assert "note: grep stopped after" in out and "of 300 files" in out


@pytest.mark.parametrize("path", [".env", ".git/config", "src/.secrets/key", "./.env"])
def test_hidden_files_are_neither_readable_nor_greppable(tmp_path: Path, path: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("token = s3cret\n")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=s3cret\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    tools = {t.name: t for t in fs_tools(str(tmp_path))}
    with pytest.raises(ToolException, match="hidden files"):
        tools["read_file"].invoke({"path": path})
    assert tools["grep"].invoke({"pattern": "s3cret"}).startswith("no matches")


def test_a_very_deep_path_is_refused_without_showing_the_root(tmp_path: Path) -> None:
    tools = {t.name: t for t in fs_tools(str(tmp_path))}
    with pytest.raises(ToolException) as caught:
        tools["read_file"].invoke({"path": "/".join(["d"] * 5000)})
    assert "too long" in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_a_huge_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    import tracemalloc

    with (tmp_path / "big.py").open("w") as f:
        f.write("x = 1\n" + "y" * 50_000_000 + "\nz = 3\n")
    read = {t.name: t for t in fs_tools(str(tmp_path))}["read_file"]
    tracemalloc.start()
    out = read.invoke({"path": "big.py"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.splitlines()[1:4] == [
        "1: x = 1",
        f"2: {'y' * 1000} ... (+49999000 chars)",
        "3: z = 3",
    ]
    assert peak < 5_000_000  # the 50 MB line was never held whole


# --- the code runner (run_python) -------------------------------------------------------------


def test_run_python_reports_output_and_failures() -> None:
    ok = run_python("import sys\nprint(6 * 7)\nprint(sys.flags.isolated)")
    assert (ok.ok, ok.returncode, ok.stdout_tail, ok.timed_out) == (True, 0, "42\n1\n", False)
    failed = run_python("print('before')\nassert 1 == 2, 'nope'")
    assert not failed.ok and failed.returncode == 1 and not failed.timed_out
    assert failed.stdout_tail == "before\n" and "AssertionError: nope" in failed.stderr_tail
    assert failed.reason() == "AssertionError: nope"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_run_python_kills_a_runaway_and_its_children() -> None:
    import time

    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "while True:\n    pass\n"
    )
    started = time.monotonic()
    result = run_python(code, timeout_s=1.5)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok and result.returncode == -9
    assert result.reason() == "timed out"
    child = int(result.stdout_tail)
    deadline = time.monotonic() + 3
    while _state(child) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(child) in ("gone", "Z")  # killed with the group (a zombie awaits its reaper)


def test_run_python_limits_memory() -> None:
    assert run_python("b = bytearray(100 * 1024**2)").ok
    big = run_python("b = bytearray(2 * 1024**3)", memory_mb=512)
    assert not big.ok and "MemoryError" in big.stderr_tail


def test_run_python_limits_file_size_in_an_empty_scratch_folder() -> None:
    small = run_python(
        "import os\nassert os.listdir('.') == []\nopen('a.txt', 'w').write('x' * 10_000)"
    )
    assert small.ok, small.stderr_tail
    big = run_python("open('big.bin', 'wb').write(b'0' * 5_000_000)")
    assert not big.ok and "File too large" in big.stderr_tail
    flood = run_python("print('y' * 5_000_000)")
    assert not flood.ok and len(flood.stdout_tail) <= 4000


def test_run_python_sees_no_secrets_and_no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-do-not-leak")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    code = (
        "import os, sys\n"
        "print(sorted(os.environ))\n"
        "print(os.environ.get('OPENAI_API_KEY'))\n"
        "print(repr(sys.stdin.read()))\n"
    )
    result = run_python(code)
    assert result.ok, result.stderr_tail
    names, key, stdin = result.stdout_tail.splitlines()
    assert "OPENAI_API_KEY" not in names and "HTTPS_PROXY" not in names
    assert (key, stdin) == ("None", "''")
    assert "sk-test-do-not-leak" not in result.stdout_tail + result.stderr_tail
