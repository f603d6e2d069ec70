"""Charts drawn on the server as SVG: no chart library, no script, no third-party request,
and they print. Colours come from classes in admin.css (the dashboard's CSP allows no
inline styles); every number is also in a table beside the chart, for screen readers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28  # room for the axes' labels


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` lines up to `top`."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str) -> Markup:
    """Lines over time, one per series, with a y axis of round numbers and a few dates."""
    count = len(labels)
    top = max((v for s in series for v in s.values), default=0)
    step = nice_step(top)
    ceiling = max(step * math.ceil(top / step), step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / ceiling

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>'
    ]
    for tick in range(0, ceiling + 1, step):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:,}</text>'
        )
    every = max(1, math.ceil(count / 6))
    for i in range(0, count, every):
        parts.append(
            f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(labels[i])}</text>'
        )
    for n, one in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(one.values))
        parts.append(f'<polyline class="line series-{n}" points="{points}"/>')
        for i, v in enumerate(one.values):
            parts.append(
                f'<circle class="dot series-{n}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3">'
                f"<title>{escape(labels[i])}: {v:,} {escape(one.name)}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
