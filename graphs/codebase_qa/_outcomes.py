"""The exception a "what happens when ..." question's case ends in, read off the code.

"A client POSTs text/plain and my view calls request.get_json() with the default arguments.
What happens?" is decided by data, not by an argument the question writes as code: no
parameter literal picks the branch. What ties the case to the code is what the code says when
it refuses that case: ``raise UnsupportedMediaType("... the request Content-Type was not
'application/json'.")``, reached from ``get_json`` through ``on_json_loading_failed(None)``.

:func:`case_raise` walks the function's statements, and the functions it calls (``f(...)``
and ``self.m(...)``, two calls deep), under the values the question gives its parameters
(and the parameters' literal defaults when it passes none of them): a branch whose test is
known to be false is not entered, and nothing after a ``return`` or ``raise`` that is always
reached runs. Of the ``raise`` statements reached, the one whose message (or class name)
shares the most words with the question's own case words (not the subject's name, not common
words) is the case's outcome, when two or more words are shared and no other exception shares
as many.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from tierflow.graphs.codebase_qa._case_params import def_node, evaluate, literal_values
from tierflow.graphs.codebase_qa._checker import Checker
from tierflow.graphs.codebase_qa._lookup import lookup
from tierflow.graphs.codebase_qa._questions import STOP_WORDS
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = [
    "CaseRaise", "case_raise", "described_raise", "judge_raise", "raises_reached", "raising_members",
]  # fmt: skip

_CALLABLE = (Kind.FUNCTION, Kind.METHOD)
_DEPTH = 2
_SITES: WeakKeyDictionary[CodeIndex, list[CaseRaise]] = WeakKeyDictionary()
# Words of any "what happens" question: they say nothing of its case.
_COMMON = STOP_WORDS | set(
    "happens happen call calls called pass passed passing give given gives get gets use used "
    "uses using when what with without after before then there their them they into onto than "
    "about instance object objects argument arguments parameter parameters default defaults "
    "code example e.g like just only also some none true false self".split()
)


# Words of any question: what a message of the code cannot tie it to.
_GENERIC = set(
    "what which when where does happens happen that this with from have into will would should "
    "could also just then than there their they them your mine some".split()
)


@dataclass(frozen=True)
class CaseRaise:
    """A ``raise`` reached from the subject, with the message words that tie it to the case."""

    path: str
    line: int
    name: str  # the exception class raised
    message: str  # the string literals of its arguments, joined
    owner: str  # the function the raise is in
    via: tuple[str, ...] = ()  # the calls followed to reach it
    shared: tuple[str, ...] = ()  # the case words its message shares

    def fact(self) -> str:
        """``path:line: ...`` for the answering model."""
        chain = f" (reached through {' -> '.join(self.via)})" if self.via else ""
        return (f"{self.path}:{self.line}: for this case {self.owner} raises {self.name}"
                f"{chain}: {self.message[:160]!r}")  # fmt: skip


def case_raise(index: CodeIndex, d: Definition, question: str) -> CaseRaise | None:
    """The exception the question's case ends in, reached from ``d``; None when none stands out."""
    func = index.constructor(d) if d.kind is Kind.CLASS else d
    if func is None or func.kind not in _CALLABLE:
        return None
    node = def_node(index, func)
    if node is None:
        return None
    values = _start_values(func, question)
    reached = raises_reached(index, func, node, values, _DEPTH)
    case = _case_words(question, func)
    scored = []
    for r in reached:
        shared = tuple(sorted(case & _stems(f"{r.message} {_spaced(r.name)}")))
        if len(shared) >= 2:
            scored.append((len(shared), r, shared))
    if not scored:
        return None
    scored.sort(key=lambda s: (-s[0], s[1].line))
    best, runner = scored[0], next((s for s in scored[1:] if s[1].name != scored[0][1].name), None)
    if runner is not None and runner[0] == best[0]:
        return None  # two exceptions speak of the case as much: the code does not say which
    r = best[1]
    return CaseRaise(r.path, r.line, r.name, r.message, r.owner, r.via, best[2])


def described_raise(index: CodeIndex, question: str) -> Definition | None:
    """The function whose ``raise`` message says most of what a question names no code for.

    "What happens if my view function ends without a return statement, so it returns None?"
    names no definition; ``make_response`` raises ``TypeError("The view function ... did not
    return a valid response. The function either returned None or ended without a return
    statement.")``. Three shared words at least, and more than any other exception's message.
    """
    plain = _stems(re.sub(r"[\w.]*[_.][\w.]*\(?\)?", " ", question), _GENERIC)
    scored = []
    for site in _sites(index):
        shared = plain & _stems(f"{site.message} {_spaced(site.name)}", _GENERIC)
        if len(shared) >= 3:
            scored.append((len(shared), site))
    scored.sort(key=lambda s: (-s[0], s[1].path, s[1].line))
    if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]
                      and scored[1][1].owner != scored[0][1].owner):  # fmt: skip
        return None
    best = scored[0][1]
    return next((d for d in lookup(index, best.owner) if d.path == best.path), None)


