"""The claims an answer about a source tree makes, each checked against the lines it cites.

A cited line that exists and mentions the subject proves little: a small model cites the line
that holds a default and states another value. So the question decides which claims the answer
must make (where a name is defined, what value it has, what its base classes are, what it
raises, what it does) and each claim must agree with the code:

- *defined*: a cited line defines the name (``def``/``class``/assignment), in the file the
  answer names, at the line the answer names;
- *value*: a cited line sets the name, and the answer states that value (or its evident
  equivalent: ``10 * 1024`` is 10240, ``True`` is true; a value that is itself a constant may
  be given as the constant's own value);
- *base*: a cited ``class`` line lists every base the answer names (ancestors count);
- *raises*: a ``raise`` of the named exception inside the subject's body;
- *behaviour*: a citation inside the subject's body, and an answer that uses its words.

A claim whose citation misses but whose evidence is in the tree where the answer says it is
gets its citation moved there (:func:`check_answer` returns the repaired citations); citations
that support no claim are dropped. What is left is a list of problems, each saying what the
code says instead, for the answer to be repaired, or the run to end ``unverified``.

Example:
    >>> import pathlib, tempfile
    >>> root = tempfile.mkdtemp()
    >>> _ = pathlib.Path(root, "m.py").write_text("LIMIT = 30")
    >>> check_answer("What is the value of LIMIT?", "LIMIT is 20.", [("m.py", 1)], root).problems
    ['LIMIT is set to 30 at m.py:1, but the answer says 20']
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tierflow.graphs.codebase_qa.grounding import file_lines
from tierflow.tools import Sandbox, SandboxError

__all__ = ["Verdict", "question_parts", "subject_of", "subjects_of", "check_answer", "evidence"]

Cite = tuple[str, int]

_PARTS = {
    "defined": r"\bwhere is\b.*\b(defined|declared|implemented)\b|\b(defined|declared)\b|^where is\b",
    "located": r"\bwhich (file|module)\b|\bwhere\b",
    "base": r"\bbase class|\binherit|\bextends?\b|\bsubclass|\bderives?\b|\bparent class",
    "raises": r"\braises?\b|\bthrows?\b",
    "value": r"\bvalue (of|does|do)\b|\bwhat value\b|\bdefault\b|\bset to\b|\bhow (many|much|long)\b"
    r"|\b(size|limit)\b",
    "behaviour": r"\bwhat does\b.*\b(do|compute|calculate|return)\b|\bhow does\b",
}
_CODE_WORD = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_STOP = set(
    "the a an of in on to is are was be it its this that which what where when how does do did "
    "for from with by as and or not no yes new file line class function method module value "
    "default set called defined named base exception return returns".split()
)
_YES_NO_OPENERS = {"does", "is", "are", "can", "do", "will", "should", "has", "have", "did"}
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}
_BUILTIN_BASES = {"object", "Exception", "BaseException", "IOError", "OSError", "ValueError",
                  "TypeError", "RuntimeError", "KeyError", "dict", "list", "Warning"}  # fmt: skip


@dataclass
class Verdict:
    """What the answer's claims came to: repaired citations and the problems left."""

    citations: list[Cite]
    problems: list[str] = field(default_factory=list)
    supported: list[str] = field(default_factory=list)


def question_parts(question: str) -> list[str]:
    """Which claims the question asks for, e.g. ``['defined', 'base']``."""
    q = question.lower()
    parts = [name for name, pattern in _PARTS.items() if re.search(pattern, q)]
    if "defined" in parts and "located" in parts:
        parts.remove("located")
    if _is_yes_no(question):
        parts = ["yes_no"]
    return parts


def _is_yes_no(question: str) -> bool:
    q = question.strip().lower()
    first = re.match(r"(?:[^.?!]*[,:;]\s*)?(\w+)", q)
    opens = first is not None and first.group(1) in _YES_NO_OPENERS
    return opens or "true or false" in q or "yes or no" in q


