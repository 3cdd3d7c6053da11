"""A command-line option's default: ``@click.option("--port", default=5000)`` on ``run_command``.

"For the `flask run` command, what port does it bind to by default?" names a command as the
user types it; the code declares it with ``@click.command("run")`` and its options as
decorators, which no signature holds. :func:`option_for` finds the command the question
writes in backticks or quotes (its last word is the command's name, or the function's name
spelled with dashes) and the option whose flags or help text share the most words with the
part; :func:`as_definition` makes it a definition whose value is the option's default.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from tierflow.graphs.codebase_qa._case_params import def_node
from tierflow.graphs.codebase_qa._questions import STOP_WORDS, QuestionPart
from tierflow.tools.code_index import CodeIndex, Definition, Kind

__all__ = ["CliOption", "as_definition", "option_for"]


@dataclass(frozen=True)
class CliOption:
    """One ``option(...)`` decorator of a command function."""

    command: Definition
    flags: tuple[str, ...]
    default: str | None  # as written; None when the option declares none
    help: str
    line: int
    choices: str | None = None  # ``type=click.Choice((...))``'s values, as written
    lines: tuple[int, int] = (0, 0)  # where the default is written (or the choices, for them)

    @property
    def fact(self) -> str:
        d = self.command
        return (f"{d.path}:{self.line}: option {'/'.join(self.flags)} of {d.qualname}: default "
                f"{self.default if self.default is not None else 'none'} ({self.help[:80]})")  # fmt: skip


def _commands(index: CodeIndex, name: str) -> list[Definition]:
    """Functions declared as command ``name``: ``@command("name")`` or named for it."""
    out = []
    for d in index:
        if d.kind is not Kind.FUNCTION or not any("command" in x for x in d.decorators):
            continue
        named = any(
            re.search(rf"""command\(\s*["']{re.escape(name)}["']""", x) for x in d.decorators
        )
        if named or d.name.replace("_", "-") in (name, f"{name}-command"):
            out.append(d)
    return out


def options(index: CodeIndex, command: Definition) -> list[CliOption]:
    """The command's ``option(...)`` decorators, in order."""
    node = def_node(index, command)
    out: list[CliOption] = []
    for dec in getattr(node, "decorator_list", []):
        func = dec.func if isinstance(dec, ast.Call) else None
        if getattr(func, "attr", getattr(func, "id", None)) != "option":
            continue
        assert isinstance(dec, ast.Call)
        flags = tuple(
            a.value for a in dec.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        )
        kw = {k.arg: k.value for k in dec.keywords if k.arg}
        help_node = kw.get("help")
        text = " ".join(n.value for n in ast.walk(help_node) if isinstance(n, ast.Constant)
                        and isinstance(n.value, str)) if help_node is not None else ""  # fmt: skip
        default = ast.unparse(kw["default"]) if "default" in kw else None
        kind = kw.get("type")
        choices = (ast.unparse(kind.args[0]) if isinstance(kind, ast.Call) and kind.args
                   and getattr(kind.func, "attr", getattr(kind.func, "id", "")) == "Choice"
                   else None)  # fmt: skip
        held: ast.expr = (
            kind if choices is not None and kind is not None else kw.get("default", dec)
        )
        out.append(CliOption(command, flags, default, text, dec.lineno, choices,
                             (held.lineno, held.end_lineno or held.lineno)))  # fmt: skip
    return out


def option_for(index: CodeIndex, part: QuestionPart) -> CliOption | None:
    """The option of the command the part writes in backticks or quotes that its words name."""
    written = [w for groups in re.findall(r"`([^`]+)`|\"([^\"]+)\"|'([^']+)'", part.case)
               for w in groups if w]  # fmt: skip
    words = [w for text in written for w in reversed(text.split()) if not w.startswith("-")]
    commands = [c for n in words for c in _commands(index, n)]
    if not commands:
        return None
    said = {w.removesuffix("s") for w in re.findall(r"[a-z]{3,}", part.text.lower())} - STOP_WORDS
    written_flags = {w for text in written for w in text.split() if w.startswith("--")}
    for option in options(index, commands[0]):  # "`flask routes --sort`": the flag written
        if written_flags & set(option.flags):
            return option
    scored = []
    for option in options(index, commands[0]):
        flag_words = {
            w.removesuffix("s") for f in option.flags for w in re.findall(r"[a-z]{3,}", f)
        }
        help_words = {w.removesuffix("s") for w in re.findall(r"[a-z]{3,}", option.help.lower())}
        score = 2 * len(said & flag_words) + len(
            said & help_words - {"the", "and", "enable", "disable"}
        )
        if said & (flag_words | help_words):
            scored.append((score, option))
    scored.sort(key=lambda s: -s[0])
    if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


def as_definition(option: CliOption, choices: bool = False) -> Definition:
    """The option as a definition valued at its default (or at its choices): ``run_command --port``.

    It spans the lines its value is written on (``default=5000``, ``type=click.Choice(...)``),
    where an answer is to cite it.
    """
    d = option.command
    value = option.choices if choices else option.default
    first, last = option.lines if option.lines[0] else (option.line, option.line)
    return Definition(qualname=f"{d.qualname} {option.flags[0] if option.flags else ''}".strip(),
                      name=option.flags[0].lstrip("-") if option.flags else d.name,
                      kind=Kind.FIELD, module=d.module, path=d.path, line=first,
                      end_line=last, signature=f"option {'/'.join(option.flags)}: "
                      f"{'choices' if choices else 'default'} {value}",
                      value=value, default=None if choices else option.default)  # fmt: skip
