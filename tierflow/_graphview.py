"""A graph's picture: subagent phases inside their node, a layered SVG (run view and CLI)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tierflow._html import esc
from tierflow.usage import UsageRecord

__all__ = ["drawable", "graph_svg", "path_taken", "ranks"]

# Node box, gaps between columns and rows, and the margin, in pixels.
_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 110, 30, 20, 46, 16

Point = tuple[float, float]
Box = tuple[str, float, float, float, float]  # subgraph name, x, y, width, height


def drawable(compiled: Any) -> Any:
    """A compiled graph's picture (``get_graph(xray=1)``), each subagent's phases drawn inside it.

    A subagent task is one node that runs its phases as LangGraph tasks, which LangGraph
    does not draw; they appear here as ``name:step``, ``name:tools``, ``name:escalate``.
    """
    from langchain_core.runnables.graph import Graph

    from tierflow.protocol import PHASE_EDGES, SUBAGENT_NODE

    graph = compiled.get_graph(xray=1)
    subs = {
        n.id for n in graph.nodes.values()
        if all((n.metadata or {}).get(k) == v for k, v in SUBAGENT_NODE.items())
    }  # fmt: skip
    if not subs:
        return graph
    phases = list(dict.fromkeys(p for edge in PHASE_EDGES for p in edge[:2] if p))
    ends = [a for a, b, _ in PHASE_EDGES if not b]
    out, by_id = Graph(), {}
    for n in graph.nodes.values():
        for node_id in [f"{n.id}:{p}" for p in phases] if n.id in subs else [n.id]:
            by_id[node_id] = out.add_node(n.data if n.id not in subs else None, node_id)
    for a, b, conditional in PHASE_EDGES:
        for sub in subs:
            if a and b:
                out.add_edge(by_id[f"{sub}:{a}"], by_id[f"{sub}:{b}"], conditional=conditional)
    for e in graph.edges:
        sources = [f"{e.source}:{p}" for p in ends] if e.source in subs else [e.source]
        target = f"{e.target}:{PHASE_EDGES[0][1]}" if e.target in subs else e.target
        for source in sources:
            out.add_edge(by_id[source], by_id[target], e.data, e.conditional or e.source in subs)
    return out


def path_taken(nodes: Sequence[str], records: Sequence[UsageRecord]) -> dict[str, list[str]]:
    """Drawing node -> tiers used, for the nodes whose model calls are in the records.

    A subagent's calls are made by its ``step`` node, drawn inside its box as ``name:step``.
    """
    out: dict[str, list[str]] = {}
    for r in records:
        for node in (r.node, f"{r.subagent}:step" if r.subagent else None):
            if node is not None and node in nodes:
                tiers = out.setdefault(node, [])
                if r.tier not in tiers:
                    tiers.append(r.tier)
    if out:
        out.update({n: [] for n in nodes if n in ("__start__", "__end__")})
    return out


def ranks(nodes: Sequence[str], edges: Sequence[tuple[str, str, bool]]) -> dict[str, int]:
    """Breadth-first distance from ``__start__`` (or the first node); unreachable nodes get 0."""
    out = {n: 0 for n in nodes}
    if not nodes:
        return out
    first = "__start__" if "__start__" in out else nodes[0]
    frontier: list[str] = [first]
    seen = {first}
    while frontier:
        nxt: list[str] = []
        for src in frontier:
            for s, t, _ in edges:
                if s == src and t not in seen:
                    seen.add(t)
                    out[t] = out[src] + 1
                    nxt.append(t)
        frontier = nxt
    return out


def graph_svg(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str, bool]],
    ran: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A layered SVG drawing of a graph; ``a:b`` node ids are drawn inside a box for subgraph ``a``.

    Args:
        nodes: node ids in insertion order.
        edges: ``(source, target, conditional)``; conditional edges are dashed.
        ran: node id -> the tiers its model calls used, for the nodes this run went through
            (drawn bold, with their tiers above them).
    """
    ran = ran or {}
    rank = ranks(nodes, edges)
    pos, boxes, width = _place(nodes, rank)
    height = _PAD * 2 + 14 + (max(rank.values(), default=0) + 1) * (_NODE_H + _GAP_Y)
    out = [
        f"<svg id='graph-svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img'>",
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M0,0L10,5L0,10z' fill='#666'/></marker></defs>",
    ]
    for g, x, y, w, h in boxes:
        out.append(
            f"<rect class='subgraph' x='{x:.0f}' y='{y:.0f}' width='{w:.0f}' "
            f"height='{h:.0f}' rx='8' fill='#fafaff' stroke='#c8c2f0'/>"
            f"<text x='{x + 6:.0f}' y='{y + 13:.0f}' fill='#776dc0'>{esc(g)}</text>"
        )
    for src, dst, conditional in edges:
        out.append(_edge(pos[src], pos[dst], _NODE_W, _NODE_H, conditional))
    out += [_node(n, pos[n], ran.get(n)) for n in nodes]
    out.append("</svg>")
    return "".join(out)


