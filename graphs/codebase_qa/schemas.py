"""The codebase-QA workflow's schemas: search and extraction tasks, their results, the answer."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "SearchTask",
    "Finding",
    "Findings",
    "ExtractTask",
    "Fact",
    "Facts",
    "Citation",
    "Answer",
]


class SearchTask(BaseModel):
    """What to look for in the source tree."""

    query: str = Field(description="a name, identifier or phrase to find, e.g. 'class RetryPolicy'")
    file_glob: str = Field(default="*.py", description="which files to search, e.g. '*.py'")


class Finding(BaseModel):
    """A place in the code that matters for the question."""

    path: str = Field(description="file path relative to the root, as the tools print it")
    line: int = Field(ge=1, description="1-based line number")
    snippet: str = Field(description="the code on that line, copied exactly")


class Findings(BaseModel):
    """Result of a search task."""

    findings: list[Finding] = Field(
        description="the most relevant places, best first", max_length=8
    )
    summary: str = Field(description="one sentence: what was found")


class ExtractTask(BaseModel):
    """Turn the findings so far into facts that answer the question."""

    question: str


class Fact(BaseModel):
    """One statement supported by one line of code."""

    statement: str
    path: str
    line: int = Field(ge=1)


class Facts(BaseModel):
    """Result of an extraction task."""

    facts: list[Fact] = Field(max_length=8)


class Citation(BaseModel):
    """Where the answer's evidence is."""

    path: str
    line: int = Field(ge=1)


class Answer(BaseModel):
    """The final answer with file:line citations."""

    answer: str = Field(description="a direct, short answer")
    citations: list[Citation] = Field(description="file:line evidence for the answer", min_length=1)
