"""Missing servers or packages: a skip on a developer machine, a failure on CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str, what: str) -> NoReturn:
    """Skip on a developer machine; fail on CI, where a silent skip would hide a broken setup.

    ``what`` names the tests that must run there (e.g. "local-model tests").
    """
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI is set, so {what} must run)", pytrace=False)
    pytest.skip(reason)
