"""Values in code and in answers: arithmetic, right-hand sides, and whether an answer states one."""

from __future__ import annotations

import ast
import re

from tierflow.graphs.codebase_qa._questions import CODE_WORD
from tierflow.graphs.codebase_qa._tree import sets

__all__ = ["number", "rhs", "leading_expr", "states", "stated_values", "in_text", "names_in"]

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}


class _NotArithmetic(ValueError):
    """Code that is no plain arithmetic (or too large to evaluate); never leaves this module."""


def number(text: str) -> float | None:
    """The number ``text`` is (``10 * 1024``, ``1_000``, ``ten``), or None."""
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
            raise _NotArithmetic("too large")
        return left * right if isinstance(node.op, ast.Mult) else left**right
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    raise _NotArithmetic("not arithmetic")


def rhs(statement: str, name: str) -> str | None:
    """What ``statement`` sets ``name`` to (up to the next top-level comma or the end)."""
    m = sets(name).search(statement)
    if not m:
        return None
    return leading_expr(m.group(1)).rstrip(":").strip() or None


def leading_expr(text: str, stops: str = ",#") -> str:
    """``text`` up to a top-level character of ``stops`` or an unmatched closing bracket."""
    depth, out = 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif ch in stops and depth == 0:
            break
        out.append(ch)
    return "".join(out).strip()


def states(answer: str, expr: str) -> bool:
    """Whether ``answer`` states the value ``expr`` (literally or as an evident equivalent)."""
    plain = expr.strip().strip("\"'")
    if not plain:
        return False
    low = answer.lower()
    if re.search(rf"(?<![\w.]){re.escape(plain.lower())}(?![\w])", low):
        return True
    want = number(plain)
    if want is not None:
        for token in re.findall(r"-?\d[\d_]*(?:\.\d+)?(?:\s*[*+]\s*\d+)*|\b[a-z]+\b", low):
            if number(token) == want:
                return True
    if plain in ("True", "False", "None"):
        return plain.lower() in re.findall(r"\b(true|false|none)\b", low)
    # (ValueError, TypeError), ["a", "b"]: a tuple or list is stated when each item is.
    seq = re.fullmatch(r"[(\[]\s*(.+?)\s*,?\s*[)\]]", plain, re.S)
    if seq and "," in plain:
        items = [i.strip().strip("\"'") for i in seq.group(1).split(",") if i.strip()]
        if items and all(re.fullmatch(r"[\w.]+", i) for i in items):
            return all(re.search(rf"(?<![\w]){re.escape(i.lower())}(?![\w])", low) for i in items)
    # Timeout(timeout=5.0), Limits(max_connections=100, ...): a call of literal numbers is
    # stated when every one of its numbers is.
    call = re.fullmatch(r"[A-Za-z_][\w.]*\((.*)\)", plain, re.S)
    nums = re.findall(r"(?<![\w.])-?\d[\d_]*(?:\.\d+)?(?![\w.])", call.group(1)) if call else []
    if nums and not re.search(r"[\"']", call.group(1) if call else ""):
        said = [number(t) for t in re.findall(r"-?\d[\d_]*(?:\.\d+)?", low)]
        return all(number(n) in said for n in nums)
    # sys.intern("__end__"), Literal[...] = "v2": the value is the string literal inside.
    quoted = re.findall(r"\"([^\"]+)\"|'([^']+)'", expr)
    return any(q and re.search(rf"(?<![\w]){re.escape(q.lower())}(?![\w])", low)
               for pair in quoted for q in pair)  # fmt: skip


def stated_values(answer: str, question: str) -> list[str]:
    """Literal values the answer states that the question does not already contain."""
    found = re.findall(r"-?\d[\d_]*(?:\.\d+)?|\"[^\"]*\"|'[^']*'|\b(?:True|False|None)\b", answer)
    found += re.findall(r"`([^`]+)`", answer)
    return [v for v in found if v not in question]


def in_text(term: str, text: str) -> bool:
    """``term`` (a name, number or quoted value) is in ``text``, literally or as an equivalent."""
    plain = term.strip("\"'")
    if not plain:
        return False
    if re.search(rf"(?<![\w]){re.escape(plain)}(?![\w])", text):
        return True
    if "." in plain and re.search(rf"\b{re.escape(plain.split('.')[-1])}\b", text):
        return True
    want = number(plain)
    if want is not None:
        return any(number(tok) == want for tok in re.findall(r"-?\d[\d_]*(?:\.\d+)?", text))
    return False


def names_in(text: str) -> set[str]:
    """The last part of each (dotted) name in ``text``."""
    return {w.split(".")[-1] for w in re.findall(CODE_WORD, text)}