def raising_members(index: CodeIndex, owner: Definition, question: str) -> Definition | None:
    """The list asked by "which methods of NullSession raise the 'session is unavailable' error?".

    The class's methods whose ``raise`` message shares two words with the question, and the
    names the class binds to them (``__setitem__ = __delitem__ = clear = _fail``): the list
    the answer is checked against, as a definition at the binding line (else the method's).
    """
    if owner.kind is not Kind.CLASS or not re.search(r"\bmethods?\b.*\brais", question):
        return None
    asked = _stems(question, _GENERIC)
    prefix = f"{owner.qualname}."
    raising = {
        site.owner.removeprefix(prefix): site
        for site in _sites(index)
        if site.owner.startswith(prefix) and len(asked & _stems(site.message, _GENERIC)) >= 2
    }
    if not raising:
        return None
    bound = [m for m in index.members(owner.dotted)
             if m.qualname.startswith(prefix) and m.kind is Kind.CLASS_ATTRIBUTE and m.value in raising]  # fmt: skip
    names = [m.name for m in bound] + [n for n in raising if not n.startswith("_")]
    line = bound[0].line if bound else next(iter(raising.values())).line
    return Definition(qualname=f"{owner.qualname} (methods that raise)", name=owner.name,
                      kind=Kind.CLASS_ATTRIBUTE, module=owner.module, path=owner.path, line=line,
                      end_line=max((m.end_line for m in bound), default=line),
                      value=repr(tuple(dict.fromkeys(names))))  # fmt: skip


def _sites(index: CodeIndex) -> list[CaseRaise]:
    """Every ``raise`` of a class with a message in the tree's functions (read once per index)."""
    if index not in _SITES:
        found: list[CaseRaise] = []
        for d in index:
            if d.kind in _CALLABLE and (node := def_node(index, d)) is not None:
                walker = _Walker(index, d, 0, ())
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Raise):
                        walker._raise(sub)
                found += [r for r in walker.found if r.message]
        _SITES[index] = found
    return _SITES[index]


def judge_raise(checker: Checker, raised: CaseRaise) -> None:
    """The answer must name the exception the case ends in; it is then supported at its raise."""
    if re.search(rf"(?<![\w.]){re.escape(raised.name)}\b", checker.answer):
        checker.support(f"{raised.owner} raises {raised.name} for this case",
                        (raised.path, raised.line))  # fmt: skip
        return
    chain = f" through {' -> '.join(raised.via)}" if raised.via else ""
    checker.problems.append(
        f"the question's case ({', '.join(raised.shared)}) ends at {raised.path}:{raised.line}"
        f"{chain}: raise {raised.name}({raised.message[:100]!r}); the answer does not name "
        f"{raised.name}"
    )


def raises_reached(
    index: CodeIndex, d: Definition, node: ast.AST, values: dict[str, object], depth: int,
    via: tuple[str, ...] = (),
) -> list[CaseRaise]:  # fmt: skip
    """Every ``raise`` of a class reached from ``d``'s body under ``values``, ``depth`` calls deep."""
    walker = _Walker(index, d, depth, via)
    walker.block(getattr(node, "body", []), dict(values))
    return walker.found


