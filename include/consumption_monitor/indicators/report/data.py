"""What the monthly report shows, gathered once for the HTML page and the XLSX workbook.

The report reads the latest snapshot of the period (``mart_indicator_snapshot_latest``)
and, for the economic indicators, the latest snapshots of the 24 months up to it (trend
charts). Both renderings take the same rows, so the page and the workbook always agree.

Labels come from the snapshot view (``pace_label``, ``yoy_label``: 可比口径计算 marks a
computed like-for-like YoY); a trend is one series, 当月 where every point has a month's
value, else 累计 (year to date), and says which. Counts (units in ``COUNT_UNITS``) print
as whole numbers with their unit ("5 场"); an expected count may be fractional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from consumption_monitor.common.periods import Period
from consumption_monitor.indicators.catalog import (
    COUNT_UNITS,
    STATUSES,
    Kpi,
    Measure,
    load_catalog,
)
from consumption_monitor.indicators.report.notes import report_notes
from consumption_monitor.indicators.snapshots import read_snapshot

TREND_MONTHS = 24
INDICATOR_STATUS = "监测指标"  # shown for indicators, which have no target and no status
TREND_BASES = {"actual_month": "当月", "actual_ytd": "累计"}

COLUMNS: tuple[tuple[str, str], ...] = (  # key, header: the table of every action
    ("measure", "措施"),
    ("name", "指标"),
    ("unit", "单位"),
    ("actual", "本年累计/进度"),
    ("target", "目标"),
    ("pace", "进度方式"),
    ("expected", "按进度应完成"),
    ("ratio", "完成度"),
    ("yoy", "累计同比%"),
    ("yoy_basis", "同比口径"),
    ("status", "状态"),
    ("data_period", "数据期"),
    ("validation", "校验"),
    ("units", "责任单位"),
)


@dataclass
class KpiLine:
    """One KPI of the report with its snapshot values and the figures a bar needs."""

    kpi: Kpi
    measure: Measure
    snap: dict[str, Any]
    trend: list[tuple[str, float]] = field(default_factory=list)
    trend_basis: str = ""  # 当月 or 累计

    @property
    def is_count(self) -> bool:
        return self.kpi.unit in COUNT_UNITS

    @property
    def status(self) -> str:
        return self.snap.get("status") or INDICATOR_STATUS

    @property
    def progress_pct(self) -> float | None:
        """Actual as a share of the yearly target (bar length), capped at 100."""
        actual, target = self.snap.get("actual_ytd"), self.snap.get("target_value")
        if actual is None or not target:
            return None
        return max(0.0, min(100.0, actual * 100.0 / target))

    @property
    def pace_pct(self) -> float | None:
        """Expected to date as a share of the target (the pace line)."""
        expected, target = self.snap.get("expected_to_date"), self.snap.get("target_value")
        if expected is None or not target:
            return None
        return max(0.0, min(100.0, expected * 100.0 / target))

    def cells(self) -> dict[str, Any]:
        """The row of the action tables, as numbers and text (XLSX) or to format (HTML)."""
        s = self.snap
        target = (
            f"{s['target_comparator']} {s['target_value']:g}"
            + (f" {self.kpi.unit}" if self.is_count else "")
            if s.get("target_value") is not None
            else ""
        )
        actual: Any = s.get("actual_ytd")
        if self.kpi.kind == "milestone":
            actual = s.get("milestone_status") or "—"
        return {
            "measure": self.measure.number,
            "name": self.kpi.name,
            "unit": self.kpi.unit or "",
            "actual": actual,
            "target": target,
            "pace": s.get("pace_label") or "",
            "expected": s.get("expected_to_date"),
            "ratio": s.get("completion_ratio"),
            "yoy": s.get("yoy_ytd_pct"),
            "yoy_basis": s.get("yoy_label") if s.get("yoy_ytd_pct") is not None else "",
            "status": self.status,
            "data_period": s.get("data_period") or "",
            "validation": s.get("validation_state") or "",
            "units": "、".join(self.kpi.units or self.measure.responsible_units),
        }


@dataclass
class ActionSection:
    numeral: str
    title: str
    measures: list[Measure]
    lines: list[KpiLine]


@dataclass
class ReportData:
    period: str
    plan: str
    sections: list[ActionSection]
    status_counts: dict[str, int]
    computed_at: Any
    notes: list[str] = field(default_factory=list)  # footnotes (report/notes.py)
    review: Any = None  # review_section.ReviewNotes: 核实 items, footnote marks, revisions

    @property
    def lines(self) -> list[KpiLine]:
        return [line for section in self.sections for line in section.lines]


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def trend_series(engine: Engine, period: str, kpi_ids: list[str]) -> dict[str, tuple[str, list]]:
    """Per KPI, its basis (当月 or 累计) and (period, value) of the latest snapshots over the
    24 months to ``period``: the month's value where every point has one, else the
    year-to-date value (never a mix)."""
    if not kpi_ids:
        return {}
    first = str(Period.parse(period).shift(1 - TREND_MONTHS))
    sql = text(
        "select kpi_id, period, actual_month, actual_ytd from mart_indicator_snapshot_latest "
        "where period between :first and :last and actual_ytd is not null order by period"
    )
    with engine.connect() as conn:
        rows = conn.execute(sql, {"first": first, "last": period}).mappings().all()
    by_kpi: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kpi_id"] in kpi_ids:
            by_kpi.setdefault(r["kpi_id"], []).append(dict(r))
    out: dict[str, list] = {}
    for kpi_id, items in by_kpi.items():
        monthly = all(i["actual_month"] is not None for i in items)
        key = "actual_month" if monthly else "actual_ytd"
        out[kpi_id] = (TREND_BASES[key], [(i["period"], float(_float(i[key]))) for i in items])
    return out


def report_data(engine: Engine, period: str) -> ReportData:
    """The report of ``period`` from the latest snapshot (compute it first)."""
    catalog = load_catalog()
    snaps = {r["kpi_id"]: r for r in read_snapshot(engine, period)}
    indicators = [k.id for k in catalog.kpis if k.kind == "indicator"]
    trends = trend_series(engine, period, indicators)
    sections = []
    for numeral, title in catalog.actions.items():
        measures = [m for m in catalog.measures if m.action == numeral]
        lines = []
        for m in measures:
            for kpi in m.kpis:
                basis, points = trends.get(kpi.id, ("", []))
                lines.append(KpiLine(kpi, m, snaps.get(kpi.id, {}), points, basis))
        sections.append(ActionSection(numeral, title, measures, lines))
    counts = {s: 0 for s in (*STATUSES, INDICATOR_STATUS)}
    for section in sections:
        for line in section.lines:
            counts[line.status] = counts.get(line.status, 0) + 1
    computed = max((str(r.get("computed_at")) for r in snaps.values()), default=None)
    notes = report_notes(engine, catalog, period)
    from consumption_monitor.indicators.report.review_section import review_notes

    review = review_notes(engine, period, catalog.kpis)
    return ReportData(period, catalog.plan, sections, counts, computed, notes, review)
