"""Reading a ledger workbook back: the layout it shares with the writer, value
normalisation, and the checks that separate a file that cannot be read as its template
(:class:`FileRejected`, nothing of it loads) from what loads with a note.

Choices (documented in the README, "What happens to bad input"):

- a 合计/小计/总计 row is **skipped with a note** (never counted as data);
- another sheet holding data **rejects the file** (data outside the template's sheet
  would otherwise be lost silently);
- a hidden row with data **loads with a note** naming the rows;
- merged cells in the data area **reject the file**, naming the range;
- the header block (填报单位, 统计期) and the header row are found by their labels, so an
  inserted column or row is read, and messages name the cells where they really are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl.utils import get_column_letter

from consumption_monitor.feeds.sources.workbook_checks import FileRejected
from consumption_monitor.feeds.spec import ColumnSpec, FeedSpec, StreamSpec

META_SHEET = "_meta"
CODES_SHEET = "_codes"
HELP_SHEET = "说明"
HEADER_ROW = 4
FIRST_DATA_ROW = 5
UNIT_CELL, PERIOD_CELL = "B2", "D2"
UNIT_LABEL, PERIOD_LABEL = "填报单位", "统计期"
SEARCH_ROWS = 10  # the header block and header row are looked for in the first rows
_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# dashes a unit's keyboard or input method types in dates: full-width, em/en, katakana
_DASHES = str.maketrans(dict.fromkeys("－—–ーｰ―‐‑−﹣⁃", "-"))
_TEXT_DATE = re.compile(r"^(\d{4})\s*(?:年|/|-|\.)\s*(\d{1,2})\s*(?:月|/|-|\.)\s*(\d{1,2})\s*日?$")
_TEXT_PERIOD = re.compile(r"^(\d{4})\s*(?:年|/|-|\.)\s*(\d{1,2})\s*月?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
TOTAL_WORDS = ("合计", "小计", "总计", "共计")
_TOTAL = re.compile(r"^(?:" + "|".join(TOTAL_WORDS) + r")[:：]?$")
KNOWN_SHEETS = (HELP_SHEET, CODES_SHEET, META_SHEET)


def template_columns(stream: StreamSpec) -> list[ColumnSpec]:
    """The columns a unit fills in (those with a header label), in template order."""
    return [c for c in stream.columns if c.label]


def template_version(feed: FeedSpec) -> str:
    return str(feed.source_options.get("template_version", "1"))


def unit_choices(stream: StreamSpec) -> tuple[str, ...]:
    return stream.column("unit").choices


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def normalise_date(value: Any) -> Any:
    """ISO text for a date cell or an unambiguous text date (2025年3月5日, 2025/3/5,
    full-width digits, full-width or long dashes ２０２５－３－５, 2025—3—5); anything else
    is returned as typed, for the suite to flag."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip().translate(_DASHES).translate(_DIGITS)
    match = _TEXT_DATE.match(text)
    if match:
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            return value  # 2025-02-30: stays as typed, unparseable
    return text


