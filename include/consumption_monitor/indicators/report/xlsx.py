"""The monthly report as an XLSX workbook with the same tables as the HTML page: a 总览
sheet (status counts), one sheet per action and a 趋势 sheet with the indicators' series
(each labelled 当月 or 累计). Counts stay numbers, shown whole with their unit through the
cell's number format (5 场)."""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from consumption_monitor.common.spreadsheet import text_only
from consumption_monitor.indicators.report.data import COLUMNS, ReportData
from consumption_monitor.indicators.report.html import STATUS_COLOURS
from consumption_monitor.indicators.report.review_section import add_review_sheet

HEADER_FILL = PatternFill("solid", fgColor="F5F5F5")
WIDTHS = {"name": 34, "units": 40, "actual": 16, "target": 10, "expected": 14, "yoy_basis": 13}
COUNT_FORMATS = {"actual": '#,##0 "{unit}"', "expected": '#,##0.0 "{unit}"'}


def _sheet_title(numeral: str, title: str) -> str:
    return f"{numeral}、{title}"[:31]


def build_workbook(data: ReportData) -> Workbook:
    wb = Workbook()
    overview = wb.active
    overview.title = "总览"
    overview.append([f"{data.plan}监测月报", f"统计期 {data.period}"])
    overview.append(["状态", "指标数"])
    for status, n in data.status_counts.items():
        overview.append([status, n])
        overview.cell(overview.max_row, 1).font = Font(
            color=STATUS_COLOURS.get(status, "#757575")[1:]
        )
    for i, note in enumerate(data.notes, start=1):
        overview.append([f"注{i}", note])
    overview.column_dimensions["A"].width = 40
    for section in data.sections:
        ws = wb.create_sheet(_sheet_title(section.numeral, section.title))
        ws.append([header for _, header in COLUMNS])
        for cell in ws[1]:
            cell.font, cell.fill = Font(bold=True), HEADER_FILL
        for line in section.lines:
            cells = line.cells()
            ws.append([cells[key] for key, _ in COLUMNS])
            if line.is_count:
                for key, pattern in COUNT_FORMATS.items():
                    cell = ws.cell(ws.max_row, [k for k, _ in COLUMNS].index(key) + 1)
                    if isinstance(cell.value, int | float):
                        cell.number_format = pattern.format(unit=line.kpi.unit)
            status_cell = ws.cell(ws.max_row, [k for k, _ in COLUMNS].index("status") + 1)
            status_cell.font = Font(color="FFFFFF", bold=True)
            status_cell.fill = PatternFill(
                "solid", fgColor=STATUS_COLOURS.get(line.status, "#757575")[1:]
            )
        for i, (key, _) in enumerate(COLUMNS, start=1):
            ws.column_dimensions[get_column_letter(i)].width = WIDTHS.get(key, 11)
            for cell in ws[get_column_letter(i)][1:]:
                if isinstance(cell.value, float) and cell.number_format == "General":
                    cell.number_format = "#,##0.00"
                cell.alignment = Alignment(vertical="center", wrap_text=key == "units")
        ws.freeze_panes = "C2"
    trends = wb.create_sheet("趋势")
    trends.append(["指标编号", "指标", "统计期", "值", "口径"])
    for line in data.lines:
        for period, value in line.trend:
            trends.append([line.kpi.id, line.kpi.name, period, value, line.trend_basis])
    add_review_sheet(wb, data.review)
    return wb


def workbook_bytes(data: ReportData) -> bytes:
    buffer = BytesIO()
    text_only(build_workbook(data)).save(buffer)
    return buffer.getvalue()