def subjects_of(question: str) -> list[str]:
    """Names the question is about, most specific first.

    Backticked names, then dotted or snake_case ones, CamelCase, and Capitalized words that are
    not the first word; module paths (``langgraph.managed``) come last.
    """
    ranked: list[tuple[int, int, str]] = []
    for i, tick in enumerate(re.findall(r"`([^`]+)`", question)):
        name = tick.strip().removesuffix("()")
        if re.fullmatch(_CODE_WORD, name):
            module = "." in name and name == name.lower() and "_" not in name
            ranked.append((3 if module else 0, i, name))
        else:  # code such as `def fs_tools` or `backoff_factor ** (attempts - 1)`
            inner = [w for w in re.findall(_CODE_WORD, name) if not keyword.iskeyword(w)]
            ranked += [(1, i, w) for w in inner if "_" in w or re.search(r"[a-z][A-Z]", w)]
    words = re.findall(_CODE_WORD, re.sub(r"`[^`]*`", " ", question))
    for i, word in enumerate(words):
        word = word.rstrip(".")
        if "." in word and word == word.lower() and "_" not in word:
            ranked.append((3, i, word))  # a module path, e.g. langgraph.managed
        elif "." in word or "_" in word.strip("_"):
            ranked.append((1, i, word))
        elif re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]|^[A-Z]{2,}", word):
            ranked.append((2, i, word))
        elif i > 0 and word[0].isupper() and word.lower() not in _STOP:
            ranked.append((3, i, word))
    return list(dict.fromkeys(name for _, _, name in sorted(ranked)))


def subject_of(question: str) -> str | None:
    """The name the question is most likely about (see :func:`subjects_of`)."""
    names = subjects_of(question)
    return names[0] if names else None


# --- reading the tree ------------------------------------------------------------------------


def _statement(lines: list[str], line: int) -> str:
    """The logical statement that starts at ``line`` (brackets balanced, at most 8 lines)."""
    out, depth = [], 0
    for text in lines[line - 1 : line + 7]:
        out.append(text)
        depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
        if depth <= 0:
            break
    return " ".join(t.strip() for t in out)


def _span(lines: list[str], line: int) -> tuple[int, int]:
    """First and last line of the block a ``def``/``class`` line opens (by indentation)."""
    indent = len(lines[line - 1]) - len(lines[line - 1].lstrip())
    last = line
    for n in range(line + 1, len(lines) + 1):
        text = lines[n - 1]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            if not text.lstrip().startswith((")", "]", "}")):
                break
        last = n
    return line, last


def _defines(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b"
        rf"|^\s*(?:self\.)?{re.escape(name)}\s*(?::[^=]+)?=(?!=)"
    )


def _sets(name: str) -> re.Pattern[str]:
    """``name = v``, ``self.name = v``, ``name: T = v`` or a keyword default ``name=v``."""
    return re.compile(rf"(?:^|[\s(,.])(?:self\.)?{re.escape(name)}\s*(?::[^=()]*?)?=(?!=)\s*(.+)")


