"""The patient's progress chart: a line chart drawn on the server as SVG (no script, no
library), accessible without seeing it.

Interface (the patient's clinical page and the portal, issue 20):

- ``Series(name, points, unit="")``: one line; ``points`` are ``(date, number)`` pairs.
- ``series_from(entries, keys, labels=None, units=None) -> list[Series]``: series from
  ``(date, {key: value})`` rows (an encounter's wellness scores or vitals), one per key
  with at least one value.
- ``line_chart(series, *, title, description="", y_label="", y_range=None,
  chart_id="chart") -> SafeString``: a ``<figure>`` holding the SVG — ``role="img"`` with
  ``<title>`` and ``<desc>``, labelled axes, each series with its own colour *and* dash
  pattern and marker shape (never colour alone), every point titled with its value and
  date — and the same numbers as a ``<table>`` (in a ``<details>``, for screen readers and
  for reading exact values). Without points: a short "no measurements yet" paragraph.
  ``wellness_chart(entries)`` draws the five 0–10 scales.

Every text is escaped; dates are shown DD/MM/AAAA in the active language's format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.utils import formats
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from .vitals import WELLNESS_SCALES

WIDTH, HEIGHT = 640, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 16, 64
# Okabe–Ito colours (distinguishable with colour-blindness), each with its dash and marker.
STYLES = [
    ("#0072B2", "", "circle"),
    ("#D55E00", "6 3", "square"),
    ("#009E73", "2 3", "triangle"),
    ("#CC79A7", "8 3 2 3", "diamond"),
    ("#8a6d00", "12 4", "circle"),
    ("#56B4E9", "4 4", "square"),
    ("#000000", "1 2", "triangle"),
]


@dataclass
class Series:
    name: str
    points: list[tuple[date, float]] = field(default_factory=list)
    unit: str = ""


def _day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def series_from(entries: Iterable, keys, labels=None, units=None) -> list[Series]:
    """Series of ``keys`` from ``(date, {key: value})`` rows, oldest first; keys with no value
    at all are left out."""
    labels, units = labels or {}, units or {}
    by_key: dict[str, list] = {key: [] for key in keys}
    for when, values in entries:
        for key in keys:
            value = (values or {}).get(key)
            if value not in (None, ""):
                by_key[key].append((_day(when), float(Decimal(str(value)))))
    return [
        Series(str(labels.get(key, key)), sorted(points, key=lambda p: p[0]), units.get(key, ""))
        for key, points in by_key.items()
        if points
    ]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step / 1000:
        ticks.append(round(value, 6))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 6))
    return ticks


def _number(value: float) -> str:
    return formats.number_format(Decimal(str(round(value, 2))).normalize())


def _date(value: date) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def _marker(shape: str, x: float, y: float, colour: str, label: str) -> str:
    title = f"<title>{conditional_escape(label)}</title>"
    if shape == "square":
        return (
            f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}">'
            f"{title}</rect>"
        )
    if shape == "triangle":
        return (
            f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} '
            f'{x - 5:.1f},{y + 4:.1f}" fill="{colour}">{title}</polygon>'
        )
    if shape == "diamond":
        return (
            f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} '
            f'{x - 5:.1f},{y:.1f}" fill="{colour}">{title}</polygon>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{title}</circle>'


def line_chart(
    series: list[Series],
    *,
    title: str,
    description: str = "",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    chart_id: str = "chart",
) -> SafeString:
    """The chart of ``series`` (see the module docstring)."""
    series = [s for s in series if s.points]
    if not series:
        return format_html(
            '<p class="chart-empty" id="{}">{}: {}</p>',
            chart_id,
            title,
            _("no measurements yet."),
        )
    dates = sorted({d for s in series for d, _v in s.points})
    values = [v for s in series for _d, v in s.points]
    low, high = y_range if y_range else (min(values), max(values))
    if not y_range:
        pad = (high - low) * 0.1 or 1
        low, high = low - pad, high + pad
    ticks = _ticks(low, high) if not y_range else _ticks(low, high, count=int(high - low) // 2 or 1)
    low, high = min(ticks[0], low), max(ticks[-1], high)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    first, last = dates[0], dates[-1]
    span = (last - first).days

    def x_of(day: date) -> float:
        if span == 0:
            return MARGIN_LEFT + plot_w / 2
        return MARGIN_LEFT + plot_w * (day - first).days / span

    def y_of(value: float) -> float:
        return MARGIN_TOP + plot_h * (1 - (value - low) / (high - low))

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    summary = description or _("%(series)s from %(first)s to %(last)s.") % {
        "series": ", ".join(s.name for s in series),
        "first": _date(first),
        "last": _date(last),
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="progress-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{conditional_escape(title_id)} {conditional_escape(desc_id)}">',
        f'<title id="{conditional_escape(title_id)}">{conditional_escape(title)}</title>',
        f'<desc id="{conditional_escape(desc_id)}">{conditional_escape(summary)}</desc>',
    ]
    # Axes and grid.
    bottom, right = MARGIN_TOP + plot_h, MARGIN_LEFT + plot_w
    parts.append('<g class="axis y-axis" font-size="11" fill="#333">')
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{conditional_escape(_number(tick))}</text>"
        )
    parts.append("</g>")
    parts.append(
        f'<line class="axis-line" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT}" y1="{MARGIN_TOP}" '
        f'y2="{bottom}" stroke="#333"/>'
        f'<line class="axis-line" x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" '
        f'stroke="#333"/>'
    )
    shown_dates = dates if len(dates) <= 8 else dates[:: math.ceil(len(dates) / 8)]
    parts.append('<g class="axis x-axis" font-size="11" fill="#333">')
    for day in shown_dates:
        x = x_of(day)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{conditional_escape(_date(day))}</text>"
        )
    parts.append("</g>")
    date_label = conditional_escape(_("Date"))
    parts.append(
        f'<text class="axis-label" x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{bottom + 32}" '
        f'text-anchor="middle" font-size="12">{date_label}</text>'
    )
    if y_label:
        parts.append(
            f'<text class="axis-label" x="14" y="{MARGIN_TOP + plot_h / 2:.1f}" font-size="12" '
            f'text-anchor="middle" transform="rotate(-90 14 {MARGIN_TOP + plot_h / 2:.1f})">'
            f"{conditional_escape(y_label)}</text>"
        )
    # Lines, markers and the legend.
    legend_y = HEIGHT - 12
    legend_x = MARGIN_LEFT
    for index, one in enumerate(series):
        colour, dash, shape = STYLES[index % len(STYLES)]
        coords = " ".join(f"{x_of(d):.1f},{y_of(v):.1f}" for d, v in one.points)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="series" data-series="{conditional_escape(one.name)}">')
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"'
            f"{dash_attr}/>"
        )
        for d, v in one.points:
            unit = f" {one.unit}" if one.unit else ""
            label = f"{one.name}: {_number(v)}{unit} ({_date(d)})"
            parts.append(_marker(shape, x_of(d), y_of(v), colour, label))
        parts.append("</g>")
        parts.append(
            f'<g class="legend-item"><line x1="{legend_x}" x2="{legend_x + 22}" '
            f'y1="{legend_y - 4}" y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"'
            f"{dash_attr}/>"
            + _marker(shape, legend_x + 11, legend_y - 4, colour, one.name)
            + f'<text x="{legend_x + 28}" y="{legend_y}" font-size="11">'
            f"{conditional_escape(one.name)}</text></g>"
        )
        legend_x += 40 + 7 * len(one.name)
    parts.append("</svg>")
    return mark_safe(  # noqa: S308 — every interpolated text above is escaped
        f'<figure class="progress-chart-figure" id="{conditional_escape(chart_id)}">'
        + "".join(parts)
        + _table(series, dates, title)
        + "</figure>"
    )


def _table(series: list[Series], dates: list[date], title: str) -> str:
    """The chart's numbers as a table: a row per date, a column per series."""
    head = "".join(
        f'<th scope="col">{conditional_escape(s.name)}'
        + (f" ({conditional_escape(s.unit)})" if s.unit else "")
        + "</th>"
        for s in series
    )
    values = [dict(s.points) for s in series]
    rows = []
    for day in dates:
        cells = "".join(
            f"<td>{conditional_escape(_number(v[day])) if day in v else '—'}</td>" for v in values
        )
        rows.append(f'<tr><th scope="row">{conditional_escape(_date(day))}</th>{cells}</tr>')
    summary = conditional_escape(_("Show the values as a table"))
    date_label = conditional_escape(_("Date"))
    return (
        f"<details><summary>{summary}</summary>"
        f"<table><caption>{conditional_escape(title)}</caption>"
        f'<thead><tr><th scope="col">{date_label}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


def wellness_chart(entries: Iterable, *, chart_id: str = "wellness-chart") -> SafeString:
    """The five 0–10 wellness scales over time, from ``(date, {scale key: score})`` rows."""
    labels = {key: scale.label for key, scale in WELLNESS_SCALES.items()}
    return line_chart(
        series_from(entries, list(WELLNESS_SCALES), labels),
        title=_("Wellness scores"),
        y_label=_("score (0–10)"),
        y_range=(0, 10),
        chart_id=chart_id,
    )