class _Walker:
    """Walks one function's statements, pruning the branches its known values rule out."""

    def __init__(self, index: CodeIndex, d: Definition, depth: int, via: tuple[str, ...]):
        self.index, self.d, self.depth, self.via = index, d, depth, via
        self.found: list[CaseRaise] = []
        self.texts: dict[str, str] = {}  # msg = "..." before raise X(msg): the message's words

    def block(self, stmts: list[ast.stmt], env: dict[str, object]) -> bool:
        """Walk ``stmts``; False when they always end in a return or raise (nothing runs after)."""
        for stmt in stmts:
            if not self.stmt(stmt, env):
                return False
        return True

    def stmt(self, s: ast.stmt, env: dict[str, object]) -> bool:
        if isinstance(s, ast.Raise):
            self._calls(s.exc, env)
            self._raise(s)
            return False
        if isinstance(s, ast.Return):
            self._calls(s.value, env)
            return False
        if isinstance(s, ast.If):
            self._calls(s.test, env)
            taken = evaluate(s.test, env)
            if taken is True:
                return self.block(s.body, env)
            if taken is False:
                return self.block(s.orelse, env)
            return self.block(s.body, dict(env)) | self.block(s.orelse, dict(env))
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return True
        if isinstance(s, ast.Assign) and [type(t) for t in s.targets] == [ast.Name]:
            self.texts[s.targets[0].id] = _strings(s.value)  # type: ignore[attr-defined]
        for target in _assigned(s):
            env.pop(target, None)  # rebound: no longer the value the question gave
        bodies = [getattr(s, f, None) for f in ("body", "orelse", "finalbody")]
        handlers = [h.body for h in getattr(s, "handlers", [])]
        if any(isinstance(b, list) for b in bodies):
            for expr in _header_exprs(s):
                self._calls(expr, env)
            for b in [*bodies, *handlers]:
                if isinstance(b, list):
                    self.block(b, dict(env))
            return True  # a loop, with or try may run its body or not: what follows can run
        self._calls(s, env)
        return True

    def _raise(self, s: ast.Raise) -> None:
        exc = s.exc.func if isinstance(s.exc, ast.Call) else s.exc
        name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", None)
        if not name or not name[:1].isupper():
            return  # ``raise`` alone, or a variable: not a class the answer can name
        args = s.exc.args if isinstance(s.exc, ast.Call) else []
        message = " ".join(
            self.texts.get(a.id, "") if isinstance(a, ast.Name) else _strings(a) for a in args
        ).strip()
        self.found.append(
            CaseRaise(self.d.path, s.lineno, name, message, self.d.qualname, self.via)
        )

    def _calls(self, node: ast.AST | None, env: dict[str, object]) -> None:
        if node is None or self.depth <= 0:
            return
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            callee = self._callee(call.func)
            if callee is None:
                continue
            inner = def_node(self.index, callee)
            if inner is None:
                continue
            bound = _bind(callee, call, env)
            self.found += raises_reached(self.index, callee, inner, bound, self.depth - 1,
                                         (*self.via, f"{callee.qualname}()"))  # fmt: skip

    def _callee(self, func: ast.expr) -> Definition | None:
        """The function a call reaches: ``f(...)`` in the tree, or ``self.m(...)`` of this class."""
        if isinstance(func, ast.Name):
            name = func.id
            found = [d for d in lookup(self.index, name) if d.kind is Kind.FUNCTION]
        elif isinstance(func, ast.Attribute) and getattr(func.value, "id", None) in ("self", "cls"):
            owner = self.d.qualname.rpartition(".")[0]
            found = [d for d in lookup(self.index, f"{owner}.{func.attr}") if d.kind is Kind.METHOD]
        else:
            return None
        found.sort(key=lambda d: d.path != self.d.path)
        return found[0] if found and found[0] != self.d else None


def _bind(callee: Definition, call: ast.Call, env: dict[str, object]) -> dict[str, object]:
    """The callee's parameters the call gives a literal (or a known value of the caller's)."""
    names = [p.name for p in callee.parameters if p.name not in ("self", "cls")]

    def known(a: ast.expr) -> tuple[bool, object]:
        if isinstance(a, ast.Constant):
            return True, a.value
        if isinstance(a, ast.Name) and a.id in env:
            return True, env[a.id]
        return False, None

    out: dict[str, object] = {}
    for name, arg in zip(names, call.args, strict=False):
        ok, value = known(arg)
        if ok:
            out[name] = value
    for kw in call.keywords:
        ok, value = known(kw.value)
        if kw.arg and ok:
            out[kw.arg] = value
    return out


def _start_values(func: Definition, question: str) -> dict[str, object]:
    """The question's literal arguments, and the literal defaults of the parameters it leaves."""
    values = literal_values(question)
    words = set(re.findall(r"[a-z_]+", question.lower()))
    for p in func.parameters:
        name = p.name.lstrip("*")
        if name in values or name in words or p.default is None:
            continue
        try:
            values[name] = ast.literal_eval(p.default)
        except (ValueError, SyntaxError):
            continue
    return values


def _assigned(s: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(s, ast.Assign):
        targets = s.targets
    elif isinstance(s, ast.AugAssign | ast.AnnAssign):
        targets = [s.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _header_exprs(s: ast.stmt) -> list[ast.expr]:
    """The expressions of a compound statement's header (a loop's iterable, a with's items)."""
    if isinstance(s, ast.For | ast.AsyncFor):
        return [s.iter]
    if isinstance(s, ast.While):
        return [s.test]
    if isinstance(s, ast.With | ast.AsyncWith):
        return [i.context_expr for i in s.items]
    return []


def _strings(node: ast.AST) -> str:
    """The string literal parts of an argument (f-strings' constant parts too)."""
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def _spaced(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")


def _stem(word: str) -> str:
    """``ended``, ``ends`` -> ``end``; ``statement`` -> ``state``: a suffix off, five letters."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:5]


def _stems(text: str, common: set[str] = _COMMON) -> set[str]:
    words = re.findall(r"[a-z]{4,}", _spaced(text).lower())
    return {_stem(w) for w in words if w not in common}


def _case_words(question: str, func: Definition) -> set[str]:
    """The question's words that can describe its case: not the subject's own name."""
    # code names (the subject, not the case); a word ending a sentence ("timestamp.") is none
    plain = re.sub(r"[\w.]*(?:_|\.(?=\w))[\w.]*\(?\)?", " ", question)
    named = _stems(f"{func.qualname} {func.path.replace('/', ' ').removesuffix('.py')}")
    return _stems(plain) - named
