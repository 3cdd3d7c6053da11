"""A self-contained HTML view of one run: totals, graph picture, call timeline, events, tier charts.

The file references nothing outside itself (inline CSS, JS and SVG), so it opens offline and can be
attached to a bug report. Key numbers carry stable element ids (``total-cost``, ``total-tokens``,
``reference-cost``, ``tier-<name>-cost``, ``chart-cost-<name>``) for tests and scripts.

Example:
    >>> from tierflow.runview import write_html
    >>> write_html(result, cfg, "run.html")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tierflow._charts import gantt, tier_charts
from tierflow._graphview import drawable, graph_svg, path_taken
from tierflow._html import esc, table, usd
from tierflow.config import TierConfig
from tierflow.protocol import EventKind, RunStatus
from tierflow.report import reference_config
from tierflow.runner import RunResult
from tierflow.usage import UsageRecord, as_records, reprice, spent_usd, summarize

# graph_svg and drawable live in tierflow._graphview (``tierflow graph`` draws with it too);
# they are re-exported here, where their importers find them.
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
            f"<tr class='run' data-thread='{esc(result.thread_id)}'>"
            f"<td><a href='{esc(folder.name)}/{esc(name)}'>{esc(result.thread_id)}</a></td>"
            f"<td>{esc(result.graph)}</td><td>{esc(_status(result))}</td>"
            f"<td class='num'>{len(records)}</td>"
            f"<td class='num' data-v='{spent_usd(records)}'>{usd(spent_usd(records))}</td>"
            f"<td>{esc(when)}</td></tr>"
        )
    head = ["thread", "graph", "status", "calls", "cost $", "started"]
    body = (
        table("runs", head, rows)
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
        f"<h1>Run of <code>{esc(result.graph)}</code></h1>",
        _header(result, cfg, records, reference),
        "<h2>Graph</h2>",
        _graph_section(result.graph, records),
        "<h2>Cost and tokens by tier</h2>",
        tier_charts(records, tiers),
        _tier_table(records, tiers, reference),
        "<h2>Answer</h2>",
        _answer(result),
        "<h2>Model calls</h2>",
        gantt(records, start, tiers),
        _timeline(records, start),
        "<h2>Escalations and interrupts</h2>",
        _events(events, start),
        _interrupts(result),
        _data_script(result, records),
    ]
    title = esc(f"tierflow run {result.thread_id}")
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )


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
        ("Total cost", "total-cost", usd(spent_usd(records))),
        ("Total tokens", "total-tokens", f"{tokens}"),
        ("Cached input tokens", "cached-tokens", str(sum(r.cached_tokens for r in records))),
    ]
    budget = result.values.get("budget_usd")
    if budget is not None:
        rows.append(("Budget", "budget", usd(float(budget))))
    if reference is not None:
        rows.append(
            (
                f"Cost at {reference.profile} prices",
                "reference-cost",
                usd(spent_usd(reprice(records, reference))),
            )
        )
    body = "".join(f"<dt>{esc(k)}</dt><dd id='{i}'>{esc(v)}</dd>" for k, i, v in rows)
    check = "<dt>Total cost (from embedded data)</dt><dd id='total-cost-check' class='muted'>-</dd>"
    return f"<dl class='totals'>{body}{check}</dl>"


def _tier_order(records: Sequence[UsageRecord], cfg: TierConfig) -> list[str]:
    used = {r.tier for r in records}
    return [t for t in cfg.ladder if t in used] + sorted(used - set(cfg.ladder))


def _graph_section(name: str, records: Sequence[UsageRecord] = ()) -> str:
    try:
        from tierflow.registry import load_builder

        drawable_graph = drawable(load_builder(name).compile())
        mermaid = drawable_graph.draw_mermaid()
    except Exception as exc:  # noqa: BLE001 - a view of a run must not fail on its picture
        return f"<p class='muted'>graph picture unavailable: {esc(exc)}</p>"
    try:
        nodes = list(drawable_graph.nodes)
        picture = graph_svg(
            nodes,
            [(e.source, e.target, e.conditional) for e in drawable_graph.edges],
            path_taken(nodes, records),
        )
    except Exception:  # noqa: BLE001
        picture = ""
    opened = "" if picture else " open"
    return (
        f"{picture}<details{opened}><summary>Mermaid source</summary>"
        f"<pre id='graph-mermaid'>{esc(mermaid)}</pre></details>"
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
        cells = [f"<td>{esc(key)}</td>"] + [
            f"<td class='num'>{v}</td>"
            for v in (s.requests, s.errors, s.input_tokens, s.cached_tokens, s.output_tokens)
        ]
        cells.append(f"<td class='num' id='tier-{esc(slug)}-cost'>{s.cost_usd:.6f}</td>")
        cells += [
            f"<td class='num'>{s.p50_latency_s:.2f}</td>",
            f"<td class='num'>{s.escalations}</td>",
        ]
        if reference:
            cells.append(
                f"<td class='num' id='tier-{esc(slug)}-reference-cost'>{ref[key].cost_usd:.6f}</td>"
            )
        cls = " class='total'" if key == "TOTAL" else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return table("tier-table", head, body, sortable=False)


def _answer(result: RunResult) -> str:
    """The run's final answer (or tickets' outcomes) and the problems its checks found."""
    values = result.values
    answer = values.get("answer")
    if answer is None and values.get("tickets_out") is not None:
        answer = values["tickets_out"]
    body = (
        f"<pre id='answer'>{esc(json.dumps(answer, indent=1, default=str))}</pre>"
        if answer is not None
        else "<p id='answer' class='muted'>no answer</p>"
    )
    problems = values.get("answer_problems") or []
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems)
        body += f"<h3>Problems the checks found</h3><ul id='answer-problems'>{items}</ul>"
    return body


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
            f"<td>{esc(r.node)}</td>",
            f"<td>{esc(r.subagent or '-')}</td>",
            f"<td>{esc(r.tier)}</td>",
            f"<td>{esc(r.model)}</td>",
            f"<td class='num'>{r.input_tokens}</td>",
            f"<td class='num'>{r.cached_tokens}</td>",
            f"<td class='num'>{r.output_tokens}</td>",
            f"<td class='num'>{r.cost_usd:.6f}</td>",
            f"<td class='num'>{r.latency_s:.3f}</td>",
            f"<td>{esc(r.error or '')}</td>",
            f"<td>{esc(r.escalation_reason or '')}</td>",
        ]
        rows.append(f"<tr id='call-{i}'{cls}>{''.join(cells)}</tr>")
    return table("timeline", head, rows)


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
            f"<tr class='event' data-kind='{esc(e.get('kind'))}'><td class='num'>{offset:.3f}</td>"
            f"<td>{esc(e.get('kind'))}</td><td>{esc(e.get('subagent') or '-')}</td>"
            f"<td>{esc(e.get('task_id') or '-')}</td><td>{esc(_event_detail(e))}</td></tr>"
        )
    return table("events", ["t+ s", "kind", "subagent", "task", "detail"], rows)


def _interrupts(result: RunResult) -> str:
    if not result.interrupts:
        return "<p id='no-interrupts' class='muted'>no pending interrupts</p>"
    items = []
    for i in result.interrupts:
        value = json.dumps(i.value, indent=1, default=str)
        items.append(
            f"<li class='interrupt' data-id='{esc(i.id)}'><code>{esc(i.id)}</code>"
            f"<pre>{esc(value)}</pre></li>"
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
