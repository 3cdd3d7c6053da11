"""The code that decides "what happens if I call X with a=..., b=...": the tests of a and b.

A behaviour question that sets some of a function's parameters is decided where the code
tests them: ``if threaded and processes > 1: raise ValueError(...)``. That test is often in a
callee the parameters are passed on to (``run_simple`` hands them to ``make_server``), so an
argument passed on by name or position is followed one call deep. Each test found comes with
what its block does first when it raises or returns: the outcome an answer has to state.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._checker import Checker
from tierflow.graphs.codebase_qa._errors import EXCEPTION
from tierflow.graphs.codebase_qa._tree import Tree
from tierflow.tools.code_index import CodeIndex, Definition, Kind, UnknownName

__all__ = ["CaseTest", "case_tests", "def_node", "evaluate", "judge_case", "literal_values"]

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_TREES: WeakKeyDictionary[CodeIndex, dict[str, ast.Module | None]] = WeakKeyDictionary()


@dataclass(frozen=True)
class CaseTest:
    """A test of the parameters a question sets, and the first raise/return of its block."""

    path: str
    line: int  # the ``if``/``elif``/``while``/``assert`` line
    end: int  # the last line of its block
    outcome: int | None  # the block's first ``raise`` or ``return`` line
    owner: str  # the function it is in
    whole: bool  # it tests every parameter the question sets: the question's own case
    taken: bool | None  # its test under the question's values (None: it reads other names)

    def fact(self, index: CodeIndex) -> list[str]:
        """``path:line: code`` facts for the answering model."""
        out = [
            f"{self.path}:{self.line}: {self.owner} tests it: {index.line_text(self.path, self.line)}"
        ]
        if self.outcome is not None:
            out.append(f"{self.path}:{self.outcome}: {index.line_text(self.path, self.outcome)}")
        return out


def case_tests(index: CodeIndex, d: Definition, text: str) -> list[CaseTest]:
    """Tests of the parameters of ``d`` that ``text`` sets (``threaded=True``), one call deep."""
    func = index.constructor(d) if d.kind is Kind.CLASS else d
    if func is None or func.kind not in (Kind.FUNCTION, Kind.METHOD):
        return []
    params = [p.name.lstrip("*") for p in func.parameters]
    named = {p for p in params if re.search(rf"(?<![\w.]){re.escape(p)}\s*=", text)}
    if not named:
        return []
    node = def_node(index, func)
    if node is None:
        return []
    values = literal_values(text)
    found = _tests(func, node, named, values)
    if found:
        return found
    for callee, passed in _passed_on(node, named, params):
        for target in _defined(index, callee, func.path)[:2]:
            inner = def_node(index, target) if target.kind in (Kind.FUNCTION, Kind.METHOD) else None
            if inner is not None:
                mapped = passed_names(target, passed)  # callee's name -> the caller's
                found += _tests(target, inner, set(mapped),
                                {new: values[old] for new, old in mapped.items() if old in values})  # fmt: skip
    return found


def judge_case(checker: Checker, index: CodeIndex, tests: list[CaseTest]) -> bool:
    """Hold the answer to the outcome of the test that decides the question's case.

    The test of every parameter the question sets decides it (else any test of one of them):
    the answer must state what its block does first (the exception raised, the class or
    value returned); it is then supported at that line. False when no test found has an
    outcome to state (the behaviour checks judge the answer then).
    """
    tests = [t for t in tests if t.taken is not False]  # a block the case does not enter
    whole = [t for t in tests if t.whole]
    deciding = [t for t in whole[:1] or tests if t.outcome is not None]
    for t in deciding:
        assert t.outcome is not None
        if _states_outcome(checker.answer, index.line_text(t.path, t.outcome)):
            checker.support(f"{t.owner} decides it at {t.path}:{t.line}", (t.path, t.outcome))
            return True
    if not deciding:
        return False
    shown = "; ".join(f"{t.path}:{t.line} ({t.owner}): {index.line_text(t.path, t.line)} -> "
                      f"{t.path}:{t.outcome}: {index.line_text(t.path, t.outcome or t.line)}"
                      for t in deciding[:2])  # fmt: skip
    where = "the question's case is decided at" if whole else "the code that tests it:"
    first = index.line_text(deciding[0].path, deciding[0].outcome or deciding[0].line)
    raised = re.match(r"raise\s+(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)", first)
    named = sorted(set(EXCEPTION.findall(checker.answer)))
    said = (f": it raises {raised.group(1)} there, and the answer names "
            f"{', '.join(named) or 'no exception'}") if raised else "; the answer does not say that"  # fmt: skip
    checker.problems.append(f"{where} {shown}{said}")
    return True


def _states_outcome(answer: str, line: str) -> bool:
    """Whether the answer names what a ``raise``/``return`` line gives (its class or value)."""
    m = re.match(r"(?:raise|return)\s+(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)", line)
    if m is None:
        value = line.removeprefix("return").strip()
        return bool(value) and value in answer
    return re.search(rf"(?<![\w.]){re.escape(m.group(1))}\b", answer) is not None


def _defined(index: CodeIndex, name: str, path: str) -> list[Definition]:
    """Functions called ``name``, those of ``path`` first."""
    try:
        found = index.find_definition(name)
    except UnknownName:
        return []
    return sorted(found, key=lambda d: d.path != path)


def passed_names(d: Definition, passed: list[tuple[int | str, str]]) -> dict[str, str]:
    """The callee's parameter for each argument passed on (by position or keyword): its name."""
    names = [p.name for p in d.parameters if p.name not in ("self", "cls")]
    out: dict[str, str] = {}
    for at, caller in passed:
        if isinstance(at, str):
            out[at] = caller
        elif at < len(names):
            out[names[at]] = caller
    return out


