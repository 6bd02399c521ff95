"""Line charts as inline SVG, drawn on the server (no script, no chart library): a
CloudWatch series is a list of (time, value) points."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 24


def line_chart(title: str, points: Sequence[tuple[dt.datetime, float]], unit: str = "",
               start: dt.datetime | None = None, end: dt.datetime | None = None,
               floor_max: float = 0.0) -> Markup:
    """An SVG of `points` over [start, end] (their own span when not given); the y axis
    runs from 0 to the largest value (at least `floor_max`, so an idle 0.3 % CPU is not
    drawn as a full-height line)."""
    points = sorted(points)
    if points:
        start = start or points[0][0]
        end = end or points[-1][0]
    label = f"{title}: " + (f"latest {points[-1][1]:.2f}{unit}" if points else "no data yet")
    if not points or start is None or end is None:
        return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                      f'aria-label="{escape(label)}"><text x="{WIDTH / 2}" y="{HEIGHT / 2}" '
                      f'text-anchor="middle" fill="#5d6874">No data yet</text></svg>')
    top = max(max(v for _, v in points), floor_max) or 1.0
    span = max((end - start).total_seconds(), 1.0)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(when: dt.datetime, value: float) -> str:
        x = PAD_LEFT + plot_w * (when - start).total_seconds() / span
        y = PAD_TOP + plot_h * (1 - value / top)
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(t, v) for t, v in points)
    dots = "".join(f'<circle cx="{xy(t, v).split(",")[0]}" cy="{xy(t, v).split(",")[1]}" '
                   f'r="2" fill="#0b5cad"><title>{t:%H:%M:%S} {v:.2f}{escape(unit)}</title>'
                   f'</circle>' for t, v in points[-120:])
    base = PAD_TOP + plot_h
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">'
        f'<line x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - PAD_RIGHT}" y2="{base}" stroke="#aab4bf"/>'
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP}" '
        f'stroke="#e3e7ec"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end" font-size="11" '
        f'fill="#5d6874">{_num(top)}{escape(unit)}</text>'
        f'<text x="{PAD_LEFT - 6}" y="{base}" text-anchor="end" font-size="11" '
        f'fill="#5d6874">0</text>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="11" fill="#5d6874">'
        f'{start:%H:%M}</text>'
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" font-size="11" '
        f'fill="#5d6874">{end:%H:%M} UTC</text>'
        f'<polyline points="{line}" fill="none" stroke="#0b5cad" stroke-width="2"/>'
        f'{dots}</svg>')


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"