class _Tree:
    """Cached reads of a sandboxed source tree."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: dict[str, list[str] | None] = {}
        self._all: list[str] | None = None

    def lines(self, path: str) -> list[str] | None:
        path = path.removeprefix("./")
        if path not in self._files:
            self._files[path] = file_lines(self.root, path)
        return self._files[path]

    def text(self, cite: Cite) -> str | None:
        lines = self.lines(cite[0])
        if lines is None or not 0 < cite[1] <= len(lines):
            return None
        return _statement(lines, cite[1])

    def files(self) -> list[str]:
        if self._all is None:
            try:
                base = Sandbox(Path(self.root)).resolve(".")
            except (SandboxError, OSError, ValueError):
                base = None
            found = sorted(
                str(p.relative_to(base))
                for p in (base.rglob("*.py") if base else [])
                if not any(part.startswith(".") for part in p.relative_to(base).parts)
            )
            self._all = found[:2000]
        return self._all

    def find(self, pattern: re.Pattern[str], prefer: Iterable[str] = ()) -> list[Cite]:
        """Lines matching ``pattern``: in the ``prefer`` files first, then the whole tree."""
        ordered = list(dict.fromkeys([*prefer, *self.files()]))
        hits = []
        for path in ordered:
            for n, text in enumerate(self.lines(path) or [], start=1):
                if pattern.search(text):
                    hits.append((path, n))
        return hits


# --- values ----------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    text = text.strip().rstrip(",;").lower()
    if text in _WORDS:
        return float(_WORDS[text])
    try:
        node = ast.parse(text.replace("_", ""), mode="eval").body
        return float(_arith(node))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return None


def _arith(node: ast.AST) -> float:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow)):
        left, right = _arith(node.left), _arith(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Pow) and right > 64:
            raise ValueError("too large")
        return left * right if isinstance(node.op, ast.Mult) else left**right
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    raise ValueError("not arithmetic")


def _rhs(statement: str, name: str) -> str | None:
    """What ``statement`` sets ``name`` to (up to the next top-level comma or the end)."""
    m = _sets(name).search(statement)
    if not m:
        return None
    expr, depth, out = m.group(1), 0, []
    for ch in expr:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif ch in ",#" and depth == 0:
            break
        out.append(ch)
    return "".join(out).strip().rstrip(":").strip() or None


def _states(answer: str, expr: str) -> bool:
    """Whether ``answer`` states the value ``expr`` (literally or as an evident equivalent)."""
    plain = expr.strip().strip("\"'")
    if not plain:
        return False
    low = answer.lower()
    if re.search(rf"(?<![\w.]){re.escape(plain.lower())}(?![\w])", low):
        return True
    want = _number(plain)
    if want is not None:
        for token in re.findall(r"-?\d[\d_]*(?:\.\d+)?(?:\s*[*+]\s*\d+)*|\b[a-z]+\b", low):
            if _number(token) == want:
                return True
    if plain in ("True", "False", "None"):
        return plain.lower() in re.findall(r"\b(true|false|none)\b", low)
    # sys.intern("__end__"), Literal[...] = "v2": the value is the string literal inside.
    quoted = re.findall(r"\"([^\"]+)\"|'([^']+)'", expr)
    return any(q and re.search(rf"(?<![\w]){re.escape(q.lower())}(?![\w])", low)
               for pair in quoted for q in pair)  # fmt: skip


def _stated_values(answer: str, question: str) -> list[str]:
    """Literal values the answer states that the question does not already contain."""
    found = re.findall(r"-?\d[\d_]*(?:\.\d+)?|\"[^\"]*\"|'[^']*'|\b(?:True|False|None)\b", answer)
    found += re.findall(r"`([^`]+)`", answer)
    return [v for v in found if v not in question]


# --- the checks ------------------------------------------------------------------------------


def _names_in(text: str) -> set[str]:
    return {w.split(".")[-1] for w in re.findall(_CODE_WORD, text)}


def _bases(statement: str, name: str) -> list[str] | None:
    m = re.search(rf"\bclass\s+{re.escape(name)}\s*\(([^)]*)\)", statement)
    if not m:
        return [] if re.search(rf"\bclass\s+{re.escape(name)}\s*:", statement) else None
    parts = [p.strip() for p in m.group(1).split(",") if p.strip() and "=" not in p]
    return [p.split(".")[-1] for p in parts]


class _Checker:
    def __init__(self, question: str, answer: str, cites: Sequence[Cite], root: str) -> None:
        self.question, self.answer = question, answer
        self.tree = _Tree(root)
        self.cites = [(p.removeprefix("./"), n) for p, n in cites]
        self.used: list[Cite] = []
        self.problems: list[str] = []
        self.supported: list[str] = []
        self.named_files = [f for f in self.tree.files() if _names_file(answer, f)]

    def cited_files(self) -> list[str]:
        return list(dict.fromkeys(p for p, _ in self.cites))

    def support(self, claim: str, cite: Cite) -> None:
        self.supported.append(claim)
        if cite not in self.used:
            self.used.append(cite)

    def first(self, test: re.Pattern[str]) -> Cite | None:
        for cite in self.cites:
            text = self.tree.text(cite)
            if text is not None and test.search(text):
                return cite
        return None

    def definition(self, name: str) -> tuple[Cite | None, list[Cite]]:
        """A cited line defining ``name``, and every definition in the tree (cited files first)."""
        pattern = _defines(name)
        cited = self.first(pattern)
        prefer = [*self.named_files, *self.cited_files()]
        return cited, ([cited] if cited else self.tree.find(pattern, prefer))

    # each check records support or a problem

    def defined(self, name: str) -> None:
        cited, found = self.definition(name)
        if not found:
            self.problems.append(f"{name} is not defined anywhere in the tree")
            return
        place = cited or self._pick(found)
        if place is None:
            where = "; ".join(f"{p}:{n}" for p, n in found[:3])
            self.problems.append(f"no cited line defines {name}; it is defined at {where}")
            return
        if self.named_files and place[0] not in self.named_files:
            self.problems.append(
                f"the answer names {', '.join(self.named_files)}, but {name} is defined at "
                f"{place[0]}:{place[1]}"
            )
            return
        lines_said = {int(n) for n in re.findall(r"\blines?\s+(\d+)", self.answer)}
        if lines_said and place[1] not in lines_said:
            self.problems.append(
                f"the answer says line {', '.join(map(str, sorted(lines_said)))}, but {name} is "
                f"defined at {place[0]}:{place[1]}"
            )
            return
        self.support(f"{name} is defined at {place[0]}:{place[1]}", place)

    def _pick(self, found: list[Cite]) -> Cite | None:
        """The definition the answer points at: in the file it names, or the only one cited."""
        for pool in (self.named_files, self.cited_files()):
            inside = [c for c in found if c[0] in pool]
            if len(inside) == 1 or (inside and pool is self.named_files):
                return inside[0]
        return None  # the answer points nowhere near a definition: not for us to guess

    def value(self, name: str) -> None:
        stated = _stated_values(self.answer, self.question)
        setters = [c for c in self.cites if (t := self.tree.text(c)) and _rhs(t, name)]
        if not setters:
            owner_files = [*self.named_files, *self.cited_files()]
            setters = self.tree.find(_sets(name), owner_files)[:5]
        if not setters:
            self.problems.append(f"no line of the tree sets {name}")
            return
        exprs = []
        for cite in setters:
            expr = _rhs(self.tree.text(cite) or "", name)
            if expr is None:
                continue
            exprs.append((cite, expr))
            if _states(self.answer, expr):
                return self.support(f"{name} = {expr}", cite)
            # A constant may be answered with the constant's own value.
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", expr) and expr not in ("True", "False"):
                inner = expr.split(".")[-1]
                for deeper in self.tree.find(_defines(inner), [cite[0]])[:3]:
                    value = _rhs(self.tree.text(deeper) or "", inner)
                    if value and _states(self.answer, value):
                        self.support(f"{name} = {expr} = {value}", cite)
                        return self.support(f"{inner} = {value}", deeper)
        if not exprs:
            self.problems.append(f"no cited line sets {name}")
            return
        cite, expr = exprs[0]
        said = ", ".join(stated[:3]) or "no value"
        self.problems.append(
            f"{name} is set to {expr} at {cite[0]}:{cite[1]}, but the answer says {said}"
        )

    def bases(self, name: str) -> None:
        cited, found = self.definition(name)
        place = cited or self._pick([c for c in found if _bases(self.tree.text(c) or "", name)
                                     is not None])  # fmt: skip
        if place is None:
            where = "; ".join(f"{p}:{n}" for p, n in found[:3]) or "nowhere in the tree"
            self.problems.append(f"no cited line is the class statement of {name} ({where})")
            return
        bases = _bases(self.tree.text(place) or "", name)
        if bases is None:
            self.problems.append(f"{place[0]}:{place[1]} is not the class statement of {name}")
            return
        known = bases + [a for b in bases for a in self._ancestors(b, 3)]
        claimed = {
            w
            for w in _names_in(self.answer)
            if w != name
            and (w in known or w in _BUILTIN_BASES or re.match(r"[A-Z]\w*[a-z]", w))
            and w not in _names_in(self.question)
            and not any(w == Path(f).stem for f in self.named_files)
        }
        wrong = sorted(c for c in claimed if c not in known)
        left_out = [b for b in bases if b not in claimed]
        if wrong or left_out or not bases and claimed - {"object"}:
            shown = ", ".join(bases) or "none (object)"
            said = ", ".join(sorted(claimed)) or "none"
            self.problems.append(
                f"{name}'s bases at {place[0]}:{place[1]} are {shown}, but the answer names {said}"
            )
            return
        self.support(f"{name}({', '.join(bases)})", place)

    def _ancestors(self, name: str, depth: int) -> list[str]:
        if depth == 0:
            return []
        out = []
        for cite in self.tree.find(re.compile(rf"^\s*class\s+{re.escape(name)}\b"))[:2]:
            for base in _bases(self.tree.text(cite) or "", name) or []:
                out += [base, *self._ancestors(base, depth - 1)]
        return out

    def _body(self, name: str) -> tuple[Cite, tuple[int, int]] | None:
        """The definition of ``name`` and its lines (the longest one: overloads are stubs).

        None, with the problem recorded, when the tree defines no such name.
        """
        cited, found = self.definition(name.split(".")[-1])
        if cited:
            found = [cited, *self.tree.find(_defines(name.split(".")[-1]), [cited[0]])]
        place = cited or self._pick(found) or (found[0] if found else None)
        if place is None:
            self.problems.append(f"{name} is not defined anywhere in the tree")
            return None
        same = [c for c in found if c[0] == place[0]] or [place]
        spans = {c: _span(self.tree.lines(c[0]) or [], c[1]) for c in same}
        best = max(spans, key=lambda c: spans[c][1] - spans[c][0])
        return best, spans[best]

    def raises(self, name: str) -> None:
        body = self._body(name)
        if body is None:
            return
        (path, _), (first, last) = body
        lines = self.tree.lines(path) or []
        raised = {
            m.group(1).split(".")[-1]: n
            for n in range(first, last + 1)
            if (m := re.search(r"\braise\s+(" + _CODE_WORD + ")", lines[n - 1]))
        }
        claimed = [w for w in _names_in(self.answer) if w in raised]
        if not raised:
            return self.literals()  # it raises through a helper: the cited lines must say what
        if not claimed:
            shown = ", ".join(sorted(raised)) or "nothing"
            self.problems.append(f"{name} ({path}:{first}-{last}) raises {shown}; the answer names "
                                 "none of them")  # fmt: skip
            return
        self.support(f"{name} raises {claimed[0]}", (path, raised[claimed[0]]))

    def behaviour(self, name: str) -> None:
        body = self._body(name)
        if body is None:
            return
        (path, def_line), (first, last) = body
        lines = self.tree.lines(path) or []
        text = " ".join(lines[first - 1 : last]).lower()
        vocab = set(re.findall(r"[a-z]{3,}", re.sub(r"([a-z])([A-Z])", r"\1 \2", text)))
        vocab |= {w.rstrip("s") for w in vocab}
        words = {
            w
            for w in re.findall(r"[a-z]{3,}", self.answer.lower().replace("_", " "))
            if w not in _STOP and w not in self.question.lower()
        }
        used = {w for w in words if w in vocab or w.rstrip("s") in vocab}
        if len(used) < min(2, len(words)) or not words:
            self.problems.append(
                f"the answer does not say what {name} does: its body ({path}:{first}-{last}) is "
                f"about {', '.join(sorted(vocab & _salient(text))[:8]) or 'other things'}"
            )
            return
        inside = [c for c in self.cites if c[0] == path and first <= c[1] <= last]
        self.support(f"{name} does what the answer says", inside[0] if inside else (path, def_line))

    def mentions(self, name: str) -> None:
        test = re.compile(rf"\b{re.escape(name.split('.')[-1])}\b")
        cite = self.first(test)
        if cite is None:
            self.problems.append(f"no cited line mentions {name}")
            return
        self.support(f"a cited line mentions {name}", cite)

    # -- claims any answer makes ----------------------------------------------------------------

    def applies(self, part: str, name: str) -> bool:
        """Whether the part-specific check can judge ``name`` (else the literal check does)."""
        last = name.split(".")[-1]
        if part == "value":
            return bool(self.first(_sets(last)) or self.tree.find(_sets(last))[:1])
        if part == "base":
            return bool(self.tree.find(re.compile(rf"^\s*class\s+{re.escape(last)}\b"))[:1])
        if part in ("defined", "raises", "behaviour"):
            return bool(self.definition(last)[1])
        return True

    def terms(self) -> list[str]:
        """What the answer asserts beyond the question: names and literal values."""
        asked = self.question.lower()
        paths = {Path(f).name for f in self.tree.files()} | set(self.tree.files())
        out = []
        for value in _stated_values(self.answer, self.question):
            if value.strip("\"'`") and value.strip("\"'`").lower() not in asked:
                out.append(value.strip("`"))
        for word in re.findall(_CODE_WORD, self.answer):
            code_like = "_" in word.strip("_") or re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]", word)
            if code_like and word.lower() not in asked and word not in paths and "/" not in word:
                out.append(word)
        for word in re.findall(r"\b[A-Z][a-z]+\w*\b", self.answer):
            if word.lower() not in asked and word.lower() not in _STOP and self._is_code(word):
                out.append(word)
        bare = self.answer.strip().strip(".`'\"")
        if len(bare.split()) <= 2 and bare and bare.lower() not in asked and "/" not in bare:
            out.append(bare)  # a bare value, e.g. "tools" or "async"
        lines_said = re.findall(r"\blines?\s+(\d+)", self.answer)
        return [t for t in dict.fromkeys(out) if t not in lines_said]

    def _is_code(self, word: str) -> bool:
        """A Capitalized word is a name when a cited line has it or the tree defines it."""
        if any(_in_text(word, self.tree.text(c) or "") for c in self.cites):
            return True
        return bool(self.tree.find(re.compile(rf"^\s*(class|def)\s+{word}\b"))[:1])

    def literals(self) -> None:
        """Each name or value the answer states must be in a cited line (citations may move)."""
        terms = self.terms()
        if not terms:
            return None if self.supported else self.mentions_any()
        for term in terms:
            cite = next((c for c in self.cites if _in_text(term, self.tree.text(c) or "")), None)
            if cite is None:
                cite = self._repair_literal(term)
            if cite is None:
                shown = (
                    "; ".join(
                        f"{p}:{n} reads {(self.tree.text((p, n)) or '')[:80]!r}"
                        for p, n in self.cites[:2]
                    )
                    or "nothing is cited"
                )
                self.problems.append(
                    f"the answer says {term}, but no cited line contains it ({shown})"
                )
            else:
                self.support(f"{term} is in {cite[0]}:{cite[1]}", cite)

    def _repair_literal(self, term: str) -> Cite | None:
        """A line of a cited (or named) file with ``term`` and one of the question's names."""
        names = [n.split(".")[-1] for n in subjects_of(self.question)]
        if not names:
            return None  # nothing ties another line to the question
        for path in dict.fromkeys([*self.cited_files(), *self.named_files]):
            for n, text in enumerate(self.tree.lines(path) or [], start=1):
                if _in_text(term, text) and any(_in_text(x, text) for x in names):
                    return (path, n)
        return None

    def located(self) -> None:
        """A "which file" answer: the file it names holds a cited line about the question."""
        names = [n.split(".")[-1] for n in subjects_of(self.question)]
        phrases = [t for t in re.findall(r"`([^`]+)`", self.question) if t not in names]
        wanted = [*phrases, *names]
        if not self.named_files:
            self.problems.append(
                "the question asks where, but the answer names no file of the tree"
            )
            return
        for path in self.named_files:
            for cite in [c for c in self.cites if c[0] == path] + [
                (path, n) for n in range(1, len(self.tree.lines(path) or []) + 1)
            ]:
                text = self.tree.text(cite) or ""
                if any(_in_text(w, text) for w in wanted) or not wanted:
                    return self.support(f"{path} is where the question points", cite)
        self.problems.append(
            f"{', '.join(self.named_files)} has no line with {', '.join(wanted[:3]) or 'the subject'}"
        )

    def yes_no(self) -> None:
        """A yes/no answer: which one is right is behaviour the cited lines cannot show alone."""
        said = re.findall(r"\b(yes|no|true|false)\b", self.answer.lower())
        if not said:
            self.problems.append(
                "the question asks yes or no (true or false); the answer says neither"
            )
            return
        self.problems.append(
            f"a yes/no answer ({said[0]}) cannot be checked against the cited lines; "
            "a reviewer must confirm it"
        )

    def mentions_any(self) -> None:
        names = [n.split(".")[-1] for n in subjects_of(self.question)]
        for cite in self.cites:
            text = self.tree.text(cite) or ""
            if any(_in_text(n, text) for n in names):
                return self.support("a cited line is about the question", cite)
        self.problems.append(
            f"no cited line mentions {', '.join(names[:3]) or 'what the question asks about'}"
        )


