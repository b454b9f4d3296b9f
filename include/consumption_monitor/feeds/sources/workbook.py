"""The ledger workbook: one layout, written by the templates and read back by the file source.

Layout of every ledger workbook (one per ledger stream):

- data sheet named after the template (the stream's ``path``, e.g. 活动台账): row 1 the
  title, row 2 the header block (B2 填报单位, D2 统计期 YYYY-MM), row 4 the column headers
  (the spec's ``label``\\ s), data from row 5;
- ``说明``: how to fill it in, the columns and their codes;
- ``_codes`` (hidden): the code lists the drop-downs point at;
- ``_meta`` (hidden): feed, template name and version, so a file is recognised whatever
  its name.

Writing and reading share this module so they cannot drift apart. Reading separates
file-level problems (wrong template or version, a missing or renamed column, a merged header
row, no unit or period: :class:`FileRejected`) from row-level ones, which it leaves in the
records for the GX suites to quarantine (an ambiguous date stays text, an unknown code
stays as typed). Unambiguous variants are normalised here: text dates such as 2025年3月5日
or 2025/3/5, and full-width digits.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from consumption_monitor.feeds.spec import ColumnSpec, FeedSpec, StreamSpec

META_SHEET = "_meta"
CODES_SHEET = "_codes"
HELP_SHEET = "说明"
HEADER_ROW = 4
FIRST_DATA_ROW = 5
UNIT_CELL, PERIOD_CELL = "B2", "D2"
MAX_ROWS = 2000  # rows the drop-downs cover
_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_TEXT_DATE = re.compile(r"^(\d{4})\s*(?:年|/|-|\.)\s*(\d{1,2})\s*(?:月|/|-|\.)\s*(\d{1,2})\s*日?$")
_STAMP = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")
_TEXT_PERIOD = re.compile(r"^(\d{4})\s*(?:年|/|-|\.)\s*(\d{1,2})\s*月?$")


class FileRejected(ValueError):
    """A workbook that cannot be read as its template: nothing of it is loaded."""


@dataclass(frozen=True)
class LedgerFile:
    """A parsed ledger workbook: which stream, unit and period, and its records."""

    stream: str
    unit: str
    period: str
    version: str
    records: list[dict[str, Any]]


def template_columns(stream: StreamSpec) -> list[ColumnSpec]:
    """The columns a unit fills in (those with a header label), in template order."""
    return [c for c in stream.columns if c.label]


def template_version(feed: FeedSpec) -> str:
    return str(feed.source_options.get("template_version", "1"))


def unit_choices(stream: StreamSpec) -> tuple[str, ...]:
    return stream.column("unit").choices


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


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def normalise_date(value: Any) -> Any:
    """ISO text for a date cell or an unambiguous text date (2025年3月5日, 2025/3/5,
    full-width digits); anything else is returned as typed, for the suite to flag."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        return value
    text = value.strip().translate(_DIGITS)
    match = _TEXT_DATE.match(text)
    if match:
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            return value  # 2025-02-30: stays as typed, unparseable
    return text


def normalise_number(value: Any) -> Any:
    """Numbers as typed; text with full-width digits or thousands separators made plain."""
    if not isinstance(value, str):
        return value
    return unicodedata.normalize("NFKC", value).strip().replace(",", "")


def _cell(col: ColumnSpec, value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if col.type == "date":
        return normalise_date(value)
    if col.type in ("integer", "decimal"):
        return normalise_number(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().translate(_DIGITS)


def _period(value: Any, where: str) -> str:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    match = _TEXT_PERIOD.match(_text(value).translate(_DIGITS))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise FileRejected(f"{where} {PERIOD_CELL}「统计期」应为 YYYY-MM，实际为「{_text(value)}」")
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"


def _meta(wb, feed: FeedSpec, file_name: str) -> StreamSpec:
    if META_SHEET not in wb.sheetnames:
        raise FileRejected(
            f"文件 {file_name}：不是本平台生成的台账模板（缺少 {META_SHEET} 工作表）"
        )
    meta = {_text(r[0]): _text(r[1]) for r in wb[META_SHEET].iter_rows(values_only=True) if r}
    streams = {s.path: s for s in feed.streams}
    if meta.get("feed") != feed.name or meta.get("template") not in streams:
        raise FileRejected(f"文件 {file_name}：模板「{meta.get('template')}」不属于{feed.title}")
    if meta.get("version") != template_version(feed):
        raise FileRejected(
            f"文件 {file_name}：模板版本 {meta.get('version') or '未知'} 已停用，"
            f"请使用 {template_version(feed)} 版模板重新填报"
        )
    return streams[meta["template"]]


def _header(sheet, stream: StreamSpec, where: str) -> dict[str, int]:
    """Column name -> sheet column index, from the header row; rejects what cannot be read."""
    for merged in sheet.merged_cells.ranges:
        if merged.min_row <= HEADER_ROW <= merged.max_row:
            raise FileRejected(
                f"{where} 第{HEADER_ROW}行表头有合并单元格 {merged.coord}，无法识别列"
            )
    found = {_text(cell.value): cell.column for cell in sheet[HEADER_ROW] if _text(cell.value)}
    wanted = {c.label: c.name for c in template_columns(stream)}
    missing = [label for label in wanted if label not in found]
    if missing:
        unknown = [
            f"「{label}」（{get_column_letter(i)}{HEADER_ROW}）"
            for label, i in found.items()
            if label not in wanted
        ]
        raise FileRejected(
            f"{where} 第{HEADER_ROW}行表头缺少列"
            + "、".join(f"「{m}」" for m in missing)
            + (f"；未识别的列 {'、'.join(unknown)}（列名被修改？）" if unknown else "")
        )
    return {wanted[label]: found[label] for label in wanted}


def read_workbook(feed: FeedSpec, body: bytes, file_name: str) -> LedgerFile:
    """Parse a dropped workbook; raises FileRejected naming the file, sheet and cell."""
    try:
        wb = load_workbook(io.BytesIO(body), data_only=True)
    except Exception as exc:  # not a workbook at all (zip error, wrong format, ...)
        raise FileRejected(f"文件 {file_name}：无法作为 Excel 工作簿打开（{exc}）") from exc
    stream = _meta(wb, feed, file_name)
    if stream.path not in wb.sheetnames:
        raise FileRejected(f"文件 {file_name}：缺少工作表「{stream.path}」")
    sheet = wb[stream.path]
    where = f"文件 {file_name} 工作表「{stream.path}」"
    unit = _text(sheet[UNIT_CELL].value)
    if unit not in unit_choices(stream):
        raise FileRejected(f"{where} {UNIT_CELL}「填报单位」「{unit}」不在责任单位清单内")
    period = _period(sheet[PERIOD_CELL].value, where)
    positions = _header(sheet, stream, where)
    columns = [stream.column(name) for name in positions]
    records = []
    for row in sheet.iter_rows(min_row=FIRST_DATA_ROW):
        values = {c.name: _cell(c, row[positions[c.name] - 1].value) for c in columns}
        if all(v is None for v in values.values()):
            continue
        excel_row = row[0].row
        records.append(
            {
                "period": period,
                "unit": unit,
                "row_no": excel_row,
                "source_file": file_name,
                **values,
                "_sheet": stream.path,
            }
        )
    return LedgerFile(stream.name, unit, period, template_version(feed), records)


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