def normalise_number(value: Any) -> Any:
    """Numbers as typed; text with full-width digits made plain and thousands separators
    (1,234 / 1,234,567.5) dropped. Any other comma (12,34: a decimal comma or a typo)
    stays, so the value cannot be typed and the suite quarantines the row."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    if "," in text and _THOUSANDS.match(text):
        return text.replace(",", "")
    return text


def cell_value(col: ColumnSpec, value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if col.type == "date":
        return normalise_date(value)
    if col.type in ("integer", "decimal"):
        return normalise_number(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().translate(_DIGITS)


def read_period(value: Any, where: str) -> str:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    text = unicodedata.normalize("NFKC", _text(value)).translate(_DASHES)
    match = _TEXT_PERIOD.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise FileRejected(f"{where}「统计期」应为 YYYY-MM，实际为「{_text(value)}」")
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"


def read_meta(wb, feed: FeedSpec, where: str) -> StreamSpec:
    if META_SHEET not in wb.sheetnames:
        raise FileRejected(f"{where}：不是本平台生成的台账模板（缺少 {META_SHEET} 工作表）")
    meta = {_text(r[0]): _text(r[1]) for r in wb[META_SHEET].iter_rows(values_only=True) if r}
    streams = {s.path: s for s in feed.streams}
    if meta.get("feed") != feed.name or meta.get("template") not in streams:
        raise FileRejected(f"{where}：模板「{meta.get('template')}」不属于{feed.title}")
    if meta.get("version") != template_version(feed):
        raise FileRejected(
            f"{where}：模板版本 {meta.get('version') or '未知'} 已停用，"
            f"请使用 {template_version(feed)} 版模板重新填报"
        )
    return streams[meta["template"]]


@dataclass
class Layout:
    """Where things are in this workbook's data sheet (the template's places unless a
    column or row was inserted)."""

    unit: Any = None
    unit_cell: str = UNIT_CELL
    period: Any = None
    period_cell: str = PERIOD_CELL
    header_row: int = HEADER_ROW
    notes: list[str] = field(default_factory=list)

    @property
    def first_data_row(self) -> int:
        return self.header_row + 1


def _labelled_value(row: tuple, label_index: int) -> tuple[Any, str]:
    """The value right of a label cell (the first non-empty of the next three cells)."""
    following = row[label_index + 1 : label_index + 4]
    for cell in following:
        if _text(cell.value):
            return cell.value, cell.coordinate
    target = following[0] if following else row[label_index]
    return None, target.coordinate


def locate(sheet, stream: StreamSpec) -> Layout:
    """Find the header block by its labels and the header row by the column labels."""
    layout = Layout(unit=sheet[UNIT_CELL].value, period=sheet[PERIOD_CELL].value)
    labels = {c.label for c in template_columns(stream)}
    best = 0
    for row in sheet.iter_rows(min_row=1, max_row=SEARCH_ROWS):
        texts = [_text(cell.value) for cell in row]
        for i, text in enumerate(texts):
            if text == UNIT_LABEL:
                layout.unit, layout.unit_cell = _labelled_value(row, i)
            elif text == PERIOD_LABEL:
                layout.period, layout.period_cell = _labelled_value(row, i)
        hits = sum(1 for text in texts if text in labels)
        if hits > best and row:
            best, layout.header_row = hits, row[0].row
    return layout


def header_positions(sheet, stream: StreamSpec, where: str, header_row: int) -> dict[str, int]:
    """Column name -> sheet column index, from the header row; rejects what cannot be read."""
    for merged in sheet.merged_cells.ranges:
        if merged.min_row <= header_row <= merged.max_row:
            raise FileRejected(
                f"{where} 第{header_row}行表头有合并单元格 {merged.coord}，无法识别列"
            )
    found = {_text(cell.value): cell.column for cell in sheet[header_row] if _text(cell.value)}
    wanted = {c.label: c.name for c in template_columns(stream)}
    missing = [label for label in wanted if label not in found]
    if missing:
        unknown = [
            f"「{label}」（{get_column_letter(i)}{header_row}）"
            for label, i in found.items()
            if label not in wanted
        ]
        raise FileRejected(
            f"{where} 第{header_row}行表头缺少列"
            + "、".join(f"「{m}」" for m in missing)
            + (f"；未识别的列 {'、'.join(unknown)}（列名被修改？）" if unknown else "")
        )
    return {wanted[label]: found[label] for label in wanted}


def check_merged_data(sheet, where: str, first_data_row: int) -> None:
    """Merged cells in the data area: only the first cell keeps the value, the other rows
    would load as empty (\"必填\" failures naming no cell). The file is rejected."""
    merged = sorted(
        (m for m in sheet.merged_cells.ranges if m.max_row >= first_data_row),
        key=lambda m: (m.min_row, m.min_col),
    )
    if merged:
        ranges = "、".join(m.coord for m in merged[:5]) + ("等" if len(merged) > 5 else "")
        raise FileRejected(
            f"{where} 数据区有合并单元格 {ranges}，合并后只有首格有值；"
            "请取消合并并在每一行填写完整后重新报送"
        )


def check_other_sheets(wb, stream: StreamSpec, where_file: str) -> None:
    """Data in a sheet other than the template's: rejected rather than silently ignored."""
    for sheet in wb.worksheets:
        if sheet.title == stream.path or sheet.title in KNOWN_SHEETS:
            continue
        for row in sheet.iter_rows():
            cell = next((c for c in row if _text(c.value)), None)
            if cell is not None:
                raise FileRejected(
                    f"{where_file}：工作表「{sheet.title}」也有数据（{cell.coordinate}「"
                    f"{_text(cell.value)[:20]}」），平台只读取「{stream.path}」；"
                    f"请把数据移入「{stream.path}」或删除该工作表后重新报送"
                )


def is_total_row(row: tuple) -> str | None:
    """The 合计/小计 word when a cell of the row is one (a row the unit added up)."""
    for cell in row:
        if isinstance(cell.value, str):
            text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", cell.value))
            if _TOTAL.match(text):
                return text
    return None


def _join_rows(rows: list[int]) -> str:
    shown = "、".join(str(r) for r in rows[:10])
    return shown + (f"等 {len(rows)} 行" if len(rows) > 10 else "")


@dataclass
class Rows:
    records: list[dict[str, Any]] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)
    extra: dict[int, str] = field(default_factory=dict)  # unknown header column -> label

    def notes(self, where: str) -> list[str]:
        out = []
        if self.totals:
            out.append(f"{where} 第{_join_rows(self.totals)}行为合计/小计行，未计入数据")
        if self.hidden:
            out.append(
                f"{where} 第{_join_rows(self.hidden)}行为隐藏行，已按数据入库"
                "（如不应报送请删除后重新报送）"
            )
        for label in self.extra.values():
            out.append(f"{where} 表头外的列{label}有内容，未入库")
        return out


def read_rows(sheet, stream: StreamSpec, layout: Layout, positions: dict[str, int], **meta):
    """The data rows as records; empty and format-only rows are skipped, 合计 rows noted
    and skipped, hidden rows noted; more data rows than ``max_rows`` rejects the file."""
    where, max_rows = meta.pop("where"), meta.pop("max_rows")
    columns = [stream.column(name) for name in positions]
    known = set(positions.values())
    extra = {
        cell.column: f"「{_text(cell.value)}」（{cell.coordinate}）"
        for cell in sheet[layout.header_row]
        if _text(cell.value) and cell.column not in known
    }
    out = Rows()
    for row in sheet.iter_rows(min_row=layout.first_data_row):
        values = {
            c.name: cell_value(c, row[positions[c.name] - 1].value)
            if positions[c.name] <= len(row)
            else None
            for c in columns
        }
        if all(v is None for v in values.values()):
            continue
        excel_row = row[0].row
        if is_total_row(row):
            out.totals.append(excel_row)
            continue
        if len(out.records) >= max_rows:
            raise FileRejected(
                f"{where} 数据超过 {max_rows} 行上限（第{excel_row}行起），请核对是否误填或拆分报送"
            )
        if sheet.row_dimensions[excel_row].hidden:
            out.hidden.append(excel_row)
        for index in extra:
            if index <= len(row) and _text(row[index - 1].value):
                out.extra[index] = extra[index]
        out.records.append({"row_no": excel_row, **values, **meta})
    return out
