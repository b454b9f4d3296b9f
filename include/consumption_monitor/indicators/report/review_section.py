"""The monthly report's verification (核实) and revisions sections.

Kept apart from the measure tables: the report shows the review items of the year's
current batches (open ones first, each with its owner and, once given, the explanation),
marks every KPI whose figure rests on a warning nobody has explained yet (its feed has an
open item in the year up to the report period) with a footnote, and lists the period's
revised figures and the revision summary per indicator (``indicators/revisions.py``).
Read from the warehouse tables only: the indicators layer does not import validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from openpyxl import Workbook
from sqlalchemy import Engine, select

from consumption_monitor.indicators.catalog import Kpi
from consumption_monitor.indicators.revisions import revision_summary, revisions
from consumption_monitor.warehouse import schema

ITEMS_SHOWN = 50
REVISIONS_SHOWN = 50


@dataclass
class ReviewNotes:
    items: list[dict[str, Any]] = field(default_factory=list)  # footnote n = index + 1
    marks: dict[str, list[int]] = field(default_factory=dict)  # kpi id -> open footnotes
    revisions: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, kpi_id: str) -> str:
        notes = self.marks.get(kpi_id)
        return (
            "".join(f"[{n}]" for n in notes[:3]) + ("…" if len(notes) > 3 else "") if notes else ""
        )


def review_notes(engine: Engine, period: str, kpis: list[Kpi]) -> ReviewNotes:
    items_t, batch = schema.audit_review_item, schema.audit_load_batch
    stmt = (
        select(items_t)
        .join(batch, batch.c.batch_id == items_t.c.batch_id)
        .where(
            batch.c.is_current,
            items_t.c.period >= f"{period[:4]}-01",
            items_t.c.period <= period,
            items_t.c.status != "rejected",
        )
        .order_by(items_t.c.status != "open", items_t.c.period.desc(), items_t.c.feed)
    )
    with engine.connect() as conn:
        items = [dict(r) for r in conn.execute(stmt).mappings()]
    marks: dict[str, list[int]] = {}
    for n, item in enumerate(items, start=1):
        if item["status"] != "open":
            continue
        for kpi in kpis:
            if kpi.feed == item["feed"]:
                marks.setdefault(kpi.id, []).append(n)
    revised = [r for r in revisions(engine, period=period)]
    summary = [s for s in revision_summary(engine) if s["periods_revised"]]
    return ReviewNotes(items, marks, revised, summary)


def _row(cells: list[Any]) -> str:
    return "<tr>" + "".join(f"<td>{escape('—' if c is None else c)}</td>" for c in cells) + "</tr>"


def render_review_html(notes: ReviewNotes | None) -> Markup:
    """The two sections as HTML (empty when there is nothing to say)."""
    if notes is None:
        return Markup("")
    labels = schema.REVIEW_STATUS_LABELS
    out = ['<section class="review" id="review">', "<h2>数据核实情况</h2>"]
    open_count = sum(1 for i in notes.items if i["status"] == "open")
    if notes.items:
        out.append(
            f"<p>本年核实项 {len(notes.items)} 项，其中待核实 {open_count} 项；"
            "指标后的 [n] 表示其数据有尚未说明的警告。</p>"
        )
        out.append(
            "<table><thead><tr><th>注</th><th>统计期</th><th>数据源</th><th>状态</th>"
            "<th>责任单位</th><th>警告</th><th>说明</th></tr></thead><tbody>"
        )
        for n, i in enumerate(notes.items[:ITEMS_SHOWN], start=1):
            said = f"{i['explanation']}（{i['explained_by']}）" if i["explanation"] else None
            cells = [f"[{n}]", i["period"], i["feed"], labels[i["status"]], i["owner"]]
            out.append(_row([*cells, i["message"], said]))
        out.append("</tbody></table>")
    else:
        out.append("<p>本年无核实项。</p>")
    out.append("<h2>数据修订</h2>")
    if notes.revisions:
        out.append(
            "<table><thead><tr><th>数据源</th><th>指标</th><th>对象</th><th>首次公布</th>"
            "<th>最新</th><th>修订</th><th>修订%</th><th>版本数</th></tr></thead><tbody>"
        )
        for r in notes.revisions[:REVISIONS_SHOWN]:
            pct = None if r["revision_pct"] is None else f"{r['revision_pct']:+.2f}"
            out.append(_row([*_revision_cells(r)[:6], pct, r["versions"]]))
        out.append("</tbody></table>")
    else:
        out.append("<p>本期数据未经修订。</p>")
    if notes.summary:
        out.append("<p>各指标修订情况（全部已公布期）：</p><ul>")
        for s in notes.summary:
            out.append(
                f"<li>{escape(s['feed'])}.{escape(s['stream'])} {escape(s['indicator'])}："
                f"{s['periods_revised']}/{s['periods']} 期有修订，平均绝对修订 "
                f"{float(s['mean_abs_revision'] or 0):.4g}</li>"
            )
        out.append("</ul>")
    out.append("</section>")
    return Markup("\n".join(out))


def _revision_cells(r: dict[str, Any]) -> list[Any]:
    """One revision row as the report's table and sheet show it (same columns, same order)."""
    return [
        f"{r['feed']}.{r['stream']}",
        r["indicator"],
        r["entity_key"],
        r["first_published_value"],
        r["latest_value"],
        r["revision_value"],
        r["revision_pct"],
        r["versions"],
    ]


def add_review_sheet(wb: Workbook, notes: ReviewNotes | None) -> None:
    """The same sections as a sheet 核实与修订 of the report workbook (before 趋势)."""
    if notes is None:
        return
    trends = wb.sheetnames.index("趋势") if "趋势" in wb.sheetnames else None
    ws = wb.create_sheet("核实与修订", trends)  # before the long trend sheet
    labels = schema.REVIEW_STATUS_LABELS
    ws.append(["注", "统计期", "数据源", "状态", "责任单位", "警告", "说明", "说明人"])
    for n, i in enumerate(notes.items, start=1):
        status = labels[i["status"]]
        ws.append(
            [
                f"[{n}]",
                i["period"],
                i["feed"],
                status,
                i["owner"],
                i["message"],
                i["explanation"],
                i["explained_by"],
            ]
        )
    ws.append([])
    ws.append(["数据源", "指标", "对象", "首次公布", "最新", "修订", "修订%", "版本数"])
    for r in notes.revisions:
        ws.append(_revision_cells(r))
