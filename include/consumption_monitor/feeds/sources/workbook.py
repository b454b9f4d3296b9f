"""The ledger workbook: one layout, written by the templates and read back by the file source.

Layout of every ledger workbook (one per ledger stream):

- data sheet named after the template (the stream's ``path``, e.g. 活动台账): row 1 the
  title, row 2 the header block (B2 填报单位, D2 统计期 YYYY-MM), row 4 the column headers
  (the spec's ``label``\\ s), data from row 5;
- ``说明``: how to fill it in, the columns and their codes;
- ``_codes`` (hidden): the code lists the drop-downs point at;
- ``_meta`` (hidden): feed, template name and version, so a file is recognised whatever
  its name.

Writing and reading share the layout (``workbook_read``) so they cannot drift apart.
Reading separates file-level problems (not an .xlsx, password, over a limit, wrong template
or version, a missing or renamed column, merged header or data cells, another sheet with
data, formulas without a computed value, no unit or period: :class:`FileRejected`) from
row-level ones, which it leaves in the records for the GX suites to quarantine (an
ambiguous date or number stays text, an unknown code stays as typed). Unambiguous variants
are normalised: text dates such as 2025年3月5日, 2025/3/5 or with full-width dashes,
full-width digits, thousands separators. Checks and limits: ``workbook_checks``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from consumption_monitor.feeds.sources.workbook_checks import (
    FileRejected,
    check_container,
    uncached_formulas,
)
from consumption_monitor.feeds.sources.workbook_read import (
    CODES_SHEET,
    FIRST_DATA_ROW,
    HEADER_ROW,
    HELP_SHEET,
    META_SHEET,
    PERIOD_CELL,
    UNIT_CELL,
    _text,
    check_merged_data,
    check_other_sheets,
    header_positions,
    locate,
    normalise_date,
    normalise_number,
    read_meta,
    read_period,
    read_rows,
    template_columns,
    template_version,
    unit_choices,
)
from consumption_monitor.feeds.spec import ExtractLimits, FeedSpec, StreamSpec

__all__ = [
    "CODES_SHEET",
    "FIRST_DATA_ROW",
    "HEADER_ROW",
    "HELP_SHEET",
    "META_SHEET",
    "FileRejected",
    "LedgerFile",
    "build_workbook",
    "normalise_date",
    "normalise_number",
    "read_workbook",
    "records_of",
    "scrub_workbook",
    "template_columns",
    "template_version",
    "unit_choices",
    "workbook_bytes",
]
MAX_ROWS = 2000  # rows the drop-downs cover
_STAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


@dataclass(frozen=True)
class LedgerFile:
    """A parsed ledger workbook: which stream, unit and period, and its records."""

    stream: str
    unit: str
    period: str
    version: str
    records: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # what loaded with a remark


# --- writing -----------------------------------------------------------------------------


def _codes_sheet(wb: Workbook, stream: StreamSpec) -> dict[str, str]:
    """Write every code list into the hidden sheet; returns column name -> range formula."""
    sheet = wb.create_sheet(CODES_SHEET)
    sheet.sheet_state = "hidden"
    ranges: dict[str, str] = {}
    for i, col in enumerate(c for c in stream.columns if c.choices):
        letter = get_column_letter(i + 1)
        sheet[f"{letter}1"] = col.label or col.description or col.name
        for j, code in enumerate(col.choices, start=2):
            sheet[f"{letter}{j}"] = code
        ranges[col.name] = f"'{CODES_SHEET}'!${letter}$2:${letter}${len(col.choices) + 1}"
    return ranges


def _drop_down(sheet, formula: str, cells: str, title: str) -> None:
    dv = DataValidation(type="list", formula1=formula, allow_blank=True, showDropDown=False)
    dv.error, dv.errorTitle = f"请从下拉列表中选择{title}", "代码不在清单内"
    dv.showErrorMessage = True
    sheet.add_data_validation(dv)
    dv.add(cells)


def _help_sheet(wb: Workbook, feed: FeedSpec, stream: StreamSpec) -> None:
    sheet = wb.create_sheet(HELP_SHEET)
    lines = [
        f"{feed.title}：{stream.path}（模板版本 {template_version(feed)}）",
        stream.description,
        f"1. 在「{stream.path}」工作表 B2 选择填报单位，D2 填写统计期（如 2025-03）。",
        f"2. 自第 {FIRST_DATA_ROW} 行起每行填写一条记录；"
        f"不要修改、合并或删除第 {HEADER_ROW} 行表头。",
        "3. 日期填写为日期格式或 2025-03-05；带下拉列表的列请从列表中选择。",
        "4. 更正已报送的数据：修改后重新报送整份文件，以同一单位、同一统计期最新报送的文件为准。",
        "",
        "列名 / 说明 / 可选值",
    ]
    for col in template_columns(stream):
        lines.append(f"{col.label} / {col.description} / {'、'.join(col.choices) or '—'}")
    for i, line in enumerate(lines, start=1):
        sheet[f"A{i}"] = line
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.column_dimensions["A"].width = 100


def build_workbook(
    feed: FeedSpec,
    stream: StreamSpec,
    *,
    unit: str | None = None,
    period: str | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> Workbook:
    """The template of ``stream``, optionally filled in (samples and tests fill it)."""
    wb = Workbook()
    sheet = wb.active
    sheet.title = stream.path
    columns = template_columns(stream)
    sheet["A1"] = f"{feed.title} · {stream.path}"
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A2"], sheet["C2"] = "填报单位", "统计期"
    sheet[UNIT_CELL], sheet[PERIOD_CELL] = unit, period
    sheet[PERIOD_CELL].number_format = "@"  # keep 2025-03 as text, not a date
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, col in enumerate(columns, start=1):
        cell = sheet.cell(HEADER_ROW, i, col.label)
        cell.font, cell.fill = Font(bold=True), fill
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        sheet.column_dimensions[get_column_letter(i)].width = 18
        if col.type == "date":
            for r in range(FIRST_DATA_ROW, FIRST_DATA_ROW + 200):
                sheet.cell(r, i).number_format = "yyyy-mm-dd"
    ranges = _codes_sheet(wb, stream)
    _drop_down(sheet, ranges["unit"], UNIT_CELL, "填报单位")
    for i, col in enumerate(columns, start=1):
        if col.name in ranges:
            letter = get_column_letter(i)
            span = f"{letter}{FIRST_DATA_ROW}:{letter}{FIRST_DATA_ROW + MAX_ROWS}"
            _drop_down(sheet, ranges[col.name], span, col.label or col.name)
    sheet.freeze_panes = f"A{FIRST_DATA_ROW}"
    for r, row in enumerate(rows or [], start=FIRST_DATA_ROW):
        for i, col in enumerate(columns, start=1):
            sheet.cell(r, i, row.get(col.name))
    _help_sheet(wb, feed, stream)
    meta = wb.create_sheet(META_SHEET)
    meta.sheet_state = "hidden"
    for r, (key, value) in enumerate(
        [("feed", feed.name), ("template", stream.path), ("version", template_version(feed))],
        start=1,
    ):
        meta.cell(r, 1, key), meta.cell(r, 2, value)
    return wb


def workbook_bytes(wb: Workbook) -> bytes:
    """The workbook as bytes that depend on its content only.

    openpyxl stamps the save time into docProps and the zip entries; a fixed stamp makes
    the same ledger the same bytes (the same sha256), so sample files are reproducible and
    a re-sent file is recognised as a duplicate."""
    from consumption_monitor.common.spreadsheet import text_only

    buffer = io.BytesIO()
    text_only(wb).save(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _STAMP.sub(rb"\g<1>2024-01-01T00:00:00Z\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, data)
    return out.getvalue()


# --- reading -----------------------------------------------------------------------------


def _open(body: bytes, where: str, limits: ExtractLimits):
    check_container(body, where, limits)
    try:
        return load_workbook(io.BytesIO(body), data_only=True)
    except Exception as exc:  # a zip that is not a workbook, a broken part, ...
        raise FileRejected(f"{where}：无法作为 Excel 工作簿打开（{type(exc).__name__}）") from exc


def read_workbook(
    feed: FeedSpec, body: bytes, file_name: str, limits: ExtractLimits | None = None
) -> LedgerFile:
    """Parse a dropped workbook; raises FileRejected naming the file, unit, sheet and cell
    (one line, Chinese). What loads with a remark is in ``LedgerFile.notes``."""
    limits = limits or feed.limits
    wb = _open(body, f"文件 {file_name}", limits)
    stream = read_meta(wb, feed, f"文件 {file_name}")
    if stream.path not in wb.sheetnames:
        raise FileRejected(f"文件 {file_name}：缺少工作表「{stream.path}」")
    sheet = wb[stream.path]
    layout = locate(sheet, stream)
    unit = _text(layout.unit)
    in_sheet = f"工作表「{stream.path}」"
    if unit not in unit_choices(stream):
        raise FileRejected(
            f"文件 {file_name} {in_sheet} {layout.unit_cell}「填报单位」「{unit}」"
            "不在责任单位清单内"
        )
    where_file = f"文件 {file_name}（{unit}）"
    where = f"{where_file} {in_sheet}"
    period = read_period(layout.period, f"{where} {layout.period_cell}")
    positions = header_positions(sheet, stream, where, layout.header_row)
    check_merged_data(sheet, where, layout.first_data_row)
    check_other_sheets(wb, stream, where_file)
    formulas = uncached_formulas(body, stream.path, set(positions.values()), layout.first_data_row)
    if formulas:
        cells = "、".join(formulas[:5]) + (f"等 {len(formulas)} 格" if len(formulas) > 5 else "")
        raise FileRejected(
            f"{where} 单元格 {cells} 为公式但没有计算结果（文件未经 Excel 计算保存），"
            "请在 Excel 中打开、保存后重新报送"
        )
    rows = read_rows(
        sheet,
        stream,
        layout,
        positions,
        where=where,
        max_rows=limits.max_rows_per_sheet,
        period=period,
        unit=unit,
        source_file=file_name,
        _sheet=stream.path,
    )
    notes = [f"{where_file} 表头位置与模板不同，已按表头文字识别", *rows.notes(where)]
    if (layout.unit_cell, layout.period_cell, layout.header_row) == (
        UNIT_CELL,
        PERIOD_CELL,
        HEADER_ROW,
    ):
        notes = notes[1:]
    return LedgerFile(stream.name, unit, period, template_version(feed), rows.records, notes)


def records_of(feed: FeedSpec, stream: str, body: bytes, file_name: str) -> list[dict[str, Any]]:
    """The records of an archived workbook (how ``read_records`` re-parses xlsx pages)."""
    parsed = read_workbook(feed, body, file_name)
    if parsed.stream != stream:
        raise ValueError(f"{file_name} is a {parsed.stream} ledger, archived as {stream}")
    return parsed.records


def scrub_workbook(body: bytes, tokenise: Callable[[str, str], str]) -> tuple[bytes, int]:
    """The workbook with every ID and mobile number in any cell of any sheet replaced (by
    content, ``feeds.pii_scan``), and how many were replaced; the same bytes when none was.

    Text cells are compared in their NFKC form (full-width digits are digits), as the
    reader normalises them. A protected workbook is written from cell values (formulas'
    cached values), so it re-reads to the same records with the identifiers replaced."""
    from consumption_monitor.feeds.pii_scan import has_candidates, scrub

    wb = load_workbook(io.BytesIO(body), data_only=True)
    found = 0
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str):
                    value = unicodedata.normalize("NFKC", value)
                    if not has_candidates(value.encode()):
                        continue
                elif not isinstance(value, int) or isinstance(value, bool):
                    continue
                new, n = scrub(value, tokenise)
                if n:
                    cell.value, found = new, found + n
    return (workbook_bytes(wb), found) if found else (body, 0)
