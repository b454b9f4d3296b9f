"""The monthly report as one self-contained HTML page (Chinese): inline CSS and inline SVG
charts, no script, font or stylesheet from elsewhere, so it opens offline, in a mail client
and inside the Airflow UI's iframe alike."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from consumption_monitor.common.style import COLOURS, style_element
from consumption_monitor.indicators.report.data import KpiLine, ReportData
from consumption_monitor.indicators.report.review_section import render_review_html

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS_COLOURS = COLOURS  # the shared visual language (common/style.py)


def fmt(value, digits: int = 2) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def fmt_count(value, unit: str) -> str:
    """A count with its unit: whole numbers as such ("5 场"), an expected share of one
    with one decimal ("2.5 场")."""
    if value is None or value == "" or isinstance(value, str):
        return fmt(value)
    whole = abs(value - round(value)) < 1e-9
    return f"{value:,.0f} {unit}" if whole else f"{value:,.1f} {unit}"


def fmt_value(line: KpiLine, value) -> str:
    """A KPI's value as the report prints it (counts whole, with their unit)."""
    return fmt_count(value, line.kpi.unit or "") if line.is_count else fmt(value)


def trend_svg(line: KpiLine, width: int = 300, height: int = 90) -> Markup:
    """An inline SVG line chart of the KPI's trend (empty string when no points)."""
    points = line.trend
    if not points:
        return Markup("")
    pad_x, pad_top, pad_bottom = 6, 14, 16
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    step = (width - 2 * pad_x) / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        y = pad_top + (height - pad_top - pad_bottom) * (1 - (v - low) / span)
        return round(pad_x + i * step, 1), round(y, 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="1.8"/>' for x, y in coords)
    first, last = points[0][0], points[-1][0]
    basis = line.trend_basis
    label = (
        f'<text x="{pad_x}" y="{height - 3}">{first}</text>'
        f'<text x="{width - pad_x}" y="{height - 3}" text-anchor="end">{last}</text>'
        f'<text x="{width // 2}" y="{height - 3}" text-anchor="middle">{basis}</text>'
        f'<text x="{pad_x}" y="10">最高 {fmt_value(line, high)}</text>'
        f'<text x="{width - pad_x}" y="10" text-anchor="end">'
        f"最新 {fmt_value(line, values[-1])}</text>"
    )
    return Markup(
        f'<svg class="trend" role="img" aria-label="{line.kpi.name}趋势（{basis}）" '
        f'viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><polyline points="{path}"/>'
        f'<g class="dots">{dots}</g><g class="labels">{label}</g></svg>'
    )


def render_html(data: ReportData) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.globals["fmt_value"] = fmt_value
    template = env.get_template("report.html.j2")
    return template.render(
        data=data,
        colours=STATUS_COLOURS,
        trend_svg=trend_svg,
        measures_count=19,
        stylesheet=Markup(style_element()),
        review_html=render_review_html(data.review),
    )
