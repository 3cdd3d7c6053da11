"""The claims checker's state and the claims any answer makes: its names and values, cited.

:class:`Checker` holds the question, the answer, its citations and what has been found so far
(the citations used, the claims supported, the problems); its checks here judge the literals an
answer states, a "which file" answer and a yes/no answer. The checks of the claims a question
asks for by name (defined, value, base, raises, behaviour) are :mod:`._parts`'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tierflow.graphs.codebase_qa._questions import CODE_WORD, STOP_WORDS, subjects_of
from tierflow.graphs.codebase_qa._tree import Cite, Tree, defines
from tierflow.graphs.codebase_qa._values import in_text, stated_values

# The end of a problem only a person can settle: no model's repair can make the answer pass.
FOR_REVIEW = "a reviewer must confirm it"


def for_review(problems: Sequence[str]) -> bool:
    """Whether there are problems and every one is for a person (no model's repair can help)."""
    return bool(problems) and all(p.endswith(FOR_REVIEW) for p in problems)


__all__ = ["FOR_REVIEW", "Checker", "for_review", "names_file"]


class Checker:
    """One answer's citations checked claim by claim: support found, problems left."""

    def __init__(self, question: str, answer: str, cites: Sequence[Cite], root: str) -> None:
        self.question, self.answer = question, answer
        self.tree = Tree(root)
        self.cites = [(p.removeprefix("./"), n) for p, n in cites]
        self.used: list[Cite] = []
        self.problems: list[str] = []
        self.supported: list[str] = []
        self.support_cites: list[Cite] = []  # the line each supported claim rests on
        self.defined_at: list[Cite] = []  # where a location part's subject is defined
        self.named_files = [f for f in self.tree.files() if names_file(answer, f)]

    def cited_files(self) -> list[str]:
        return list(dict.fromkeys(p for p, _ in self.cites))

    def support(self, claim: str, cite: Cite) -> None:
        self.supported.append(claim)
        self.support_cites.append(cite)
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
        pattern = defines(name)
        cited = self.first(pattern)
        prefer = [*self.named_files, *self.cited_files()]
        return cited, ([cited] if cited else self.tree.find(pattern, prefer))

    def terms(self) -> list[str]:
        """What the answer asserts beyond the question: names and literal values."""
        asked = self.question.lower()
        paths = {Path(f).name for f in self.tree.files()} | set(self.tree.files())
        out = []
        for value in stated_values(self.answer, self.question):
            if value.strip("\"'`") and value.strip("\"'`").lower() not in asked:
                out.append(value.strip("`"))
        for word in re.findall(CODE_WORD, self.answer):
            code_like = "_" in word.strip("_") or re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]", word)
            if code_like and word.lower() not in asked and word not in paths and "/" not in word:
                out.append(word)
        for word in re.findall(r"\b[A-Z][a-z]+\w*\b", self.answer):
            if word.lower() not in asked and word.lower() not in STOP_WORDS and self._is_code(word):
                out.append(word)
        bare = self.answer.strip().strip(".`'\"")
        if len(bare.split()) <= 2 and bare and bare.lower() not in asked and "/" not in bare:
            out.append(bare)  # a bare value, e.g. "tools" or "async"
        lines_said = re.findall(r"\blines?\s+(\d+)", self.answer)
        return [t for t in dict.fromkeys(out) if t not in lines_said]

    def _is_code(self, word: str) -> bool:
        """A Capitalized word is a name when a cited line has it or the tree defines it."""
        if any(in_text(word, self.tree.text(c) or "") for c in self.cites):
            return True
        return bool(self.tree.find(re.compile(rf"^\s*(class|def)\s+{word}\b"))[:1])

    def literals(self) -> None:
        """Each name or value the answer states must be in a cited line (citations may move)."""
        terms = self.terms()
        if not terms:
            return None if self.supported else self.mentions_any()
        for term in terms:
            cite = next((c for c in self.cites if in_text(term, self.tree.text(c) or "")), None)
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
                if in_text(term, text) and any(in_text(x, text) for x in names):
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
                if any(in_text(w, text) for w in wanted) or not wanted:
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
            f"a yes/no answer ({said[0]}) cannot be checked against the cited lines; {FOR_REVIEW}"
        )

    def mentions_any(self) -> None:
        names = [n.split(".")[-1] for n in subjects_of(self.question)]
        for cite in self.cites:
            text = self.tree.text(cite) or ""
            if any(in_text(n, text) for n in names):
                return self.support("a cited line is about the question", cite)
        self.problems.append(
            f"no cited line mentions {', '.join(names[:3]) or 'what the question asks about'}"
        )


def names_file(answer: str, path: str) -> bool:
    """The answer names ``path``: in full, or by a file name that is not part of a longer one."""
    if re.search(rf"(?<![\w./]){re.escape(path)}\b", answer):
        return True
    return bool(re.search(rf"(?<![\w.]){re.escape(Path(path).name)}\b", answer)) and not any(
        m.group(0) != path and m.group(0).endswith("/" + Path(path).name)
        for m in re.finditer(r"[\w./]+\.py\b", answer)
    )