def _tests(
    d: Definition, node: ast.AST, names: set[str], values: dict[str, object]
) -> list[CaseTest]:
    """The tests of ``names`` in ``d``: those testing all of them first, then in line order."""
    out: list[CaseTest] = []
    for sub in ast.walk(node):
        if not isinstance(sub, ast.If | ast.While | ast.Assert):
            continue
        used = _used(sub.test, names)
        if used:
            block = sub.body if not isinstance(sub, ast.Assert) else []
            outcome = next((s.lineno for s in block if isinstance(s, ast.Raise | ast.Return)), None)
            end = max((s.end_lineno or s.lineno for s in block), default=sub.lineno)
            whole, taken = used == len(names), evaluate(sub.test, values)
            out.append(CaseTest(d.path, sub.lineno, end, outcome, d.qualname, whole, taken))
    return sorted(out, key=lambda t: (not t.whole, t.line))


def _passed_on(
    node: ast.AST, names: set[str], params: list[str]
) -> list[tuple[str, list[tuple[int | str, str]]]]:
    """``(callee, [(position or keyword, the caller's name), ...])`` for calls given ``names``."""
    out: list[tuple[str, list[tuple[int | str, str]]]] = []
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        callee = call.func.id if isinstance(call.func, ast.Name) else (
            call.func.attr if isinstance(call.func, ast.Attribute) else None)  # fmt: skip
        passed: list[tuple[int | str, str]] = [
            (i, a.id) for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id in names
        ]
        passed += [(k.arg, k.value.id) for k in call.keywords
                   if k.arg and isinstance(k.value, ast.Name) and k.value.id in names]  # fmt: skip
        if callee and passed and callee not in params:
            out.append((callee, passed))
    return out


_LITERAL = re.compile(
    r"(?<![\w.])([A-Za-z_]\w*)\s*=\s*('[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|True|False|None)(?![\w.])"
)
_SAFE = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare,
         ast.Name, ast.Load, ast.Constant, ast.Set, ast.Tuple, ast.List, ast.Eq, ast.NotEq,
         ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)  # fmt: skip


def literal_values(text: str) -> dict[str, object]:
    """The literal values the question gives its arguments: ``processes=4`` -> {processes: 4}."""
    return {name: ast.literal_eval(value) for name, value in _LITERAL.findall(text)}


def evaluate(test: ast.expr, values: dict[str, object]) -> bool | None:
    """The test's truth under ``values``; None when it reads anything else (or is not plain)."""
    tree = ast.Expression(test)
    if not all(isinstance(n, _SAFE) for n in ast.walk(tree)):
        return None
    if any(isinstance(n, ast.Name) and n.id not in values for n in ast.walk(tree)):
        return None
    try:
        return bool(eval(compile(tree, "<test>", "eval"), {"__builtins__": {}}, dict(values)))  # noqa: S307
    except Exception:  # noqa: BLE001 - a comparison of unlike types: unknown
        return None


def _used(test: ast.expr, names: set[str]) -> int:
    """How many of ``names`` the test reads."""
    return len({n.id for n in ast.walk(test) if isinstance(n, ast.Name) and n.id in names})


def def_node(index: CodeIndex, d: Definition) -> ast.AST | None:
    """The ``def`` node of ``d`` in its file's syntax tree (each file parsed once per index)."""
    trees = _TREES.setdefault(index, {})
    if d.path not in trees:
        lines = Tree(str(index.root)).lines(d.path)
        try:
            trees[d.path] = ast.parse("\n".join(lines)) if lines is not None else None
        except (SyntaxError, ValueError):
            trees[d.path] = None
    tree = trees[d.path]
    if tree is None:
        return None
    return next((n for n in ast.walk(tree) if isinstance(n, _FUNCS) and n.lineno == d.line), None)
