"""A self-contained HTML view of one run: totals, graph picture, call timeline, events, tier charts.

The file references nothing outside itself (inline CSS, JS and SVG), so it opens offline and can be
attached to a bug report. Key numbers carry stable element ids (``total-cost``, ``total-tokens``,
``reference-cost``, ``tier-<name>-cost``, ``chart-cost-<name>``) for tests and scripts.

Example:
    >>> from tierflow.runview import write_html
    >>> write_html(result, cfg, "run.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tierflow.config import TierConfig
from tierflow.protocol import EventKind, RunStatus
from tierflow.report import reference_config
from tierflow.runner import RunResult
from tierflow.usage import UsageRecord, as_records, reprice, spent_usd, summarize

__all__ = ["write_html", "render_html", "graph_svg"]

_NOTABLE = (
    EventKind.ESCALATION,
    EventKind.HUMAN_DECISION,
    EventKind.LOOP_DETECTED,
    EventKind.SUPERVISOR_FALLBACK,
    EventKind.ERROR,
    EventKind.TURN_LIMIT,
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.4em;margin:0 0 .4em}
h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
dl.totals{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}
dl.totals dt{color:#666}dl.totals dd{margin:0;font-weight:600}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee}
th{background:#f6f6f6;text-align:left;cursor:pointer;user-select:none}td.num{text-align:right}
tr.err td{background:#fff0f0}tr.esc td{background:#fffbe6}tr.total td{font-weight:600}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:24em}
.muted{color:#888}.charts{display:flex;gap:2em;flex-wrap:wrap}
svg text{font:12px system-ui,sans-serif}
"""

# Sorting of the timeline and a check that the embedded data adds up to the printed total.
_JS = """
(function(){
  var data = JSON.parse(document.getElementById('run-data').textContent);
  var total = data.usage.reduce(function(s,u){return s+u.cost_usd;},0);
  var check = document.getElementById('total-cost-check');
  if (check) check.textContent = '$' + total.toFixed(6);
  document.querySelectorAll('table.sortable th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var body = th.closest('table').tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
      rows.sort(function(a,b){
        var x = a.cells[col].dataset.v || a.cells[col].textContent;
        var y = b.cells[col].dataset.v || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
  document.documentElement.dataset.runview = 'ready';
})();
"""


