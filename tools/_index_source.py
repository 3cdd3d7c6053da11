"""Source text for the code index: node segments, one-line headers and docstrings, as written."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import defaultdict
from collections.abc import Iterator

__all__ = ["Source", "first_paragraph", "names_used", "statements"]

_MAX_TEXT = 400  # a constant's value or a default longer than this is cut: the line has the rest
_SPACE = re.compile(r"\s*\n\s*")
_OPEN, _CLOSE = "([{", ")]}"


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a cleaned docstring, on one line."""
    if not doc:
        return ""
    head = doc.strip().split("\n\n", 1)[0]
    return " ".join(head.split())


def _one_line(text: str) -> str:
    """Fold a multi-line construct onto one line, dropping the blanks just inside brackets."""
    text = _SPACE.sub(" ", text)
    text = re.sub(r"([(\[{]) ", r"\1", text)
    return re.sub(r",? ([)\]}])", r"\1", text)


class Source:
    """One file's text with fast, byte-offset-correct node segments.

    ``ast`` column offsets count UTF-8 bytes; ``ast.get_source_segment`` re-splits the whole file
    on every call, which is quadratic on big modules, so the lines are split once here.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self._bytes: dict[int, bytes] = {}

    def _line_bytes(self, number: int) -> bytes:
        if number not in self._bytes:
            self._bytes[number] = self.lines[number - 1].encode("utf-8")
        return self._bytes[number]

    def _column(self, number: int, byte_offset: int) -> int:
        line = self._line_bytes(number)
        if len(line) == len(self.lines[number - 1]):
            return byte_offset  # ASCII: bytes and characters agree
        return len(line[:byte_offset].decode("utf-8", errors="replace"))

    def segment(self, node: ast.AST, *, cap: int = _MAX_TEXT) -> str:
        """The source text of an expression node, folded onto one line and capped."""
        start, end = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        col = self._column(start, node.col_offset)  # type: ignore[attr-defined]
        end_col = self._column(end, node.end_col_offset or 0)  # type: ignore[attr-defined]
        if start == end:
            text = self.lines[start - 1][col:end_col]
        else:
            middle = self.lines[start : end - 1]
            text = "\n".join([self.lines[start - 1][col:], *middle, self.lines[end - 1][:end_col]])
        text = _one_line(text) if "\n" in text else text
        return text if len(text) <= cap else f"{text[: cap - 4]} ..."

    def header(self, node: ast.AST) -> str:
        """A ``def``/``class`` header as written, on one line, without its colon or comments."""
        first = node.lineno  # type: ignore[attr-defined]
        body = getattr(node, "body", None)
        last = body[0].lineno if body else node.end_lineno  # type: ignore[attr-defined]
        col = self._column(first, node.col_offset)  # type: ignore[attr-defined]
        chunk = "\n".join([self.lines[first - 1][col:], *self.lines[first:last]]) + "\n"
        parts: list[str] = []
        depth, previous_end = 0, (1, 0)
        try:
            for tok in tokenize.generate_tokens(io.StringIO(chunk).readline):
                if tok.type == tokenize.OP and tok.string == ":" and depth == 0:
                    break
                if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
                    continue
                if tok.type == tokenize.OP:
                    depth += (tok.string in _OPEN) - (tok.string in _CLOSE)
                gap = tok.start[0] != previous_end[0] or tok.start[1] > previous_end[1]
                parts.append((" " if gap and parts else "") + tok.string)
                previous_end = tok.end
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
        return _one_line("".join(parts))

    def statement(self, node: ast.stmt) -> str:
        """A simple statement (``X: int = 3``) as written, on one line, capped."""
        return self.segment(node)


def statements(stmts: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in a block and the blocks nested in it, not the nested functions."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(stmt, name, None)
            if inner:
                yield from statements(inner)


def _children(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.iter_child_nodes`` without its per-field generator (the index walks every node)."""
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, ast.AST))


def names_used(tree: ast.Module) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Lines where each identifier is used (Name, Attribute) and where it is imported."""
    uses: defaultdict[str, set[int]] = defaultdict(set)
    imported: defaultdict[str, set[int]] = defaultdict(set)
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        todo.extend(_children(node))
        if isinstance(node, ast.Name):
            uses[node.id].add(node.lineno)
        elif isinstance(node, ast.Attribute):
            uses[node.attr].add(node.end_lineno or node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:  # an alias has its own line in a parenthesised import
                line = getattr(alias, "lineno", node.lineno)
                imported[alias.name.rsplit(".", 1)[-1]].add(line)
                if alias.asname:
                    imported[alias.asname].add(line)
    return ({k: sorted(v) for k, v in uses.items()}, {k: sorted(v) for k, v in imported.items()})
