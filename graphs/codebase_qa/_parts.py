"""The checks of the claims a question asks for by name: defined, value, base, raises, behaviour.

Each check records support (the citation that bears the claim out) or a problem that says what
the code says instead; see :mod:`tierflow.graphs.codebase_qa.claims` for what each claim means.
"""

from __future__ import annotations

import re
from pathlib import Path

from tierflow.graphs.codebase_qa._branches import case_branch, outcomes, wrong_branch
from tierflow.graphs.codebase_qa._checker import Checker
from tierflow.graphs.codebase_qa._questions import CODE_WORD, STOP_WORDS
from tierflow.graphs.codebase_qa._tree import (
    Cite,
    class_bases,
    defines,
    sets,
    span,
    statement_end,
)
from tierflow.graphs.codebase_qa._values import names_in, rhs, stated_values, states

__all__ = ["ClaimChecker"]

_BUILTIN_BASES = {"object", "Exception", "BaseException", "IOError", "OSError", "ValueError",
                  "TypeError", "RuntimeError", "KeyError", "dict", "list", "Warning"}  # fmt: skip


class ClaimChecker(Checker):
    """A :class:`~._checker.Checker` that also judges the claims a question asks for by name."""

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
        self.defined_at.append(place)

    def _pick(self, found: list[Cite]) -> Cite | None:
        """The definition the answer points at: in the file it names, or the only one cited."""
        for pool in (self.named_files, self.cited_files()):
            inside = [c for c in found if c[0] in pool]
            if len(inside) == 1 or (inside and pool is self.named_files):
                return inside[0]
        return None  # the answer points nowhere near a definition: not for us to guess

    def value(self, name: str) -> None:
        stated = stated_values(self.answer, self.question)
        setters = [c for c in self.cites if (t := self.tree.text(c)) and rhs(t, name)]
        if not setters:
            owner_files = [*self.named_files, *self.cited_files()]
            setters = self.tree.find(sets(name), owner_files)[:5]
        if not setters:
            self.problems.append(f"no line of the tree sets {name}")
            return
        exprs = []
        for cite in setters:
            expr = rhs(self.tree.text(cite) or "", name)
            if expr is None:
                continue
            exprs.append((cite, expr))
            if states(self.answer, expr):
                return self.support(f"{name} = {expr}", cite)
            # A constant may be answered with the constant's own value.
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", expr) and expr not in ("True", "False"):
                inner = expr.split(".")[-1]
                for deeper in self.tree.find(defines(inner), [cite[0]])[:3]:
                    value = rhs(self.tree.text(deeper) or "", inner)
                    if value and states(self.answer, value):
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

    def bases(self, name: str, at: Cite | None = None) -> None:
        """The class statement's bases, all named; ``at``: that class's line, when known."""
        cited, found = self.definition(name)
        if at is not None and cited != at:  # two classes of that name: the one asked about
            cited, found = (at if at in self.cites else None), [at]
        place = cited or self._pick([c for c in found if class_bases(self.tree.text(c) or "", name)
                                     is not None])  # fmt: skip
        if place is None:
            where = "; ".join(f"{p}:{n}" for p, n in found[:3]) or "nowhere in the tree"
            self.problems.append(f"no cited line is the class statement of {name} ({where})")
            return
        bases = class_bases(self.tree.text(place) or "", name)
        if bases is None:
            self.problems.append(f"{place[0]}:{place[1]} is not the class statement of {name}")
            return
        # A generic base (``PromptBase[int]``) is named by its class: ``PromptBase``; the names
        # in its brackets (``CallbackDict[str, Any]``'s ``Any``) may be written with it.
        args = [a for b in bases for a in re.findall(r"[A-Za-z_]\w*", b[b.find("[") :]) if "[" in b]
        bases = [re.sub(r"\[.*\]$", "", b) for b in bases]
        known = bases + args + [a for b in bases for a in self._ancestors(b, 3)]
        claimed = {
            w
            for w in names_in(self.answer)
            if w != name
            # "The base classes ...": a capitalised word is a class only when it is not English
            and (
                w in known
                or w in _BUILTIN_BASES
                or re.match(r"[A-Z]\w*[a-z]", w)
                and w.lower() not in STOP_WORDS
            )
            and w not in names_in(self.question)
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
            for base in class_bases(self.tree.text(cite) or "", name) or []:
                out += [base, *self._ancestors(base, depth - 1)]
        return out

    def _body(self, name: str) -> tuple[Cite, tuple[int, int]] | None:
        """The definition of ``name`` and its lines (the longest one: overloads are stubs).

        None, with the problem recorded, when the tree defines no such name.
        """
        cited, found = self.definition(name.split(".")[-1])
        if cited:
            found = [cited, *self.tree.find(defines(name.split(".")[-1]), [cited[0]])]
        place = cited or self._pick(found) or (found[0] if found else None)
        if place is None:
            self.problems.append(f"{name} is not defined anywhere in the tree")
            return None
        same = [c for c in found if c[0] == place[0]] or [place]
        spans = {c: span(self.tree.lines(c[0]) or [], c[1]) for c in same}
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
            if (m := re.search(r"\braise\s+(" + CODE_WORD + ")", lines[n - 1]))
        }
        claimed = [w for w in names_in(self.answer) if w in raised]
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
        proper = body_proper(lines, first, last) or list(range(first, last + 1))
        # The body's own words: not the def/class line (its name and bases) nor its docstring.
        text = " ".join(lines[n - 1] for n in proper)
        vocab = _words(text)
        words = {
            w
            for w in re.findall(r"[a-z]{3,}", self.answer.lower().replace("_", " "))
            if w not in STOP_WORDS and w not in self.question.lower()
        }
        used = {w for w in words if w in vocab or w.rstrip("s") in vocab}
        if len(used) < min(2, len(words)) or not words:
            self.problems.append(
                f"the answer does not say what {name} does: its body ({path}:{first}-{last}) is "
                f"about {', '.join(sorted(vocab & salient(text.lower()))[:8]) or 'other things'}"
            )
            return
        inside = [c for c in self.cites if c[0] == path and c[1] in proper]
        # Cited elsewhere (the def line, say): the body line that says most of what it does.
        best = max(proper, key=lambda n: (len(used & _words(lines[n - 1])), -n))
        cited = inside or [(path, best)]
        cite = cited[0]
        branches = [wrong_branch(lines, first, c[1], self.question) for c in cited]
        if all(branches) and branches[0]:  # every cited line is in a branch the case rules out
            (at, header), n = branches[0], cite[1]
            handle = outcomes(lines, proper, first, self.question)
            where = ", ".join(f"{path}:{m}: {lines[m - 1].strip()}" for m in handle[:3])
            self.problems.append(
                f"{path}:{n} is under `{header}` ({path}:{at}), which the question's case does "
                f"not take; the lines that can handle it: {where or 'none found'}"
            )
            return
        case = case_branch(lines, proper, self.question)
        if case is not None and not any(c[1] in case for c in cited):
            shown = "; ".join(f"{path}:{m}: {lines[m - 1].strip()}" for m in list(case)[:3])
            self.problems.append(
                f"the question's case is decided at {shown}; the answer cites "
                f"{path}:{cite[1]}, which handles another input"
            )
            return
        wrong = self._other_exception(path, cited)
        if wrong:
            self.problems.append(wrong)
            return
        self.support(f"{name} does what the answer says", cite)

    def _other_exception(self, path: str, cited: list[Cite]) -> str | None:
        """Why an exception the answer names is not the one the cited ``raise`` raises, or None."""
        named = {
            w
            for w in names_in(self.answer)
            if re.fullmatch(r"[A-Z]\w*(Error|Exception|Warning)", w)
        }
        if not named:
            return None
        code = " ".join(self._enclosing(path, n) for _, n in cited)
        raised = list(
            dict.fromkeys(m.split(".")[-1] for m in re.findall(r"\braise\s+([\w.]+)", code))
        )
        missing = sorted(w for w in named if not re.search(rf"\b{w}\b", code))
        if not missing or not raised:
            return None
        return (f"the answer says {', '.join(missing)}, but the cited code ({path}:{cited[0][1]}) "
                f"raises {', '.join(raised)}")  # fmt: skip

    def _enclosing(self, path: str, line: int) -> str:
        """The whole statement ``line`` is part of (a string inside ``raise X(...)``: the raise)."""
        lines = self.tree.lines(path) or []
        # the earliest statement start above ``line`` whose statement runs on over it
        starts = [k for k in range(line - 1, max(0, line - 7), -1)
                  if statement_end(lines, k) >= line]  # fmt: skip
        return self.tree.text((path, min(starts, default=line))) or ""

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
            return bool(self.first(sets(last)) or self.tree.find(sets(last))[:1])
        if part == "base":
            return bool(self.tree.find(re.compile(rf"^\s*class\s+{re.escape(last)}\b"))[:1])
        if part in ("defined", "raises", "behaviour"):
            return bool(self.definition(last)[1])
        return True


