"""Quarantined rows in words an operator can act on. Ledger rows: which file, sheet, row
and column, and what is wrong with the value (the suites only name column ids); rows of
every feed: text over its column's length, with the limit and the length."""

from __future__ import annotations

import re
from typing import Any

from consumption_monitor.feeds.frames import PARSERS
from consumption_monitor.feeds.spec import FeedSpec
from consumption_monitor.feeds.text_limits import raw_length_reasons
from consumption_monitor.validation.suites import LENGTH_CHECK

_COLUMN = re.compile(r"\[([^\]]+)\]")


def _unparseable(feed: FeedSpec, stream: str, raw: dict[str, Any]) -> list[str]:
    """The columns whose value cannot be read as its type (what ``_unparseable`` held)."""
    bad = []
    for col in feed.stream(stream).columns:
        value = raw.get(col.name)
        if value in (None, ""):
            continue
        try:
            PARSERS[col.type](value)
        except (ValueError, TypeError):
            bad.append(col.name)
    return bad


def _problem(feed: FeedSpec, stream: str, raw: dict[str, Any], label: str) -> list[str]:
    match = _COLUMN.search(label)
    column = match.group(1) if match else ""
    spec = feed.stream(stream)
    if label.startswith(LENGTH_CHECK):
        return [r for r in raw_length_reasons(spec, raw) if f"({column})" in r]
    if column == "_unparseable":
        names = _unparseable(feed, stream, raw)
        what = "无法识别（日期请填 2025-03-05 或 2025年3月5日，数值请填数字）"
    elif column.startswith("_") and column.endswith("_in_period"):
        names, what = [column[1 : -len("_in_period")]], f"不在统计期 {raw.get('period')} 内"
    elif "in_set" in label:
        names, what = [column], "不在下拉清单内"
    elif "not_be_null" in label:
        if raw.get(column) not in (None, ""):
            return []  # typed but unreadable: the _unparseable message says so
        names, what = [column], "为必填项"
    else:
        names, what = [n for n in column.split("+") if n], f"未通过校验 {label}"
    out = []
    for name in names:
        title = spec.column(name).label if name in spec.column_names else name
        out.append(f"列「{title or name}」「{raw.get(name)}」{what}")
    return out


def describe_quarantined(
    feed: FeedSpec, stream: str, raw: dict[str, Any], failed: list[str]
) -> str:
    """E.g. 文件 a.xlsx 工作表「活动台账」第5行：列「举办日期」「3/5」无法识别（…）。"""
    problems = [p for label in failed for p in _problem(feed, stream, raw, label)]
    where = f"文件 {raw.get('source_file')} 工作表「{raw.get('_sheet')}」第{raw.get('row_no')}行"
    return f"{where}：{'；'.join(dict.fromkeys(problems))}"


def quarantine_reasons(
    feed: FeedSpec, stream: str, raw: dict[str, Any], failed: list[str]
) -> list[str]:
    """Each failed check of a quarantined row: in words where the project has them (text
    too long: column, limit, length), else the check's label."""
    out: list[str] = []
    for label in failed:
        if label.startswith(LENGTH_CHECK):
            match = _COLUMN.search(label)
            column = match.group(1) if match else ""
            found = [r for r in raw_length_reasons(feed.stream(stream), raw) if f"({column})" in r]
            out.extend(found or [label])
        else:
            out.append(label)
    return out
