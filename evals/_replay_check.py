"""A response-side check of a worked GSM8K solution: redo the arithmetic it shows.

Every ``a op b ... = c`` the response writes (in its text or in GSM8K's ``<<a*b=c>>``
annotations) is evaluated again; a step whose left side does not give its right side is a
wrong step. Steps that cannot be read as plain arithmetic (a percent sign on the left, a
variable) are not checked. The check passes or fails by a rule (:data:`RULES`): the rule a
replay uses is chosen on the calibration rows only.

Example:
    >>> check_solution("3 x 60 = 180 meters, then 180 * 3 = 540. #### 540").passes("steps")
    True
    >>> check_solution("3 x 60 = 170 meters. #### 170").wrong_steps
    1
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Check", "check_solution", "RULES", "evaluate", "RESPONSE_FEATURES", "response_features"]

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_LEFT = re.compile(r"[\d.\s$()+\-*/×÷x]+$")  # the arithmetic just before an "="
_RIGHT = re.compile(r"\s*\$?\s*(?:<<[^>]*>>)?\s*\$?\s*(-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?!\.\d))?)")
_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_FINAL = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}  # fmt: skip


class NotArithmetic(Exception):
    """An expression that is not a worked arithmetic step (a name, a call, a huge power)."""


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression (``x``/``×`` as times), else None.

    Example:
        >>> evaluate("(12 / 20) x 100"), evaluate("2 + apples")
        (60.0, None)
    """
    text = expression.replace("\\*", "*").replace("×", "*").replace("÷", "/").replace("$", "")
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _value(tree.body)
    except (SyntaxError, NotArithmetic, ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        if isinstance(node.op, ast.Pow) and abs(_value(node.right)) > 8:
            raise NotArithmetic("exponent too large to be a worked step")
        return _OPS[type(node.op)](_value(node.left), _value(node.right))
    raise NotArithmetic(f"not arithmetic: {ast.dump(node)[:40]}")


def _close(got: float, written: float) -> bool:
    # Worked solutions round: 80/120 = 0.67, 2/3 * 60 = 40.
    return abs(got - written) <= max(0.01 * abs(written), 0.011)


def _left_expression(before: str) -> str | None:
    """The longest arithmetic suffix of ``before`` with an operator between two numbers."""
    match = _LEFT.search(before)
    if not match:
        return None
    text = match.group(0)
    for start in range(len(text)):
        if not (text[start].isdigit() or text[start] in "($"):
            continue
        candidate = text[start:]
        has_op = re.search(r"\d[\s)]*[-+*/×÷x][\s($]*\d|\d\s*\\\*", candidate)
        if has_op and evaluate(candidate) is not None:
            return candidate
    return None


@dataclass(frozen=True)
class Check:
    """What the re-computation found in one response."""

    steps: int  # arithmetic steps read and re-computed
    wrong_steps: int
    final: float | None  # the number after "####", if any
    results: tuple[float, ...]  # each checked step's written result, in order
    truncated: bool  # an annotation or sentence cut off at the end

    def passes(self, rule: str) -> bool:
        """Whether the response passes ``rule`` (one of :data:`RULES`)."""
        return RULES[rule](self)


def _steps(text: str) -> list[tuple[float, float]]:
    """(re-computed, written) for each readable ``... = c`` in ``text``."""
    found = []
    for match in _ANNOTATION.finditer(text):
        got, written = evaluate(match.group(1)), evaluate(match.group(2))
        if got is not None and written is not None:
            found.append((got, written))
    plain = _ANNOTATION.sub(" ", text)
    for eq in re.finditer("=", plain):
        left = _left_expression(plain[: eq.start()].split("\n")[-1])
        right = _RIGHT.match(plain, eq.end())
        if left is None or right is None or "%" in left:
            continue
        got, written = evaluate(left), evaluate(right.group(1))
        if got is not None and written is not None:
            found.append((got, written))
    return found


def check_solution(response: str) -> Check:
    """Re-compute every arithmetic step ``response`` shows (see the module docstring)."""
    text = _THOUSANDS.sub("", response)
    steps = _steps(text)
    final = _FINAL.search(text)
    tail = text.rstrip()
    truncated = tail.count("<<") > tail.count(">>") or not tail or tail[-1] in "=+-*/,(<"
    return Check(
        steps=len(steps),
        wrong_steps=sum(not _close(got, written) for got, written in steps),
        final=float(final.group(1).replace(",", "")) if final else None,
        results=tuple(written for _, written in steps),
        truncated=truncated,
    )


def _steps_ok(c: Check) -> bool:
    return c.wrong_steps == 0 and not c.truncated and c.final is not None


def _final_shown(c: Check) -> bool:
    return _steps_ok(c) and any(_close(c.final or 0.0, r) for r in c.results)


def _final_last(c: Check) -> bool:
    return _steps_ok(c) and bool(c.results) and _close(c.final or 0.0, c.results[-1])


# The rules a replay can accept a weak answer by, strictest last.
RULES: dict[str, Callable[[Check], bool]] = {
    "steps": _steps_ok,  # a final answer, no wrong step, not cut off
    "steps+final-shown": _final_shown,  # and the final number is a step's result
    "steps+final-last": _final_last,  # and it is the last step's result
}


# What a cascade scorer may read of a worked solution (the replay fits it on calibration rows).
RESPONSE_FEATURES = (
    "pass_steps", "pass_final_shown", "pass_final_last", "log_steps", "wrong_step",
    "wrong_share", "truncated", "no_final", "final_integer", "final_is_last", "final_in_prompt",
    "log_chars", "log_chars_vs_prompt", "log_equals", "hedge",
)  # fmt: skip
_HEDGE = re.compile(r"\b(however|but|actually|wait|mistake|assum|re-?evaluat|approximately|round)",
                    re.IGNORECASE)  # fmt: skip


def response_features(prompt: str, response: str) -> list[float]:
    """The :data:`RESPONSE_FEATURES` of ``response`` to ``prompt``: its check and its shape.

    Example:
        >>> solution = "3 x 4 = <<3*4=12>>12, then 12 + 5 = <<12+5=17>>17. #### 17"
        >>> f = dict(zip(RESPONSE_FEATURES, response_features("Ann has 3 eggs.", solution)))
        >>> f["pass_final_last"], f["final_integer"], f["final_in_prompt"]
        (1.0, 1.0, 0.0)
    """
    c = check_solution(response)
    final = c.final
    given = {float(n) for n in _NUMBER.findall(_THOUSANDS.sub("", prompt))}
    return [
        *(float(c.passes(rule)) for rule in RULES),
        math.log1p(c.steps),
        float(c.wrong_steps > 0),
        c.wrong_steps / c.steps if c.steps else 0.0,
        float(c.truncated),
        float(final is None),
        float(final is not None and final == round(final)),
        float(final is not None and bool(c.results) and _close(final, c.results[-1])),
        float(final in given),
        math.log1p(len(response)),
        math.log1p(len(response)) - math.log1p(len(prompt)),
        math.log1p(response.count("=")),
        float(bool(_HEDGE.search(response))),
    ]