def _words(code: str) -> set[str]:
    """The words of code, camelCase split, each also without a plural ``s``."""
    low = re.sub(r"([a-z])([A-Z])", r"\1 \2", code).lower()
    found = set(re.findall(r"[a-z]{3,}", low))
    return found | {w.rstrip("s") for w in found}


def body_proper(lines: list[str], first: int, last: int) -> list[int]:
    """The lines of a def/class block after its header statement and docstring."""
    n = first
    while n < last and not lines[n - 1].split("#")[0].rstrip().endswith(":"):
        n += 1
    rest = [m for m in range(n + 1, last + 1) if lines[m - 1].strip()]
    if rest and lines[rest[0] - 1].strip().lstrip("rRuUbB")[:3] in ('"""', "'''"):
        quote = '"""' if '"""' in lines[rest[0] - 1] else "'''"
        opening = lines[rest[0] - 1].strip()
        end = rest[0]
        if opening.count(quote) < 2:
            while end < last and quote not in lines[end]:
                end += 1
            end += 1
        rest = [m for m in rest if m > end]
    return [m for m in rest if not lines[m - 1].strip().startswith("#")]


def salient(text: str) -> set[str]:
    """The words of ``text`` worth naming (four letters or more, not stop words)."""
    return {w for w in re.findall(r"[a-z]{4,}", text) if w not in STOP_WORDS}