def write_html(result: RunResult, cfg: TierConfig, path: Path | str) -> Path:
    """Write the run view of ``result`` (priced with ``cfg``) to ``path``; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(result, cfg), encoding="utf-8")
    return out


def write_index(runs: Sequence[tuple[RunResult, TierConfig]], path: Path | str) -> Path:
    """Write an index of runs (status, cost, calls, start) at ``path``; returns its path.

    Each run is linked to its own view, written beside it in ``<path stem>_runs/<thread>.html``.
    """
    out = Path(path)
    folder = out.with_name(f"{out.stem}_runs")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for result, cfg in runs:
        records = as_records(result.values.get("usage") or [])
        name = re.sub(r"[^A-Za-z0-9._-]", "_", result.thread_id) + ".html"
        write_html(result, cfg, folder / name)
        started = min((r.started_at for r in records), default=0.0)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "-"
        rows.append(
            f"<tr class='run' data-thread='{_e(result.thread_id)}'>"
            f"<td><a href='{_e(folder.name)}/{_e(name)}'>{_e(result.thread_id)}</a></td>"
            f"<td>{_e(result.graph)}</td><td>{_e(_status(result))}</td>"
            f"<td class='num'>{len(records)}</td>"
            f"<td class='num' data-v='{spent_usd(records)}'>{_usd(spent_usd(records))}</td>"
            f"<td>{_e(when)}</td></tr>"
        )
    head = ["thread", "graph", "status", "calls", "cost $", "started"]
    body = (
        _table("runs", head, rows)
        if rows
        else "<p class='muted'>no threads in this data dir yet</p>"
    )
    out.write_text(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>tierflow runs"
        f"</title><style>{_CSS}</style></head><body>\n<h1>tierflow runs ({len(rows)})</h1>\n"
        f"{body}\n<script>{_JS}</script>\n</body></html>\n",
        encoding="utf-8",
    )
    return out


def render_html(result: RunResult, cfg: TierConfig) -> str:
    """The run view as one HTML document (no external resources)."""
    records = as_records(result.values.get("usage") or [])
    reference = reference_config(cfg)
    events = [dict(e) for e in result.values.get("events") or []]
    start = min(
        [r.started_at for r in records] + [e.get("at", 0) for e in events if e.get("at")] or [0.0]
    )
    tiers = _tier_order(records, cfg)
    parts = [
        f"<h1>Run of <code>{_e(result.graph)}</code></h1>",
        _header(result, cfg, records, reference),
        "<h2>Graph</h2>",
        _graph_section(result.graph, records),
        "<h2>Cost and tokens by tier</h2>",
        _charts(records, tiers),
        _tier_table(records, tiers, reference),
        "<h2>Answer</h2>",
        _answer(result),
        "<h2>Model calls</h2>",
        _gantt(records, start, tiers),
        _timeline(records, start),
        "<h2>Escalations and interrupts</h2>",
        _events(events, start),
        _interrupts(result),
        _data_script(result, records),
    ]
    title = _e(f"tierflow run {result.thread_id}")
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _status(result: RunResult) -> str:
    if result.interrupts:
        return f"waiting for input ({len(result.interrupts)} interrupt(s))"
    return str(result.values.get("status") or RunStatus.DONE)


def _header(
    result: RunResult, cfg: TierConfig, records: list[UsageRecord], reference: TierConfig | None
) -> str:
    tokens = sum(r.input_tokens + r.output_tokens for r in records)
    rows = [
        ("Graph", "graph-name", result.graph),
        ("Thread", "thread-id", result.thread_id),
        ("Status", "run-status", _status(result)),
        ("Profile", "profile", cfg.profile),
        ("Model calls", "call-count", str(len(records))),
        ("Total cost", "total-cost", _usd(spent_usd(records))),
        ("Total tokens", "total-tokens", f"{tokens}"),
        ("Cached input tokens", "cached-tokens", str(sum(r.cached_tokens for r in records))),
    ]
    budget = result.values.get("budget_usd")
    if budget is not None:
        rows.append(("Budget", "budget", _usd(float(budget))))
    if reference is not None:
        rows.append(
            (
                f"Cost at {reference.profile} prices",
                "reference-cost",
                _usd(spent_usd(reprice(records, reference))),
            )
        )
    body = "".join(f"<dt>{_e(k)}</dt><dd id='{i}'>{_e(v)}</dd>" for k, i, v in rows)
    check = "<dt>Total cost (from embedded data)</dt><dd id='total-cost-check' class='muted'>-</dd>"
    return f"<dl class='totals'>{body}{check}</dl>"


def _tier_order(records: Sequence[UsageRecord], cfg: TierConfig) -> list[str]:
    used = {r.tier for r in records}
    return [t for t in cfg.ladder if t in used] + sorted(used - set(cfg.ladder))


# --- graph picture ----------------------------------------------------------------------------


def _path_taken(nodes: Sequence[str], records: Sequence[UsageRecord]) -> dict[str, list[str]]:
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


def _graph_section(name: str, records: Sequence[UsageRecord] = ()) -> str:
    try:
        from tierflow.registry import load_builder

        drawable_graph = drawable(load_builder(name).compile())
        mermaid = drawable_graph.draw_mermaid()
    except Exception as exc:  # noqa: BLE001 - a view of a run must not fail on its picture
        return f"<p class='muted'>graph picture unavailable: {_e(exc)}</p>"
    try:
        nodes = list(drawable_graph.nodes)
        picture = graph_svg(
            nodes,
            [(e.source, e.target, e.conditional) for e in drawable_graph.edges],
            _path_taken(nodes, records),
        )
    except Exception:  # noqa: BLE001
        picture = ""
    opened = "" if picture else " open"
    return (
        f"{picture}<details{opened}><summary>Mermaid source</summary>"
        f"<pre id='graph-mermaid'>{_e(mermaid)}</pre></details>"
    )


def _ranks(nodes: Sequence[str], edges: Sequence[tuple[str, str, bool]]) -> dict[str, int]:
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
    rank = _ranks(nodes, edges)
    groups = list(dict.fromkeys(n.rpartition(":")[0] for n in nodes))
    width_of = {
        g: max(
            [
                sum(1 for n in nodes if n.rpartition(":")[0] == g and rank[n] == r)
                for r in set(rank.values())
            ]
            + [1]
        )
        for g in groups
    }
    node_w, node_h, gap_x, gap_y, pad = 110, 30, 20, 46, 16
    pos: dict[str, tuple[float, float]] = {}
    x0: float = pad + 40  # room for back edges curving out to the left
    boxes = []
    for g in groups:
        band = width_of[g] * (node_w + gap_x)
        members = [n for n in nodes if n.rpartition(":")[0] == g]
        for r in sorted({rank[n] for n in members}):
            row = [n for n in members if rank[n] == r]
            left = x0 + (band - len(row) * (node_w + gap_x)) / 2
            for i, n in enumerate(row):
                pos[n] = (left + i * (node_w + gap_x) + gap_x / 2, pad + 14 + r * (node_h + gap_y))
        if g:
            ys = [pos[n][1] for n in members]
            boxes.append((g, x0 + 4, min(ys) - 18, band - 8, max(ys) - min(ys) + node_h + 26))
        x0 += band + gap_x
    width = x0 + pad
    height = pad * 2 + 14 + (max(rank.values(), default=0) + 1) * (node_h + gap_y)
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
            f"<text x='{x + 6:.0f}' y='{y + 13:.0f}' fill='#776dc0'>{_e(g)}</text>"
        )
    for src, dst, conditional in edges:
        out.append(_edge(pos[src], pos[dst], node_w, node_h, conditional))
    for n in nodes:
        x, y = pos[n]
        label = n.rpartition(":")[2]
        terminal = label in ("__start__", "__end__")
        fill = "#bfb6fc" if label == "__end__" else ("#fff" if terminal else "#f2f0ff")
        tiers = ran.get(n)
        mark = " ran" if tiers is not None else ""
        stroke = "#3b2f9e' stroke-width='3" if tiers is not None else "#776dc0"
        badge = (
            f"<text class='tiers' x='{x + node_w / 2:.0f}' y='{y - 3:.0f}' font-size='10' "
            f"text-anchor='middle' fill='#3b2f9e'>{_e(' / '.join(tiers))}</text>"
            if tiers
            else ""
        )
        out.append(
            f"<g class='node{mark}' data-node='{_e(n)}' data-tiers='{_e(','.join(tiers or []))}'>"
            f"<rect x='{x:.0f}' y='{y:.0f}' width='{node_w}' height='{node_h}' "
            f"rx='{15 if terminal else 5}' fill='{fill}' stroke='{stroke}'/>"
            f"<text x='{x + node_w / 2:.0f}' y='{y + 19:.0f}' text-anchor='middle'>"
            f"{_e(label)}</text>{badge}</g>"
        )
    out.append("</svg>")
    return "".join(out)


def _edge(a: tuple[float, float], b: tuple[float, float], w: int, h: int, dashed: bool) -> str:
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


# --- charts and tables --------------------------------------------------------------------------


def _bar_chart(chart_id: str, title: str, values: Mapping[str, float], fmt: str) -> str:
    top = max(values.values(), default=0) or 1.0
    bar_w, label_w, row_h = 260, 80, 24
    height = 24 + row_h * len(values)
    out = [
        f"<svg id='{chart_id}' class='chart' width='{label_w + bar_w + 110}' "
        f"height='{height}' role='img'><text x='0' y='14' font-weight='600'>{_e(title)}</text>"
    ]
    for i, (tier, value) in enumerate(values.items()):
        y = 24 + i * row_h
        length = max(1.0, bar_w * value / top) if value else 0.0
        out.append(
            f"<g class='bar' id='{chart_id}-{_e(tier)}' data-tier='{_e(tier)}' "
            f"data-value='{value}'>"
            f"<text x='0' y='{y + 15}'>{_e(tier)}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{length:.1f}' height='{row_h - 8}' "
            "fill='#776dc0'/>"
            f"<text x='{label_w + length + 6:.1f}' y='{y + 15}'>{_e(format(value, fmt))}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _charts(records: Sequence[UsageRecord], tiers: Sequence[str]) -> str:
    if not records:
        return "<p class='muted'>no model calls recorded</p>"
    cost = {t: round(sum(r.cost_usd for r in records if r.tier == t), 10) for t in tiers}
    tokens = {
        t: float(sum(r.input_tokens + r.output_tokens for r in records if r.tier == t))
        for t in tiers
    }
    return (
        "<div class='charts'>"
        + _bar_chart("chart-cost", "Cost (USD) by tier", cost, ".6f")
        + _bar_chart("chart-tokens", "Tokens (in + out) by tier", tokens, ".0f")
        + "</div>"
    )


def _tier_table(
    records: Sequence[UsageRecord], tiers: Sequence[str], reference: TierConfig | None
) -> str:
    if not records:
        return ""
    rows = {s.key: s for s in summarize(records, "tier")}
    ref = {s.key: s for s in summarize(reprice(records, reference), "tier")} if reference else {}
    head = [
        "tier",
        "requests",
        "errors",
        "in tok",
        "cached",
        "out tok",
        "cost $",
        "p50 s",
        "escal.",
    ]
    if reference:
        head.append(f"at {reference.profile} $")
    body = []
    for key in [*tiers, "TOTAL"]:
        s = rows[key]
        slug = "total" if key == "TOTAL" else key
        cells = [f"<td>{_e(key)}</td>"] + [
            f"<td class='num'>{v}</td>"
            for v in (s.requests, s.errors, s.input_tokens, s.cached_tokens, s.output_tokens)
        ]
        cells.append(f"<td class='num' id='tier-{_e(slug)}-cost'>{s.cost_usd:.6f}</td>")
        cells += [
            f"<td class='num'>{s.p50_latency_s:.2f}</td>",
            f"<td class='num'>{s.escalations}</td>",
        ]
        if reference:
            cells.append(
                f"<td class='num' id='tier-{_e(slug)}-reference-cost'>{ref[key].cost_usd:.6f}</td>"
            )
        cls = " class='total'" if key == "TOTAL" else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return _table("tier-table", head, body, sortable=False)


def _table(table_id: str, head: Iterable[str], rows: Sequence[str], sortable: bool = True) -> str:
    cls = " class='sortable'" if sortable else ""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(rows)
    return f"<table id='{table_id}'{cls}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def _answer(result: RunResult) -> str:
    """The run's final answer (or tickets' outcomes) and the problems its checks found."""
    values = result.values
    answer = values.get("answer")
    if answer is None and values.get("tickets_out") is not None:
        answer = values["tickets_out"]
    body = (
        f"<pre id='answer'>{_e(json.dumps(answer, indent=1, default=str))}</pre>"
        if answer is not None
        else "<p id='answer' class='muted'>no answer</p>"
    )
    problems = values.get("answer_problems") or []
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        body += f"<h3>Problems the checks found</h3><ul id='answer-problems'>{items}</ul>"
    return body


def _lanes(records: Sequence[UsageRecord]) -> list[int]:
    """A lane per call so that calls overlapping in time sit on different lanes (greedy)."""
    ends: list[float] = []
    lanes = []
    for r in records:
        lane = next((i for i, end in enumerate(ends) if end <= r.started_at + 1e-9), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = r.started_at + r.latency_s
        lanes.append(lane)
    return lanes


def _gantt(records: Sequence[UsageRecord], start: float, tiers: Sequence[str]) -> str:
    """Model calls on a time axis, coloured by tier; parallel calls overlap on their own lanes."""
    if not records:
        return ""
    ordered = sorted(records, key=lambda r: r.started_at)
    lanes = _lanes(ordered)
    span = max(r.started_at + r.latency_s for r in ordered) - start or 1.0
    width, left, row_h = 720, 10, 18
    height = 40 + row_h * (max(lanes) + 1)
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(tiers)}
    out = [f"<svg id='gantt' class='chart' width='{left + width + 20}' height='{height}' "
           "role='img'><text x='0' y='14' font-weight='600'>Calls over time (by tier)</text>"]  # fmt: skip
    for i, (r, lane) in enumerate(zip(ordered, lanes, strict=True), start=1):
        x = left + width * (r.started_at - start) / span
        w = max(2.0, width * r.latency_s / span)
        y = 24 + lane * row_h
        tip = f"#{i} {r.subagent or r.node} [{r.tier}] {r.latency_s:.2f}s ${r.cost_usd:.6f}"
        failed = " stroke='#c00' stroke-width='2'" if r.error else ""
        out.append(
            f"<rect class='call' data-call='{i}' data-tier='{_e(r.tier)}' data-lane='{lane}' "
            f"x='{x:.1f}' y='{y}' width='{w:.1f}' height='{row_h - 4}' fill='{colour[r.tier]}'"
            f"{failed}><title>{_e(tip)}</title>"
            "</rect>"
        )
    legend_y = height - 6
    for i, t in enumerate(tiers):
        out.append(f"<rect x='{left + i * 110}' y='{legend_y - 10}' width='10' height='10' "
                   f"fill='{colour[t]}'/><text x='{left + i * 110 + 14}' y='{legend_y}'>"
                   f"{_e(t)}</text>")  # fmt: skip
    out.append(f"<text x='{left + width - 80}' y='{legend_y}'>{span:.1f} s</text></svg>")
    return "".join(out)


def _timeline(records: Sequence[UsageRecord], start: float) -> str:
    if not records:
        return "<p class='muted'>no model calls recorded</p>"
    head = [
        "#",
        "t+ s",
        "node",
        "subagent",
        "tier",
        "model",
        "in tok",
        "cached",
        "out tok",
        "cost $",
        "latency s",
        "error",
        "escalation reason",
    ]
    rows = []
    ordered = sorted(records, key=lambda r: r.started_at)
    for i, r in enumerate(ordered, start=1):
        offset = max(0.0, r.started_at - start)
        cls = " class='err'" if r.error else (" class='esc'" if r.escalation_reason else "")
        cells = [
            f"<td class='num'>{i}</td>",
            f"<td class='num' data-v='{offset}'>{offset:.3f}</td>",
            f"<td>{_e(r.node)}</td>",
            f"<td>{_e(r.subagent or '-')}</td>",
            f"<td>{_e(r.tier)}</td>",
            f"<td>{_e(r.model)}</td>",
            f"<td class='num'>{r.input_tokens}</td>",
            f"<td class='num'>{r.cached_tokens}</td>",
            f"<td class='num'>{r.output_tokens}</td>",
            f"<td class='num'>{r.cost_usd:.6f}</td>",
            f"<td class='num'>{r.latency_s:.3f}</td>",
            f"<td>{_e(r.error or '')}</td>",
            f"<td>{_e(r.escalation_reason or '')}</td>",
        ]
        rows.append(f"<tr id='call-{i}'{cls}>{''.join(cells)}</tr>")
    return _table("timeline", head, rows)


def _event_detail(event: Mapping[str, Any]) -> str:
    skip = {"id", "kind", "at", "subagent", "task_id"}
    return ", ".join(f"{k}={v}" for k, v in event.items() if k not in skip)


def _events(events: Sequence[Mapping[str, Any]], start: float) -> str:
    notable = [e for e in events if e.get("kind") in _NOTABLE]
    if not notable:
        return "<p id='no-escalations' class='muted'>no escalations or errors</p>"
    rows = []
    for e in sorted(notable, key=lambda e: e.get("at") or 0):
        offset = max(0.0, float(e.get("at") or start) - start)
        rows.append(
            f"<tr class='event' data-kind='{_e(e.get('kind'))}'><td class='num'>{offset:.3f}</td>"
            f"<td>{_e(e.get('kind'))}</td><td>{_e(e.get('subagent') or '-')}</td>"
            f"<td>{_e(e.get('task_id') or '-')}</td><td>{_e(_event_detail(e))}</td></tr>"
        )
    return _table("events", ["t+ s", "kind", "subagent", "task", "detail"], rows)


def _interrupts(result: RunResult) -> str:
    if not result.interrupts:
        return "<p id='no-interrupts' class='muted'>no pending interrupts</p>"
    items = []
    for i in result.interrupts:
        value = json.dumps(i.value, indent=1, default=str)
        items.append(
            f"<li class='interrupt' data-id='{_e(i.id)}'><code>{_e(i.id)}</code>"
            f"<pre>{_e(value)}</pre></li>"
        )
    return f"<h3>Pending interrupts</h3><ul id='interrupts'>{''.join(items)}</ul>"


def _data_script(result: RunResult, records: Sequence[UsageRecord]) -> str:
    # Endpoints are left out: the file must not contain URLs a viewer could be tempted to follow.
    data = {
        "graph": result.graph,
        "thread_id": result.thread_id,
        "generated_at": time.time(),
        "usage": [r.model_dump(exclude={"endpoint"}) for r in records],
    }
    text = json.dumps(data, default=str).replace("</", "<\\/")
    return f"<script type='application/json' id='run-data'>{text}</script>"
