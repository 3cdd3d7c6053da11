"""The yes/no part of a question, checked against the code index.

Which of yes and no is right is behaviour the checker cannot run; what it can hold an answer to
is where the deciding code is and that the answer says what that code does: the answer cites a
code line inside the body of a function that can decide the part (the subject itself, its
class's methods, or the functions that use an attribute: :func:`~._facts.deciding`), and names
a term of the cited lines beyond the question's own words. When it does not, the problem names
the body lines that carry the question's terms, for the repair.
"""

from __future__ import annotations

import re

from tierflow.graphs.codebase_qa._by_default import default_flag, says_no
from tierflow.graphs.codebase_qa._facts import Target, body_lines, deciding, deciding_lines
from tierflow.graphs.codebase_qa._parts import ClaimChecker
from tierflow.graphs.codebase_qa._questions import QuestionPart
from tierflow.graphs.codebase_qa._tree import Cite
from tierflow.graphs.codebase_qa._values import in_text
from tierflow.tools.code_index import CodeIndex, Definition

__all__ = ["YesNoChecker"]

_YES_NO = re.compile(r"\b(yes|no|true|false|not|cannot|never)\b|n't\b", re.I)


class YesNoChecker(ClaimChecker):
    """The yes/no checks of :class:`~._index_checks.IndexChecker` (which sets ``index``)."""

    index: CodeIndex

    def yes_no_part(self, part: QuestionPart) -> None:
        """Yes or no, citing code lines of the deciding function's body."""
        if not _YES_NO.search(self.answer):
            self.problems.append(
                "the question asks yes or no (true or false); the answer says neither"
            )
            return
        flag = default_flag(self.index, part)
        if flag is not None:  # "does it follow links by default": followlinks=False decides it
            return self._by_default(*flag)
        bodies = deciding(self.index, part)
        if not bodies:
            return self.yes_no()
        for d in bodies:
            code = set(body_lines(self.index, d))
            cite = next((c for c in self.cites if c[0] == d.path and c[1] in code), None)
            if cite is not None:
                return self._yes_no_terms(part, d, cite)
        where = "; ".join(f"{d.qualname} ({d.path}:{d.line}-{d.end_line})" for d in bodies[:3])
        self.problems.append(
            f"a yes/no answer must cite the code that decides it, inside the body of {where} "
            f"(not its def line or docstring); no cited line is there{self._likely(part, bodies)}"
        )

    def _by_default(self, flag: Target, value: bool) -> None:
        """The answer's yes or no against the flag's default, cited at the parameter."""
        said_no = says_no(self.answer)
        where = f"{flag.path}:{flag.line}"
        if said_no is None or said_no == value:
            self.problems.append(
                f"{flag.name} defaults to {value} at {where}: by default the answer is "
                f"{'yes' if value else 'no'}"
            )
        else:
            self.support(f"{flag.name} defaults to {value} at {where}", (flag.path, flag.line))

    def _likely(self, part: QuestionPart, bodies: list[Definition]) -> str:
        """``; the lines about it are path:n: code; ...`` for the best-matching body lines."""
        scored = [(d, deciding_lines(self.index, d, part.text, 6)) for d in bodies]
        best, lines = max(scored, key=lambda s: sum(hits for _, hits in s[1]))
        shown = [n for n, hits in lines if hits][:3]
        if not shown:
            return ""
        text = "; ".join(
            f"{best.path}:{n}: {self.index.line_text(best.path, n)[:70]}" for n in shown
        )
        return f". The lines about it: {text}"

    def _yes_no_terms(self, part: QuestionPart, d: Definition, cite: Cite) -> None:
        """The answer says what the deciding code does: a name or value of its cited lines."""
        cited = " ".join(self.index.line_text(p, n) for p, n in self.cites if p == d.path)
        body = " ".join(self.index.line_text(d.path, n) for n in range(d.line, d.end_line + 1))
        said = [*self.terms(), *re.findall(r"\b[A-Za-z_]\w*\.[A-Za-z_]\w*\b", self.answer)]
        terms = [t.strip("\"'") for t in said if t.lower() not in ("yes", "no", "true", "false")
                 and not t.endswith((".py", ".pyi"))]  # fmt: skip
        # a value an earlier part of the answer stated and had borne out ("utf-8", "4093") is
        # that part's, not a claim about this body
        earlier = " ".join(self.supported)
        invented = [t for t in terms if t and t not in body and not in_text(t, body)
                    and not in_text(t, earlier)]  # fmt: skip
        shown = [t for t in terms if t and in_text(t, cited) and t.lower() not in part.text.lower()]
        if invented:
            self.problems.append(f"the answer names {', '.join(invented[:3])}, which the body of "
                                 f"{d.qualname} ({d.path}:{d.line}-{d.end_line}) does not")  # fmt: skip
        elif not shown:
            self.problems.append(
                f"a bare yes/no cannot be checked: say what the cited code of {d.qualname} does "
                f"(a name or value of {cite[0]}:{cite[1]}: {self.index.line_text(*cite)[:80]!r})"
                f"{self._likely(part, [d])}"
            )
        else:
            self.support(f"{d.qualname} decides it at {cite[0]}:{cite[1]}", cite)
