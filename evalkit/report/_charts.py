"""Charts as inline SVG, generated when the site is built: no JS library, nothing to load, works offline.

Colours come from CSS classes (`series-0`..`series-7`, `bar`, `whisker`), so the page's stylesheet owns the
palette and no `style` attribute is needed (the Content-Security-Policy forbids inline style attributes).
Every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Axis", "Bar", "axis_for", "bar_chart", "radar_chart"]

SERIES = 8


@dataclass(frozen=True)
class Bar:
    """One bar: a label, a value and an optional interval [low, high]."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    note: str = ""


def _num(x: float, decimals: int = 1) -> str:
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Axis:
    """A value axis that starts and ends on a tick, so every bar, dot and whisker lies within the labelled range."""

    lo: float
    hi: float
    step: float

    @property
    def ticks(self) -> list[float]:
        """The tick values from `lo` to `hi` inclusive."""
        count = round((self.hi - self.lo) / self.step)
        return [round(self.lo + i * self.step, 10) for i in range(count + 1)]

    @property
    def decimals(self) -> int:
        """Decimals that tell neighbouring ticks apart."""
        return next((d for d in range(8) if abs(round(self.step, d) - self.step) < 1e-9), 8)


def _nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)


def axis_for(bars: Sequence[Bar], zero: bool, target_ticks: int = 5) -> Axis:
    """The axis for `bars`: covers every value and interval end, from 0 when `zero`, ends rounded out to ticks.

    A single value (or equal values) gets a span of 10 % around it; dots (`zero=False`) keep a step of room from
    the axis ends.

    Examples:
        >>> axis_for([Bar("m", 35.0, 28.0, 42.7)], zero=True).ticks
        [0, 10, 20, 30, 40, 50]
        >>> a = axis_for([Bar("m", 17.33)], zero=False); a.lo < 17.33 < a.hi
        True
    """
    values = [b.value for b in bars] + [v for b in bars for v in (b.low, b.high) if v is not None]
    lo, hi = min(values), max(values)
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        half = max(abs(lo) * 0.05, 0.5)
        lo, hi = (lo, lo + 2 * half) if zero and lo == 0 else (lo - half, hi + half)
    step = _nice_step((hi - lo) / target_ticks)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    if not zero:  # a dot exactly on the frame reads as cut off
        start -= step if lo - start < 0.05 * step else 0
        end += step if end - hi < 0.05 * step else 0
    return Axis(round(start, 10), round(end, 10), step)


def bar_chart(bars: Sequence[Bar], *, title: str, fmt: str = "{:.1f}", zero: bool = True,
              width: int = 640, label_width: int = 180) -> Markup:
    """Horizontal bars, one per row, with 95 % interval whiskers when `low`/`high` are given.

    `zero=False` draws dots instead of bars (for ratings whose origin means nothing).
    """
    if not bars:
        return Markup("")
    row_h, top = 22, 8
    height = top + row_h * len(bars) + 24
    plot_w = width - label_width - 64
    axis = axis_for(bars, zero)
    lo, hi = axis.lo, axis.hi

    def x(v: float) -> float:
        return label_width + (v - lo) / (hi - lo) * plot_w

    parts = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
              f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'),
             f"<title>{escape(title)}</title>"]
    for tick in axis.ticks:
        tx = x(tick)
        parts.append(f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 20}"/>'
                     f'<text class="tick" x="{tx:.1f}" y="{height - 6}" text-anchor="middle">'
                     f'{_num(tick, axis.decimals)}</text>')
    for i, bar in enumerate(bars):
        y = top + i * row_h
        mid = y + row_h / 2
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        parts.append(f'<text class="label" x="{label_width - 8}" y="{mid + 4:.1f}" text-anchor="end">'
                     f"<title>{escape(bar.label)}</title>{escape(label)}</text>")
        if zero:
            x0, x1 = sorted((x(0.0), x(bar.value)))
            parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" '
                         f'height="{row_h - 8}" rx="2"/>')
        else:
            parts.append(f'<circle class="dot" cx="{x(bar.value):.1f}" cy="{mid:.1f}" r="4"/>')
        if bar.low is not None and bar.high is not None:
            a, b = x(bar.low), x(bar.high)
            parts.append(f'<path class="whisker" d="M{a:.1f} {mid:.1f}H{b:.1f}M{a:.1f} {mid - 4:.1f}'
                         f'V{mid + 4:.1f}M{b:.1f} {mid - 4:.1f}V{mid + 4:.1f}"/>')
        text = fmt.format(bar.value) + (f" {bar.note}" if bar.note else "")
        parts.append(f'<text class="value" x="{label_width + plot_w + 6}" y="{mid + 4:.1f}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def radar_chart(axes: Sequence[str], series: Sequence[tuple[str, dict[str, float]]], *, title: str,
                max_value: float | None = None, size: int = 420) -> Markup:
    """A radar (spider) chart: one polygon per series over the axes; at most 8 series, in order."""
    if len(axes) < 3 or not series:
        return Markup("")
    series = list(series)[:SERIES]
    top = max_value or max((v for _, vals in series for v in vals.values()), default=1.0) or 1.0
    cx = cy = size / 2
    radius = size / 2 - 70

    def point(i: int, v: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / len(axes)
        r = radius * max(0.0, min(v, top)) / top
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    parts = [(f'<svg class="chart radar" viewBox="0 0 {size} {size + 20 * len(series)}" width="{size}" '
              f'height="{size + 20 * len(series)}" role="img" aria-label="{escape(title)}" '
              f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>')]
    for level in (0.25, 0.5, 0.75, 1.0):
        ring = " ".join(f"{px:.1f},{py:.1f}" for px, py in (point(i, top * level) for i in range(len(axes))))
        parts.append(f'<polygon class="grid" points="{ring}"/>')
    for i, axis in enumerate(axes):
        ex, ey = point(i, top)
        lx, ly = point(i, top * 1.13)
        anchor = "middle" if abs(lx - cx) < 8 else ("start" if lx > cx else "end")
        parts.append(f'<line class="grid" x1="{cx}" y1="{cy}" x2="{ex:.1f}" y2="{ey:.1f}"/>'
                     f'<text class="label" x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">{escape(axis)}</text>')
    for k, (name, values) in enumerate(series):
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in (point(i, values.get(a, 0.0)) for i, a in enumerate(axes)))
        parts.append(f'<polygon class="area series-{k}" points="{pts}"><title>{escape(name)}</title></polygon>')
        ly = size + 20 * k + 4
        parts.append(f'<rect class="swatch series-{k}" x="20" y="{ly}" width="12" height="12" rx="2"/>'
                     f'<text class="legend" x="38" y="{ly + 11}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
