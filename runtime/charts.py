"""Server-rendered SVG charts, readable without JavaScript: every bar and point carries its value as text and a
<title>. Pure: data in, markup out; every label is escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")
WIDTH = 640
BAR_HEIGHT = 22


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> SafeString:
    """Horizontal bars, one per (label, value)."""
    label_width, top = 200, 8
    height = top + BAR_HEIGHT * max(len(items), 1) + 8
    peak = max((value for _, value in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not items:
        parts.append(f'<text x="8" y="{top + 14}" class="muted">no data</text>')
    for index, (label, value) in enumerate(items):
        y = top + index * BAR_HEIGHT
        length = (WIDTH - label_width - 80) * (value / peak)
        text = f"{_fmt(value)}{unit}"
        parts.append(
            f"<g><title>{escape(label)}: {escape(text)}</title>"
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label[:32])}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{BAR_HEIGHT - 6}" '
            f'fill="{PALETTE[0]}"></rect>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 15}" font-size="12">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated label is escaped above)


def line_chart(series: Mapping[str, Sequence[tuple[str, float]]], *, title: str) -> SafeString:
    """Lines over a shared x axis of labels (days); a legend names each series with its last value."""
    height, left, right, top, bottom = 220, 48, 150, 10, 30
    xs = sorted({label for points in series.values() for label, _ in points})
    peak = max((value for points in series.values() for _, value in points), default=0) or 1
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"></line>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" font-size="11">{_fmt(peak)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    if not xs:
        parts.append(f'<text x="{left + 8}" y="{top + 40}">no data yet</text>')
    else:
        parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">{escape(xs[0])}</text>')
        parts.append(
            f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" font-size="11">{escape(xs[-1])}</text>'
        )
    step = plot_w / max(len(xs) - 1, 1)
    position = {label: index for index, label in enumerate(xs)}
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        coords = [
            (left + position[label] * step, top + plot_h - plot_h * (value / peak)) for label, value in sorted(points)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        last = sorted(points)[-1][1] if points else 0
        parts.append(
            f'<g><title>{escape(name)}</title><polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{path}"></polyline>'
            + "".join(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"><title>{escape(name)} {escape(label)}: '
                f"{_fmt(value)}</title></circle>"
                for (x, y), (label, value) in zip(coords, sorted(points), strict=True)
            )
            + f'<text x="{WIDTH - right + 8}" y="{top + 14 + index * 16}" font-size="12" fill="{colour}">'
            f"{escape(name[:18])}: {_fmt(last)}</text></g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated label is escaped above)