def _place(
    nodes: Sequence[str], rank: Mapping[str, int]
) -> tuple[dict[str, Point], list[Box], float]:
    """Each node's top-left corner, the subgraph boxes and the drawing's width.

    Subgraphs (``a:b`` ids share ``a``) sit side by side in bands as wide as their widest rank.
    """
    groups = list(dict.fromkeys(n.rpartition(":")[0] for n in nodes))
    pos: dict[str, Point] = {}
    x0: float = _PAD + 40  # room for back edges curving out to the left
    boxes: list[Box] = []
    for g in groups:
        members = [n for n in nodes if n.rpartition(":")[0] == g]
        widest = max([sum(1 for n in members if rank[n] == r) for r in set(rank.values())] + [1])
        band = widest * (_NODE_W + _GAP_X)
        for r in sorted({rank[n] for n in members}):
            row = [n for n in members if rank[n] == r]
            left = x0 + (band - len(row) * (_NODE_W + _GAP_X)) / 2
            for i, n in enumerate(row):
                pos[n] = (
                    left + i * (_NODE_W + _GAP_X) + _GAP_X / 2,
                    _PAD + 14 + r * (_NODE_H + _GAP_Y),
                )
        if g:
            ys = [pos[n][1] for n in members]
            boxes.append((g, x0 + 4, min(ys) - 18, band - 8, max(ys) - min(ys) + _NODE_H + 26))
        x0 += band + _GAP_X
    return pos, boxes, x0 + _PAD


def _node(n: str, at: Point, tiers: Sequence[str] | None) -> str:
    """One node's box; a node the run went through is bold, with its tiers above it."""
    x, y = at
    label = n.rpartition(":")[2]
    terminal = label in ("__start__", "__end__")
    fill = "#bfb6fc" if label == "__end__" else ("#fff" if terminal else "#f2f0ff")
    mark = " ran" if tiers is not None else ""
    stroke = "#3b2f9e' stroke-width='3" if tiers is not None else "#776dc0"
    badge = (
        f"<text class='tiers' x='{x + _NODE_W / 2:.0f}' y='{y - 3:.0f}' font-size='10' "
        f"text-anchor='middle' fill='#3b2f9e'>{esc(' / '.join(tiers))}</text>"
        if tiers
        else ""
    )
    return (
        f"<g class='node{mark}' data-node='{esc(n)}' data-tiers='{esc(','.join(tiers or []))}'>"
        f"<rect x='{x:.0f}' y='{y:.0f}' width='{_NODE_W}' height='{_NODE_H}' "
        f"rx='{15 if terminal else 5}' fill='{fill}' stroke='{stroke}'/>"
        f"<text x='{x + _NODE_W / 2:.0f}' y='{y + 19:.0f}' text-anchor='middle'>"
        f"{esc(label)}</text>{badge}</g>"
    )


def _edge(a: Point, b: Point, w: int, h: int, dashed: bool) -> str:
    style = " stroke-dasharray='5,4'" if dashed else ""
    common = f"fill='none' stroke='#666'{style} marker-end='url(#arrow)'"
    if a == b:  # self loop on the right side
        x, y = a[0] + w, a[1]
        return (
            f"<path d='M{x:.0f},{y + 8:.0f} C{x + 30:.0f},{y - 6:.0f} {x + 30:.0f},{y + h + 6:.0f} "
            f"{x:.0f},{y + h - 8:.0f}' {common}/>"
        )
    if b[1] > a[1]:
        return (
            f"<line x1='{a[0] + w / 2:.0f}' y1='{a[1] + h:.0f}' x2='{b[0] + w / 2:.0f}' "
            f"y2='{b[1]:.0f}' {common}/>"
        )
    # back or sideways edge: curve out to the left
    x1, y1, x2, y2 = a[0], a[1] + h / 2, b[0], b[1] + h / 2
    bend = min(x1, x2) - 40
    curve = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    return f"<path d='{curve}' {common}/>"
