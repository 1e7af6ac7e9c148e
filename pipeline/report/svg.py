"""Plots as inline SVG strings: horizontal (stacked) bars, a histogram and a forest plot of effects
with their intervals, nothing else needed.

Every plot is an ``<svg class="plot">`` with explicit width, height and viewBox, so it draws the
same offline in any browser; labels that do not fit are cut and carry the full text in a
``<title>`` tooltip. Reads and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pipeline.report.safe import escape

FONT = 12
ROW = 22  # height of one bar row
LABEL_W = 280
VALUE_W = 110
TOP = 8


def _cut(text: str, width_px: int) -> str:
    limit = max(4, width_px // 7)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'font-family="sans-serif" font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def _label(y: float, text: str, label_w: int = LABEL_W) -> str:
    return (
        f'<text x="{label_w - 8}" y="{y}" text-anchor="end" dominant-baseline="middle">'
        f"<title>{escape(text)}</title>{escape(_cut(text, label_w - 12))}</text>"
    )


def _ticks(x0: int, plot_w: int, vmax: float, y: float, *, whole: bool) -> list[str]:
    """Gridlines at 0, the middle and the end; whole numbers only when counting."""
    out = []
    for frac in (0, 0.5, 1):
        value = vmax * frac
        if whole and value != int(value):
            continue
        x = x0 + plot_w * frac
        shown = f"{value:,.0f}" if whole else f"{value:,.3g}"
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{y}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{y + 12}" text-anchor="middle" fill="#666">{shown}</text>'
        )
    return out


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[float], str]],
    segments: Sequence[tuple[str, str]],
    *,
    label: str,
    width: int = 900,
) -> str:
    """One bar per row: (label, a value per segment, text shown at its end).

    `segments` is (name, colour) per stacked part; bars are drawn to scale of the longest total.
    """
    plot_w = width - LABEL_W - VALUE_W
    vmax = max((sum(values) for _, values, _ in rows), default=0) or 1
    height = TOP + ROW * len(rows) + 24
    body = _ticks(LABEL_W, plot_w, vmax, TOP + ROW * len(rows), whole=True)
    for i, (name, values, end_text) in enumerate(rows):
        y = TOP + i * ROW
        body.append(_label(y + ROW / 2, name))
        x = float(LABEL_W)
        for (seg_name, colour), value in zip(segments, values, strict=True):
            if value <= 0:
                continue
            w = plot_w * value / vmax
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{ROW - 6}" '
                f'fill="{colour}"><title>{escape(name)}: {escape(seg_name)} {value:,.4g}'
                "</title></rect>"
            )
            x += w
        body.append(
            f'<text x="{x + 6:.1f}" y="{y + ROW / 2}" dominant-baseline="middle">'
            f"{escape(end_text)}</text>"
        )
    return _svg(width, height, label, body)


def bars(
    rows: Sequence[tuple[str, float, str]],
    *,
    label: str,
    threshold: float | None = None,
    threshold_text: str = "",
    width: int = 900,
    value_format: str = "{:,.4g}",
    whole: bool = False,
    label_width: int = LABEL_W,
) -> str:
    """One bar per row: (label, value, colour); an optional dashed threshold line.

    `whole`: the values are counts (gridlines on whole numbers only); `label_width`: pixels
    given to the labels (long labels are cut, the full text in a tooltip).
    """
    plot_w = width - label_width - VALUE_W
    vmax = max([v for _, v, _ in rows] + [threshold or 0]) or 1
    height = TOP + ROW * len(rows) + 24
    bottom = TOP + ROW * len(rows)
    body = _ticks(label_width, plot_w, vmax, bottom, whole=whole)
    for i, (name, value, colour) in enumerate(rows):
        y = TOP + i * ROW
        w = plot_w * value / vmax
        body.append(_label(y + ROW / 2, name, label_width))
        body.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{max(w, 1):.1f}" height="{ROW - 6}" '
            f'fill="{colour}"><title>{escape(name)}: {value_format.format(value)}</title></rect>'
            f'<text x="{label_width + w + 6:.1f}" y="{y + ROW / 2}" dominant-baseline="middle">'
            f"{value_format.format(value)}</text>"
        )
    if threshold is not None:
        x = label_width + plot_w * threshold / vmax
        body.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="#b00020" stroke-width="1.5" stroke-dasharray="4 3">'
            f"<title>{escape(threshold_text)}</title></line>"
        )
    return _svg(width, height, label, body)


def histogram(
    values: Sequence[float],
    *,
    label: str,
    lo: float = 0.0,
    hi: float = 1.0,
    n_bins: int = 20,
    threshold: float | None = None,
    colours: tuple[str, str] = ("#9e9e9e", "#2e7d32"),
    width: int = 900,
    height: int = 200,
) -> str:
    """Counts of `values` in equal bins over [lo, hi]; bins at or above `threshold` in colour 2."""
    counts = np.histogram(np.clip(np.asarray(values, dtype=float), lo, hi), n_bins, (lo, hi))[0]
    counts = counts.tolist()
    left, bottom, top = 40, height - 24, TOP
    plot_w, plot_h = width - left - 30, bottom - top
    cmax = max(counts) or 1
    bin_w = plot_w / n_bins
    body = [
        f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" fill="#666">{cmax}</text>',
        f'<text x="{left - 6}" y="{bottom}" text-anchor="end" fill="#666">0</text>',
    ]
    for i, count in enumerate(counts):
        x = left + i * bin_w
        start = lo + (hi - lo) * i / n_bins
        h = plot_h * count / cmax
        colour = colours[1] if threshold is not None and start >= threshold - 1e-9 else colours[0]
        if count:
            body.append(
                f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{bin_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{start:.2f}–'
                f"{start + (hi - lo) / n_bins:.2f}: {count}</title></rect>"
            )
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = left + plot_w * frac
        body.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" fill="#666">'
            f"{lo + (hi - lo) * frac:.2f}</text>"
        )
    if threshold is not None:
        x = left + plot_w * (threshold - lo) / (hi - lo)
        body.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" '
            'stroke="#b00020" stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
    return _svg(width, height, label, body)


class Effect(NamedTuple):
    """One row of a forest plot: differences as fractions (0.12 is 12 percentage points)."""

    label: str
    value: float | None  # the estimate that decides; None when it could not be measured
    low: float | None
    high: float | None
    other: float | None = None  # another estimate shown beside it (hollow), e.g. the pooled one
    highlight: bool = False


def _points(value: float) -> str:
    """A fraction in whole percentage points, signed ('+12', '-3', '+0': never '-0')."""
    return f"{round(value * 100):+d}"


def _pp(value: float) -> str:
    return f"{_points(value)} pp"


def effect_text(value: float | None, low: float | None, high: float | None) -> str:
    """A difference and its interval in percentage points: '+12 pp [+3, +21]'."""
    if value is None:
        return "not measured"
    if low is None or high is None:
        return _pp(value)
    return f"{_pp(value)} [{_points(low)}, {_points(high)}]"


def forest(
    rows: Sequence[Effect],
    *,
    label: str,
    colours: tuple[str, str] = ("#5c7cae", "#6a1b9a"),
    other_name: str = "pooled",
    width: int = 900,
    label_width: int = 340,
    value_w: int = 130,
) -> str:
    """A forest plot: per row a dot at its estimate and a line across its interval, a hollow
    marker at `other` (the estimate that does not decide), a vertical line at zero, the axis in
    percentage points. Highlighted rows are drawn in colour 2."""
    plot_w = width - label_width - value_w
    ends = [0.0] + [v for r in rows for v in (r.value, r.low, r.high, r.other) if v is not None]
    span = (max(ends) - min(ends)) * 100
    step = 5 if span <= 30 else 10 if span <= 80 else 25
    lo = math.floor(min(ends) * 100 / step) * step
    hi = math.ceil(max(ends) * 100 / step) * step
    hi = hi if hi > lo else lo + step

    def x_of(value: float) -> float:
        return label_width + plot_w * (value * 100 - lo) / (hi - lo)

    bottom = TOP + ROW * len(rows)
    height = bottom + 40
    body = []
    for tick in range(lo, hi + 1, step):
        x = x_of(tick / 100)
        shown = f"{tick:+d}" if tick else "0"
        body.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{bottom + 12}" text-anchor="middle" fill="#666">{shown}</text>'
        )
    body.append(
        f'<line class="zero" x1="{x_of(0):.1f}" y1="{TOP}" x2="{x_of(0):.1f}" y2="{bottom}" '
        'stroke="#444" stroke-width="1"/>'
        f'<text x="{label_width + plot_w / 2:.1f}" y="{bottom + 28}" text-anchor="middle" '
        'fill="#666">difference in percentage points</text>'
    )
    for i, row in enumerate(rows):
        y = TOP + i * ROW + ROW / 2
        colour = colours[1] if row.highlight else colours[0]
        text = effect_text(row.value, row.low, row.high)
        tip = text if row.other is None else f"{text}; {other_name} {_pp(row.other)}"
        body.append(_label(y, row.label, label_width))
        if row.value is not None and row.low is not None and row.high is not None:
            body.append(
                f'<line class="interval" x1="{x_of(row.low):.1f}" y1="{y}" '
                f'x2="{x_of(row.high):.1f}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
            )
        if row.other is not None:
            body.append(
                f'<circle class="other" cx="{x_of(row.other):.1f}" cy="{y}" r="4" fill="#fff" '
                f'stroke="{colour}" stroke-width="1.5"><title>{escape(row.label)}: '
                f"{escape(other_name)} {_pp(row.other)}</title></circle>"
            )
        if row.value is not None:
            body.append(
                f'<circle class="estimate" cx="{x_of(row.value):.1f}" cy="{y}" r="4.5" '
                f'fill="{colour}"><title>{escape(row.label)}: {escape(tip)}</title></circle>'
            )
        body.append(
            f'<text x="{label_width + plot_w + 8}" y="{y}" dominant-baseline="middle" '
            f'fill="{colour}">{escape(text)}</text>'
        )
    return _svg(width, height, label, body)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A row of coloured keys as HTML (not a plot)."""
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{colour}"></i>{escape(name)}</span>'
            for name, colour in items
        )
        + "</div>"
    )
