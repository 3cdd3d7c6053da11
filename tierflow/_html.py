"""Small HTML helpers the run view and its drawings share: escaping, money, tables."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["esc", "usd", "table"]


def esc(value: Any) -> str:
    """``value`` as text, escaped for HTML content and attribute values (``None`` is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def usd(value: float) -> str:
    """A cost in dollars to six decimals, e.g. ``$0.001250``."""
    return f"${value:.6f}"


def table(table_id: str, head: Iterable[str], rows: Sequence[str], sortable: bool = True) -> str:
    """A table with ``head`` cells over ``rows`` (each an HTML ``<tr>``); sortable by clicking."""
    cls = " class='sortable'" if sortable else ""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(rows)
    return f"<table id='{table_id}'{cls}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
