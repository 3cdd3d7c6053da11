"""Each part of a question checked against the code index, not against the wording of lines.

- *default*/*value*: the default in the definition's signature or field (a parameter's own
  default; a constant's, field's or attribute's value); for "what does X become", the values the
  owner's body assigns to it. The answer must state it; a citation must be on its lines.
- *type*: every name of the annotation, and no other class (not the owner itself).
- *base*: every base in the class statement; any other class named must be an ancestor.
- *members*: member by member against the definition (parameters, the literal's items, fields,
  attributes) or its docstring; all of them when the definition enumerates them.
- *yes_no*: yes or no, citing code lines inside the deciding function's body.
- *location*: the file of the definition (re-exports followed, never an import site), citing the
  definition line.

A part whose subject the index does not define falls back to :class:`~._parts.ClaimChecker`'s
line-reading checks (which are also all there is for a tree without Python).
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._branches import case_branch, wrong_branch
from tierflow.graphs.codebase_qa._case_params import case_tests, judge_case
from tierflow.graphs.codebase_qa._errors import asks_error, named_error, record_error
from tierflow.graphs.codebase_qa._facts import (
    Target,
    body_lines,
    literal_constant,
    lookup,
    target_of,
    unset_of,
)
from tierflow.graphs.codebase_qa._members import MembersChecker
from tierflow.graphs.codebase_qa._outcomes import case_raise, judge_raise
from tierflow.graphs.codebase_qa._questions import PartKind, QuestionPart
from tierflow.graphs.codebase_qa._reads import judge_reads, read_values
from tierflow.graphs.codebase_qa._registered import also_spelled, is_package
from tierflow.graphs.codebase_qa._returns import built_values, concrete, names_call, other_default
from tierflow.graphs.codebase_qa._substitutes import UNSET, stated, substitute
from tierflow.graphs.codebase_qa._substitutes import problem as substitute_problem
from tierflow.graphs.codebase_qa._tree import Cite
from tierflow.graphs.codebase_qa._values import names_in, stated_values, states
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["IndexChecker", "names_tokens"]

_TYPING = {"t", "typing", "te", "typing_extensions", "os", "collections", "abc"}
_EQUIVALENT = {"optional": ("none", "optional"), "dict": ("dict", "mapping"),
               "list": ("list", "sequence"), "union": ()}  # fmt: skip


def names_tokens(annotation: str) -> list[str]:
    """The names an annotation is made of: ``t.Optional["Context"]`` -> Optional, Context."""
    words = re.findall(r"[A-Za-z_]\w*", annotation.replace('"', " ").replace("'", " "))
    return list(dict.fromkeys(w for w in words if w not in _TYPING))


class IndexChecker(MembersChecker):
    """A :class:`~._parts.ClaimChecker` that judges each :class:`QuestionPart` by the index."""

    def __init__(self, question: str, answer: str, cites: list[Cite], root: str,
                 index: CodeIndex) -> None:  # fmt: skip
        super().__init__(question, answer, cites, root)
        self.index = index

    # -- helpers --------------------------------------------------------------------------------

    def _body(self, name: str) -> tuple[Cite, tuple[int, int]] | None:
        """The definition of ``name`` by the index (the regex reading when it defines none)."""
        found = [d for d in lookup(self.index, name) if d.kind is not Kind.MODULE]
        if not found:
            return super()._body(name)
        cited = [d for d in found if self._cited_in(d.path, d.line, d.end_line)]
        d = (cited or found)[0]
        return (d.path, d.line), (d.line, d.end_line)

    def definition(self, name: str) -> tuple[Cite | None, list[Cite]]:
        """A cited definition line of ``name`` and every definition (never an import site)."""
        found = [d for d in lookup(self.index, name) if d.kind is not Kind.MODULE]
        found = [d for d in found if d.name == name.split(".")[-1]] or found
        if not found:
            return super().definition(name)
        places = [(d.path, d.line) for d in found]
        heads = {(d.path, n): (d.path, d.line) for d in found
                 for n in range(d.line - len(d.decorators), d.line + 1)}  # fmt: skip
        cited = next((heads[c] for c in self.cites if c in heads), None)
        return cited, ([cited] if cited else places)

    # -- one part -------------------------------------------------------------------------------

    def check_part(self, part: QuestionPart) -> None:
        """Judge one part; a problem found is prefixed with the part when there are several."""
        before, held = len(self.problems), len(self.supported)
        target = target_of(self.index, part)
        kind = part.kind
        if kind is PartKind.LOCATION:
            self._location(part)
        elif kind is PartKind.YES_NO:
            self.yes_no_part(part)
        elif target is None:
            self._fallback(part)
        elif kind is PartKind.BASE:
            self.bases(target.definition.name, (target.path, target.definition.line))
        elif kind in (PartKind.DEFAULT, PartKind.VALUE):
            self.value_of(part, target)
        elif kind is PartKind.TYPE:
            self.type_of(part, target)
        elif kind is PartKind.MEMBERS:
            self.members_of(target, also_spelled(self.index, part), part.text)
        elif (tests := case_tests(self.index, target.definition, part.text)) and judge_case(
            self, self.index, tests
        ):
            pass  # "what happens if I call it with a=..., b=...": the test of a and b decides
        elif (raised := case_raise(self.index, target.definition, part.case)) is not None:
            judge_raise(self, raised)  # the raise whose message speaks of the question's case
        elif asks_error(part.text) and (
            error := named_error(self.index, self.answer, target.definition, self.question)
        ):
            record_error(self, target.definition, *error)
        else:
            name = target.definition.qualname
            if re.search(r"\brais(?:e|es|ed)\b|\bthrow(?:s|n)?\b|\bexception\b", part.text, re.I):
                self.raises(name)
            else:
                self.behaviour(name)
        if part.of > 1 and len(self.problems) == before and self._headers_only(part, target, held):
            # A behaviour (or a value the index does not hold) supported only by the class or
            # def line an earlier part rests on says nothing of the body it asks about.
            self.problems.append(f"the answer does not answer it ({part.wants})")
        elif part.of > 1 and len(self.problems) == before and not self._own_support(held):
            # Nothing the answer says holds up this part on its own (at most what an earlier
            # part already claimed): it is unanswered, however well that part is supported.
            self.problems.append(f"the answer does not answer it ({part.wants})")
        if part.of > 1:
            self.problems[before:] = [f"{part.label}: {p}" for p in self.problems[before:]]

    def _headers_only(self, part: QuestionPart, target: Target | None, held: int) -> bool:
        """Whether the part's support is only ``class``/``def`` lines earlier parts rest on."""
        weak = part.kind is PartKind.BEHAVIOUR or (
            part.kind in (PartKind.VALUE, PartKind.DEFAULT)
            and (target is None or target.default is None)
        )
        own, earlier = self.support_cites[held:], self.support_cites[:held]
        return (
            weak
            and bool(own)
            and all(
                c in earlier and re.match(r"(async\s+)?(def|class)\s", self.tree.text(c) or "")
                for c in own
            )
        )

    def _own_support(self, held: int) -> bool:
        """Whether a claim supported since ``held`` is more than a term an earlier one holds."""
        earlier = " ".join(self.supported[:held])
        for claim in self.supported[held:]:
            term = claim.split(" is in ", 1)[0] if " is in " in claim else None
            if term is None or term not in earlier:
                return True
        return False

    def _fallback(self, part: QuestionPart) -> None:
        name = next((n for n in part.subjects if self.applies("value", n)), None)
        if part.kind in (PartKind.DEFAULT, PartKind.VALUE) and name:
            return self.value(name.split(".")[-1])
        if part.kind in (PartKind.DEFAULT, PartKind.VALUE):
            return self._stated_value(part)
        if (
            part.kind is PartKind.BEHAVIOUR
            and part.subject
            and self.applies("behaviour", part.subject)
        ):
            return self.behaviour(part.subject)
        self.literals()

    def _location(self, part: QuestionPart) -> None:
        defined = re.search(
            r"\b(defined|declared|implemented|lives?)\b|^where is\b", part.text, re.I
        )
        found = [(n, d) for n in part.subjects for d in lookup(self.index, n)[:1]]
        # "the Flask class's default_config": the class owns what is asked, it is not asked
        noun = re.search(r"\b(function|class|method|exception|constant)\b(?!'s)", part.text)
        kinds = {"function": (Kind.FUNCTION, Kind.METHOD), "method": (Kind.METHOD,),
                 "class": (Kind.CLASS,), "exception": (Kind.CLASS,),
                 "constant": (Kind.MODULE_CONSTANT,)}.get(noun.group(1) if noun else "", ())  # fmt: skip
        found.sort(key=lambda nd: (is_package(self.index, nd[0]), nd[1].kind not in kinds))
        if not defined:
            return self.located()
        if not found:
            return self.defined(part.subject.split(".")[-1]) if part.subject else self.located()
        name = found[0][0]
        cited, places = self.definition(name)
        if not places:  # a module of that name, say: no definition line to hold it to
            return self.located()
        pool = self.named_files or self.cited_files()
        if cited is None and places[0][0] in pool:
            cited = places[0]  # the answer points at the right file: cite its definition line
        if cited is None:
            where = "; ".join(f"{p}:{n}" for p, n in places[:3])
            self.problems.append(
                f"no cited line defines {name.split('.')[-1]}; it is defined at {where}"
            )
            return
        if self.named_files and cited[0] not in self.named_files:
            self.problems.append(f"the answer names {', '.join(self.named_files)}, but "
                                 f"{name} is defined at {cited[0]}:{cited[1]}")  # fmt: skip
            return
        said = {int(n) for n in re.findall(r"\blines?\s+(\d+)", self.answer)}
        if said and cited[1] not in said:
            self.problems.append(f"the answer says line {', '.join(map(str, sorted(said)))}, "
                                 f"but {name} is defined at {cited[0]}:{cited[1]}")  # fmt: skip
            return
        self.support(f"{name} is defined at {cited[0]}:{cited[1]}", cited)
        self.defined_at.append(cited)

    # -- values, types, members -----------------------------------------------------------------

    def _cite_of(
        self, target: Target, what: str, lines: tuple[int, int] | None = None
    ) -> Cite | None:
        """The citation of a fact the answer states rightly: a cited line of it, else its line.

        The fact was found in the definition by the index, so a right value (or type) cited
        elsewhere is cited where the index has it; only an answer that names another file
        (``the default is in core.py``) is held to what it named.
        """
        first, last = lines or target.lines
        cite = self._cited_in(target.path, first, last)
        if cite is not None and target.param is not None:
            cite = (target.path, last)  # the parameter's own line, not the def line above it
        if cite is None and (not self.named_files or target.path in self.named_files):
            cite = (target.path, last)  # the fact's own line, from the index
        if cite is None:
            self.problems.append(f"{what} is at {target.path}:{last}, but the answer "
                                 f"names {', '.join(self.named_files)}")  # fmt: skip
        return cite

    def _stated_value(self, part: QuestionPart) -> None:
        """The values the answer states, each in a cited line; it must state one at least."""
        # "in the BytesLogger class" (the question's own name) passed as "a line is about it"
        if self.terms():
            return self.literals()
        self.problems.append(
            f"{part.label}: the answer states no value beyond the question's own names; state "
            "what the code gives (a literal, a name or an expression), cited where it is"
        )

    def value_of(self, part: QuestionPart, target: Target) -> None:
        """The default (or assigned value) the index has for the target, stated and cited."""
        if part.kind is PartKind.VALUE and target.param is not None and not target.spelled:
            if re.search(r"\b(become|becomes|set to|when it is)\b", part.text):
                return self._assigned(target)
            return self._stated_value(part)  # a value passed at a call site, not the default
        expr = target.default
        said = ", ".join(stated_values(self.answer, self.question)[:3]) or "no value"
        sub = substitute(self.index, target.definition, target.param.name) if (
            target.param is not None and expr in (None, "None")) else None  # fmt: skip
        if sub is not None and (held := stated(self.answer, sub)):
            return self.support(f"{target.name} left out = {sub.expr}", held[0])
        if sub is not None and not (expr == "None" and states(self.answer, expr)):
            self.problems.append(substitute_problem(target.name, sub, said))
            return
        if expr is None and target.definition.kind in (Kind.FUNCTION, Kind.METHOD):
            return self._returned(target.definition, part)  # "what is Task.percentage when ..."
        unset = (unset_of(self.index, target.definition.name)
                 if expr is None and UNSET.search(part.text) else None)  # fmt: skip
        if unset is not None:  # an option declared bare, read with getattr(..., default)
            if states(self.answer, unset.expr):
                return self.support(f"{target.name} unset = {unset.expr}", (unset.path, unset.line))
            self.problems.append(f"{target.name} left unset reads as {unset.expr} "
                                 f"({unset.path}:{unset.line}), but the answer says {said}")  # fmt: skip
            return
        if expr is None:
            return self._stated_value(part)
        # "what backlog does it use": LISTEN_QUEUE's 128 (a default is asked as written)
        named = literal_constant(self.index, expr) if part.kind is PartKind.VALUE else None
        if named is not None and not states(self.answer, named.value or ""):
            self.problems.append(f"{target.name} is set to {expr} at {target.path}:"
                                 f"{target.lines[-1]}, and {expr} is {named.value} ({named.where}):"
                                 f" the answer says {said}; state the value")  # fmt: skip
            return
        deeper = named or (
            self._constant(expr, target.path) if not states(self.answer, expr) else None
        )
        if not states(self.answer, expr) and deeper is None:
            self.problems.append(f"{target.name} is set to {expr} at {target.path}:"
                                 f"{target.lines[-1]}, but the answer says {said}")  # fmt: skip
            return
        cite = self._cite_of(target, f"{target.name} = {expr}")
        if cite is not None:
            self.support(f"{target.name} = {expr}", cite)
            if deeper is not None:
                self.support(f"{expr} = {deeper.value}", (deeper.path, deeper.line))

    def _returned(self, d: Definition, part: QuestionPart) -> None:
        """A value a function (or property) gives back: a ``return`` line the answer states.

        Only a ``return`` in a branch the question's case can take counts (its quoted input,
        its numbers); an answer that states none is held to the lines it cites.
        """
        body = body_lines(self.index, d)
        lines = self.tree.lines(d.path) or []
        case = case_branch(lines, body, self.question)
        returns = [(n, m.group(1).strip()) for n in body
                   if (m := re.match(r"(?:return|yield)\s+(.+)", self.index.line_text(d.path, n)))
                   and (case is None or n in case)
                   and wrong_branch(lines, d.line, n, self.question) is None]  # fmt: skip
        returns = built_values(self.index, self.tree, d, body, returns, self.question)
        held = [(n, e) for n, e in returns if states(self.answer, e) or names_call(self.answer, e)]
        if held:
            return self.support(f"{d.qualname} returns {held[0][1]}", (d.path, held[0][0]))
        if reads := read_values(self.index, d, part):  # "max_size=self.max_cookie_size"
            return judge_reads(self, d, reads)
        # "which class does get_theme build": every return builds a class, and the answer
        # must name one of them (not the annotation's base class, not the variable).
        built = re.search(r"\b(class|instance|object|build|builds|create|creates|construct)\b",
                          self.question) and all(concrete(e) for _, e in returns)  # fmt: skip
        if returns and (case is not None or built):
            said = ", ".join(stated_values(self.answer, self.question)[:3]) or "no value"
            shown = "; ".join(f"{e} ({d.path}:{n})" for n, e in returns[:3])
            where = "in the question's case " if case is not None else ""
            self.problems.append(f"{where}{d.qualname} gives back {shown}, but the answer "
                                 f"says {said}")  # fmt: skip
            return
        if (other := other_default(self.index, d, self.answer, self.question)) is not None:
            self.problems.append(other)  # "16" for the iterations: the salt_length default
            return
        self.literals()  # a value it computes elsewhere (a constant, a callee): the cited lines

    def _constant(self, expr: str, path: str) -> Definition | None:
        """A constant the default names, when the answer states the constant's own value."""
        if not re.fullmatch(r"[A-Za-z_][\w.]*", expr) or expr in ("True", "False", "None"):
            return None
        for d in lookup(self.index, expr)[:3]:
            if d.value and states(self.answer, d.value):
                return d
        return None

    def _assigned(self, target: Target) -> None:
        """What the owner's body sets a parameter to ("what does max_width become")."""
        d, name = target.definition, target.param.name if target.param else ""
        sets = [(n, m.group(1).strip()) for n in body_lines(self.index, d)
                if (m := re.match(rf"{re.escape(name)}\s*=(?!=)\s*(.+)", self.index.line_text(d.path, n)))]  # fmt: skip
        if not sets:
            return self.literals()
        for n, expr in sets:
            if states(self.answer, expr):
                cite = self._cited_in(d.path, n - 1, n)
                if cite is None:
                    self.problems.append(f"{name} = {expr} is at {d.path}:{n}; cite that line")
                    return
                return self.support(f"{name} = {expr}", cite)
        shown = "; ".join(f"{d.path}:{n} sets it to {e}" for n, e in sets[:3])
        said = ", ".join(stated_values(self.answer, self.question)[:3]) or "no value"
        self.problems.append(f"{shown}, but the answer says {said}")

    def _arrow_line(self, d: Definition) -> int:
        """The line of ``d``'s signature with its return annotation (``-> ...``)."""
        for n in range(d.line, min(d.end_line, d.line + 30) + 1):
            if "->" in self.index.line_text(d.path, n):
                return n
        return d.line

    def type_of(self, part: QuestionPart, target: Target) -> None:
        """Every name of the annotation, and no class it does not name (not the owner).

        A function's is its return annotation, on its ``def`` line.
        """
        d = target.definition
        returns = target.param is None and d.kind in (Kind.FUNCTION, Kind.METHOD)
        lines = (d.line, self._arrow_line(d)) if returns else target.lines
        if not target.annotation:
            self.problems.append(f"{target.name} has no annotation at {target.path}:{lines[-1]}")
            return
        tokens = names_tokens(target.annotation)
        low = self.answer.lower()
        missing = [t for t in tokens
                   if not any(re.search(rf"\b{re.escape(w)}\b", low)
                              for w in _EQUIVALENT.get(t.lower(), (t.lower(),)))
                   and _EQUIVALENT.get(t.lower()) != ()]  # fmt: skip
        owner = target.definition.qualname.split(".")[0]
        named = {w for w in names_in(self.answer) if re.match(r"[A-Z]\w*[a-z]", w)}
        known = {t.lower() for t in tokens} | {n.split(".")[-1].lower() for n in part.subjects}
        extra = sorted(w for w in named if w.lower() not in known and w.lower() not in _EQUIVALENT
                       and (w == owner or lookup(self.index, w)))  # fmt: skip
        if missing or extra:
            why = f"it leaves out {', '.join(missing)}" if missing else ""
            if extra:
                why += (
                    "; " if why else ""
                ) + f"it names {', '.join(extra)}, which the annotation does not"
                if owner in extra:
                    why += f" ({owner} is the class itself, not the type)"
            self.problems.append(f"{target.name} is annotated {target.annotation} at "
                                 f"{target.path}:{lines[-1]}, but {why}")  # fmt: skip
            return
        cite = self._cite_of(target, f"{target.name}: {target.annotation}", lines)
        if cite is not None:
            self.support(f"{target.name}: {target.annotation}", cite)
