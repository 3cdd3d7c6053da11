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
code says instead, for the answer to be repaired, or the run to end ``unverified``: a
:class:`ClaimsReport` (the answer's check, ``verify_answer`` in :mod:`.checks`, turns it into
the one :class:`~tierflow.nodes.verifier.Verdict`).

This module is the checker's public face; question parsing is in ``_questions``, reading the
tree in ``_tree``, values in ``_values`` and the checks in ``_checker`` and ``_parts``.

Example:
    >>> import pathlib, tempfile
    >>> root = tempfile.mkdtemp()
    >>> _ = pathlib.Path(root, "m.py").write_text("LIMIT = 30")
    >>> check_answer("What is the value of LIMIT?", "LIMIT is 20.", [("m.py", 1)], root).problems
    ['LIMIT is set to 30 at m.py:1, but the answer says 20']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._index_checks import IndexChecker
from tierflow.graphs.codebase_qa._parts import ClaimChecker
from tierflow.graphs.codebase_qa._questions import (
    QuestionPart,
    parse_parts,
    question_parts,
    subject_of,
    subjects_of,
)
from tierflow.graphs.codebase_qa._refusals import no_answer
from tierflow.graphs.codebase_qa._registered import index_parts
from tierflow.graphs.codebase_qa._tree import Cite, Tree, defines, sets, span

__all__ = [
    "ClaimsReport", "QuestionPart", "index_parts", "parse_parts", "question_parts", "subject_of", "subjects_of",
    "check_answer", "evidence", "part_evidence",
]  # fmt: skip


@dataclass
class ClaimsReport:
    """What the answer's claims came to: repaired citations, the problems left, what holds."""

    citations: list[Cite]
    problems: list[str] = field(default_factory=list)
    supported: list[str] = field(default_factory=list)
    defined_at: list[Cite] = field(default_factory=list)  # definition lines of location parts


def check_answer(question: str, answer: str, citations: Sequence[Cite], root: str) -> ClaimsReport:
    """Check every part of the question; repair citations; say which part is still wrong.

    Each :class:`~._questions.QuestionPart` is judged against the tree's code index
    (:mod:`._index_checks`); a tree without Python is read line by line (:func:`_line_checks`).
    Returns the citations to keep (moved to where a claim's evidence is, unsupported ones
    dropped; the originals when no claim holds) and the problems, empty when every part holds.
    """
    index = index_for(root)
    if index is None:
        checker: ClaimChecker = ClaimChecker(question, answer, citations, root)
    else:
        checker = IndexChecker(question, answer, list(citations), root, index)
    missing = [
        f"{p}:{n} does not exist (copy path and line from the tool output)"
        for p, n in checker.cites
        if checker.tree.text((p, n)) is None
    ]
    checker.cites = [c for c in checker.cites if checker.tree.text(c) is not None]
    refused = no_answer(question, answer, [checker.tree.text(c) or "" for c in checker.cites])
    if refused:
        checker.problems.append(refused)
    elif isinstance(checker, IndexChecker):
        for part in index_parts(index, question):
            checker.check_part(part)
    else:
        _line_checks(checker, question)
    kept = checker.used or list(checker.cites)
    # A missing citation matters only while a claim is unsupported: otherwise it is dropped.
    problems = missing + checker.problems if checker.problems else []
    return ClaimsReport(kept, problems, checker.supported, checker.defined_at)


def _line_checks(checker: ClaimChecker, question: str) -> None:
    """The claims a question asks for, judged by reading the cited lines (no index)."""
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


def part_evidence(question: str, root: str, max_facts: int = 14) -> str:
    """The question's parts (kind, subject, what counts as an answer) and each one's index facts."""
    index = index_for(root)
    parts = index_parts(index, question)
    lines = [f"The question has {len(parts)} part(s); answer every one, in order, and cite each:"]
    for part in parts:
        lines.append(f"- {part.label}; an answer is {part.wants}")
        found = facts(index, part) if index is not None else []
        lines += [f"    {f}" for f in found[:max_facts]]
    return "\n".join(lines)


def evidence(question: str, root: str, max_lines: int = 24) -> list[str]:
    """``path:line: code`` lines of the tree for the parts the question asks, found without a model.

    For each name the question mentions: where it is defined (the whole statement, so a class
    shows its bases), the lines that set it (defaults), and for a function what its body
    raises and returns. The answer writes from these instead of from memory.
    """
    tree, parts, out = Tree(root), question_parts(question), []
    for name in subjects_of(question)[:3]:
        last = name.split(".")[-1]
        found = tree.find(defines(last))[:3]
        if "value" in parts or not found:
            found += [c for c in tree.find(sets(last))[:3] if c not in found]
        for cite in found:
            out.append(f"{cite[0]}:{cite[1]}: {tree.text(cite)}")
            lines = tree.lines(cite[0]) or []
            if re.match(r"\s*(async\s+)?def\s", lines[cite[1] - 1]):
                first, last_line = span(lines, cite[1])
                for n in range(first + 1, min(last_line, first + 60) + 1):
                    if re.match(r"\s*(raise|return)\b", lines[n - 1]):
                        out.append(f"{cite[0]}:{n}: {lines[n - 1].strip()}")
    return list(dict.fromkeys(out))[:max_lines]
