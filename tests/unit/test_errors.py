"""Every error tierflow raises for a user's mistake is a TierflowError that says what to fix.

``SpecError`` (a declaration in code) and ``InputError`` (what a run or an eval was given) are
also ``ValueError``\\ s, so nothing needs to raise a bare ``ValueError``. Each check lists every
offender as ``file:line``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tierflow.errors import InputError, SpecError, TierflowError

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("tierflow", "nodes", "graphs", "tools", "evals")


def _bare_value_errors(path: Path, root: Path = REPO) -> list[str]:
    """``file:line`` (relative to ``root``) of each ``raise ValueError[(...)]`` in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(raised, ast.Name) and raised.id == "ValueError":
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno}"))
    return [hit for _, hit in sorted(found)]


def test_no_bare_value_error_is_raised() -> None:
    offenders = [
        hit for folder in FOLDERS for path in sorted((REPO / folder).rglob("*.py"))
        for hit in _bare_value_errors(path)
    ]  # fmt: skip
    assert offenders == [], "raise SpecError or InputError (tierflow.errors) instead"


def test_the_check_sees_both_forms_and_nothing_else(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f(x):\n    if x:\n        raise ValueError('x')\n    if x > 1:\n"
        "        raise ValueError\n    raise SpecError('fine; pass y')\n"
    )
    assert _bare_value_errors(probe, tmp_path) == ["probe.py:3", "probe.py:5"]


@pytest.mark.parametrize("kind", [SpecError, InputError])
def test_spec_and_input_errors_are_still_value_errors(kind: type[Exception]) -> None:
    with pytest.raises(ValueError):
        raise kind("bad; pass a good one")
    assert issubclass(kind, TierflowError)
