"""The answer drafted part by part: each part of the question asked alone, with its index facts.

When the code index holds facts for every part of the question (:func:`checks.parts_covered`),
the cheap tier answers each part in one sentence from those facts only
(:class:`~tierflow.nodes._part_drafts.PartDrafts`), and :func:`compose` joins the sentences
into an :class:`Answer`. A part is cited where its sentence says (``path:line``), else at its
first fact (the definition, parameter or annotation line the index found). The composed answer
is checked like any other; normalization then moves each citation to the line that bears the
claim out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tierflow.graphs.codebase_qa._facts import facts, index_for
from tierflow.graphs.codebase_qa._questions import QuestionPart
from tierflow.graphs.codebase_qa._registered import index_parts
from tierflow.graphs.codebase_qa.schemas import Answer, Citation
from tierflow.nodes._part_drafts import PartDrafts

__all__ = ["PART_DRAFTS", "compose", "part_prompts"]

_PLACE = re.compile(r"([\w./-]+\.pyi?):(\d+)")
_MAX_FACTS = 14


def _parts(state: Mapping[str, Any]) -> list[tuple[QuestionPart, list[str]]]:
    """Each part with its index facts, when every part has some (else [])."""
    index = index_for((state.get("env") or {}).get("root", "."))
    parts = index_parts(index, str(state.get("request", "")))
    if index is None or not parts:
        return []
    found = [(p, facts(index, p)[:_MAX_FACTS]) for p in parts]
    return found if all(f for _, f in found) else []


def part_prompts(state: Mapping[str, Any]) -> list[str]:
    """One prompt per part: the part's facts from the code index, then its own question."""
    return [
        "Facts from the code:\n" + "\n".join(lines) + f"\n\nQuestion: {part.text}?\nAnswer:"
        for part, lines in _parts(state)
    ]


def compose(state: Mapping[str, Any], texts: Sequence[str]) -> Answer:
    """The part answers joined, in order, each cited where it says or at its first fact."""
    cites: list[tuple[str, int]] = []
    for (_, lines), text in zip(_parts(state), texts, strict=False):
        own = [(m[1], int(m[2])) for m in _PLACE.finditer(text)]
        first = _PLACE.match(lines[0]) if lines else None
        cites += own or ([(first[1], int(first[2]))] if first else [])
    citations = [Citation(path=p, line=n) for p, n in dict.fromkeys(cites)]
    answer = " ".join(t.strip() for t in texts if t.strip()) or "(no answer)"
    return Answer(answer=answer, citations=citations or [Citation(path="(none)", line=1)])


PART_DRAFTS = PartDrafts(parts=part_prompts, compose=compose)
