"""The run view's inline SVG charts: cost and tokens by tier, model calls on a time axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tierflow._html import esc
from tierflow.usage import UsageRecord

__all__ = ["tier_charts", "gantt", "lanes"]

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def tier_charts(records: Sequence[UsageRecord], tiers: Sequence[str]) -> str:
    """Two bar charts side by side: cost (``chart-cost``) and tokens (``chart-tokens``) by tier."""
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


def _bar_chart(chart_id: str, title: str, values: Mapping[str, float], fmt: str) -> str:
    top = max(values.values(), default=0) or 1.0
    bar_w, label_w, row_h = 260, 80, 24
    height = 24 + row_h * len(values)
    out = [
        f"<svg id='{chart_id}' class='chart' width='{label_w + bar_w + 110}' "
        f"height='{height}' role='img'><text x='0' y='14' font-weight='600'>{esc(title)}</text>"
    ]
    for i, (tier, value) in enumerate(values.items()):
        y = 24 + i * row_h
        length = max(1.0, bar_w * value / top) if value else 0.0
        out.append(
            f"<g class='bar' id='{chart_id}-{esc(tier)}' data-tier='{esc(tier)}' "
            f"data-value='{value}'>"
            f"<text x='0' y='{y + 15}'>{esc(tier)}</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{length:.1f}' height='{row_h - 8}' "
            "fill='#776dc0'/>"
            f"<text x='{label_w + length + 6:.1f}' y='{y + 15}'>{esc(format(value, fmt))}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def lanes(records: Sequence[UsageRecord]) -> list[int]:
    """A lane per call so that calls overlapping in time sit on different lanes (greedy)."""
    ends: list[float] = []
    out = []
    for r in records:
        lane = next((i for i, end in enumerate(ends) if end <= r.started_at + 1e-9), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = r.started_at + r.latency_s
        out.append(lane)
    return out


def gantt(records: Sequence[UsageRecord], start: float, tiers: Sequence[str]) -> str:
    """Model calls on a time axis, coloured by tier; parallel calls overlap on their own lanes."""
    if not records:
        return ""
    ordered = sorted(records, key=lambda r: r.started_at)
    lane_of = lanes(ordered)
    span = max(r.started_at + r.latency_s for r in ordered) - start or 1.0
    width, left, row_h = 720, 10, 18
    height = 40 + row_h * (max(lane_of) + 1)
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(tiers)}
    out = [f"<svg id='gantt' class='chart' width='{left + width + 20}' height='{height}' "
           "role='img'><text x='0' y='14' font-weight='600'>Calls over time (by tier)</text>"]  # fmt: skip
    for i, (r, lane) in enumerate(zip(ordered, lane_of, strict=True), start=1):
        x = left + width * (r.started_at - start) / span
        w = max(2.0, width * r.latency_s / span)
        y = 24 + lane * row_h
        tip = f"#{i} {r.subagent or r.node} [{r.tier}] {r.latency_s:.2f}s ${r.cost_usd:.6f}"
        failed = " stroke='#c00' stroke-width='2'" if r.error else ""
        out.append(
            f"<rect class='call' data-call='{i}' data-tier='{esc(r.tier)}' data-lane='{lane}' "
            f"x='{x:.1f}' y='{y}' width='{w:.1f}' height='{row_h - 4}' fill='{colour[r.tier]}'"
            f"{failed}><title>{esc(tip)}</title>"
            "</rect>"
        )
    legend_y = height - 6
    for i, t in enumerate(tiers):
        out.append(f"<rect x='{left + i * 110}' y='{legend_y - 10}' width='10' height='10' "
                   f"fill='{colour[t]}'/><text x='{left + i * 110 + 14}' y='{legend_y}'>"
                   f"{esc(t)}</text>")  # fmt: skip
    out.append(f"<text x='{left + width - 80}' y='{legend_y}'>{span:.1f} s</text></svg>")
    return "".join(out)