def _in_text(term: str, text: str) -> bool:
    """``term`` (a name, number or quoted value) is in ``text``, literally or as an equivalent."""
    plain = term.strip("\"'")
    if not plain:
        return False
    if re.search(rf"(?<![\w]){re.escape(plain)}(?![\w])", text):
        return True
    if "." in plain and re.search(rf"\b{re.escape(plain.split('.')[-1])}\b", text):
        return True
    want = _number(plain)
    if want is not None:
        return any(_number(tok) == want for tok in re.findall(r"-?\d[\d_]*(?:\.\d+)?", text))
    return False


def _names_file(answer: str, path: str) -> bool:
    """The answer names ``path``: in full, or by a file name that is not part of a longer one."""
    if re.search(rf"(?<![\w./]){re.escape(path)}\b", answer):
        return True
    return bool(re.search(rf"(?<![\w.]){re.escape(Path(path).name)}\b", answer)) and not any(
        m.group(0) != path and m.group(0).endswith("/" + Path(path).name)
        for m in re.finditer(r"[\w./]+\.py\b", answer)
    )


def _salient(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text) if w not in _STOP}


def check_answer(question: str, answer: str, citations: Sequence[Cite], root: str) -> Verdict:
    """Check the claims the question asks for; repair citations; say what is still wrong.

    Returns the citations to keep (moved to where a claim's evidence is, unsupported ones
    dropped; the originals when no claim holds) and the problems, empty when every claim holds.
    """
    checker = _Checker(question, answer, citations, root)
    missing = [
        f"{p}:{n} does not exist (copy path and line from the tool output)"
        for p, n in checker.cites
        if checker.tree.text((p, n)) is None
    ]
    checker.cites = [c for c in checker.cites if checker.tree.text(c) is not None]
    parts = question_parts(question) or ["literal"]
    names = subjects_of(question)
    specific = {
        "defined": checker.defined,
        "value": checker.value,
        "base": checker.bases,
        "raises": checker.raises,
        "behaviour": checker.behaviour,
    }
    for part in parts:
        if part in specific:
            # The first of the question's names the part's own check can judge, else the answer's
            # names and values must be in the cited lines.
            name = next((n for n in names if checker.applies(part, n)), None)
            if name is not None:
                specific[part](name if part in ("behaviour", "raises") else name.split(".")[-1])
            else:
                checker.literals()
        elif part == "located":
            checker.located()
        elif part == "yes_no":
            checker.yes_no()
        else:
            checker.literals()
    kept = checker.used or list(checker.cites)
    # A missing citation matters only while a claim is unsupported: otherwise it is dropped.
    problems = missing + checker.problems if checker.problems else []
    return Verdict(kept, problems, checker.supported)


def evidence(question: str, root: str, max_lines: int = 24) -> list[str]:
    """``path:line: code`` lines of the tree for the parts the question asks, found without a model.

    For each name the question mentions: where it is defined (the whole statement, so a class
    shows its bases), the lines that set it (defaults), and for a function what its body
    raises and returns. The answer writes from these instead of from memory.
    """
    tree, parts, out = _Tree(root), question_parts(question), []
    for name in subjects_of(question)[:3]:
        last = name.split(".")[-1]
        found = tree.find(_defines(last))[:3]
        if "value" in parts or not found:
            found += [c for c in tree.find(_sets(last))[:3] if c not in found]
        for cite in found:
            out.append(f"{cite[0]}:{cite[1]}: {tree.text(cite)}")
            lines = tree.lines(cite[0]) or []
            if re.match(r"\s*(async\s+)?def\s", lines[cite[1] - 1]):
                first, last_line = _span(lines, cite[1])
                for n in range(first + 1, min(last_line, first + 60) + 1):
                    if re.match(r"\s*(raise|return)\b", lines[n - 1]):
                        out.append(f"{cite[0]}:{n}: {lines[n - 1].strip()}")
    return list(dict.fromkeys(out))[:max_lines]
