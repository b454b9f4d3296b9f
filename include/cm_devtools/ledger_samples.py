"""Deterministic, realistic filled ledgers (2024-01 to the last full month), with optional
defects, so the file-drop path can be demonstrated and tested without real units.

Who reports what follows the plan's 责任单位: 区商务局 the promotion events, car shows,
first-launch events, appliance drives and new shops; 区文广旅局 the big cultural-tourism
events, check-in scenes, 文创 sales and the 火红年华 4A task; 区总工会 the union group
purchases; 区人力资源社会保障局 the job fairs; 区教育和体育局 the sports IP; 区发展改革局 the
smart recycling points. Every qualitative task of the catalog (``plan_tasks.yaml``, issue 15
§5) is reported in 重点任务进度 by the first of its 责任单位, with a deterministic,
realistic course: not started until a start month, then in progress with a growing share
of the work done, and for finite projects (建设, 改造, 创建, 申报, 项目 …) done after some
months; standing policies stay 推进中. The 火红年华 4A and 苏铁山药 tasks keep their
earlier course (started in 2024-03, done in 2025-08).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from cm_devtools.sample_server.faults import LEAKED_ID
from consumption_monitor.common.periods import Period, last_full_month, period_range
from consumption_monitor.feeds.sources.workbook import (
    FIRST_DATA_ROW,
    HEADER_ROW,
    META_SHEET,
    build_workbook,
    template_columns,
    workbook_bytes,
)
from consumption_monitor.feeds.spec import FeedSpec, load_feed

FEED = "work_ledgers"
VENUES = ["清香坪步行街", "星瑞时代广场", "河门口公园", "金沙公园", "水墨金沙", "格里坪镇广场"]
EVENTS = {  # unit -> (event type, monthly probability, name stem)
    "区商务局": [
        ("消费促进活动", 0.9, "灵秀西区·主题消费季"),
        ("汽车展销", 0.5, "乐购西区·汽车嘉年华"),
        ("首发首秀首展", 0.3, "品牌首秀特色市集"),
        ("家电五进", 0.5, "家电以旧换新进社区"),
    ],
    "区文广旅局": [
        ("大型文旅活动", 0.2, "三角梅文化艺术周"),
        ("消费促进活动", 0.6, "金沙夜生活狂欢节"),
    ],
    "区总工会": [("工会团购", 0.4, "工会会员团购日")],
    "区人力资源社会保障局": [("招聘会", 0.35, "公共就业专场招聘会")],
}
OPENINGS = {
    "区商务局": [
        ("区域首店", 0.5, "首店"),
        ("品牌连锁店", 0.5, "连锁店"),
        ("烟火小店", 0.8, "烟火小店"),
        ("24小时便利店", 0.3, "24小时便利店"),
    ],
    "区文广旅局": [("打卡消费场景", 0.1, "来攀必打卡场景")],
    "区教育和体育局": [("运动IP", 0.05, "航空运动嘉年华")],
    "区发展改革局": [("智能回收站点", 0.3, "智能回收站")],
}
PRODUCTS = ["三线记忆帆布袋", "苏铁书签套装", "阳光康养明信片", "火红年华冰箱贴"]
# the measure-2 spelling of the plan (区农村农业和交通运输局) is the unit the ledgers know
UNIT_ALIASES = {"区农村农业和交通运输局": "区农业农村和交通运输局"}
LEGACY_COURSE = {"m09_4a_scenic_area": (3, 20), "m02_sutie_yam_application": (3, 20)}
PROJECT_WORDS = ("建设", "改造", "创建", "申报", "项目", "开设", "展示区", "体系", "地图")


@dataclass(frozen=True)
class TaskCourse:
    """How a sample task progresses: months are counted from 2024-01 = 1."""

    kpi_id: str
    task: str
    unit: str
    start: int  # first month in progress
    done: int | None  # month completed (None: a standing policy, stays in progress)


def _course(kpi) -> TaskCourse:
    unit = UNIT_ALIASES.get(kpi.units[0], kpi.units[0])
    if kpi.id in LEGACY_COURSE:
        start, done = LEGACY_COURSE[kpi.id]
        return TaskCourse(kpi.id, kpi.task, unit, start, done)
    rng = _rng("task", kpi.id)
    start = rng.randint(1, 26)  # some tasks only start after the plan (2025-12)
    project = any(word in kpi.name for word in PROJECT_WORDS)
    done = start + rng.randint(5, 24) if project and rng.random() < 0.8 else None
    return TaskCourse(kpi.id, kpi.task, unit, start, done)


@cache
def task_courses() -> dict[str, list[TaskCourse]]:
    """Per reporting unit, its tasks (the legacy two first), from the catalog."""
    from consumption_monitor.indicators.catalog import load_catalog

    out: dict[str, list[TaskCourse]] = {}
    tasks = [k for k in load_catalog().kpis if k.kind == "milestone"]
    tasks.sort(key=lambda k: k.id not in LEGACY_COURSE)
    for kpi in tasks:
        course = _course(kpi)
        out.setdefault(course.unit, []).append(course)
    return out


def _milestone_row(course: TaskCourse, p: Period) -> dict[str, Any]:
    month = (p.year - 2024) * 12 + p.month
    if month < course.start:
        status, note = "未启动", "尚未启动，正在制定实施方案"
    elif course.done is not None and month >= course.done:
        status, note = "已完成", "已完成，资料已归档"
    else:
        span = (course.done - course.start) if course.done else 36
        share = min(95, 10 + 90 * (month - course.start) // max(span, 1))
        status, note = "推进中", f"按计划推进，已完成约 {share}%"
    finished = course.done is not None and month >= course.done
    day = Period(2024, 1).shift(course.done - 1) if finished else p
    return {
        "task": course.task,
        "status": status,
        "status_date": date(day.year, day.month, 25),
        "note": f"{p.year}年{p.month}月进展：{note}",
    }


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(map(str, parts)))


def _day(rng: random.Random, period: Period) -> date:
    return date(period.year, period.month, rng.randint(1, 28))


def _typed_rows(catalogue, unit: str, period: Period, row: Callable) -> list[dict[str, Any]]:
    rng = _rng(unit, period)
    return [row(rng, kind, stem) for kind, p, stem in catalogue.get(unit, []) if rng.random() < p]


def sample_rows(stream: str, unit: str, period: str) -> list[dict[str, Any]]:
    """The rows ``unit`` reports in ``stream`` for ``period`` (the same on every call)."""
    p = Period.parse(period)
    if stream == "events":
        return _typed_rows(
            EVENTS,
            unit,
            p,
            lambda rng, kind, stem: {
                "event_type": kind,
                "event_name": f"{p.year}年{stem}（{p.month}月）",
                "event_date": _day(rng, p),
                "venue": rng.choice(VENUES),
                "attendance": rng.randrange(300, 20000, 10),
                "sales_driven": round(rng.uniform(20, 3000), 2),
            },
        )
    if stream == "openings":
        return _typed_rows(
            OPENINGS,
            unit,
            p,
            lambda rng, kind, stem: {
                "opening_type": kind,
                "name": f"{rng.choice(VENUES)}{stem}{p.month}号",
                "opened_date": _day(rng, p),
                "address": f"西区{rng.choice(VENUES)}{rng.randint(1, 200)}号",
            },
        )
    if stream == "product_sales" and unit == "区文广旅局":
        rng = _rng("product_sales", p)
        return [
            {"product": name, "sales_month": round(rng.uniform(0.05, 0.4), 2)} for name in PRODUCTS
        ]
    if stream == "milestones":
        return [_milestone_row(c, p) for c in task_courses().get(unit, [])]
    return []


# --- defects -----------------------------------------------------------------------------


def _header_cell(wb: Workbook, feed: FeedSpec, stream: str, label: str):
    sheet = wb[feed.stream(stream).path]
    for cell in sheet[HEADER_ROW]:
        if cell.value == label:
            return sheet, cell
    raise KeyError(label)


def _first_column(feed: FeedSpec, stream: str, kind: str) -> str:
    return next(c.label for c in template_columns(feed.stream(stream)) if c.type == kind)


def _free_text_column(feed: FeedSpec, stream: str) -> str:
    columns = template_columns(feed.stream(stream))
    return next(c.label for c in columns if c.type == "string" and not c.choices)


def _set_data(wb: Workbook, feed: FeedSpec, stream: str, row: int, label: str, value: Any) -> None:
    sheet, header = _header_cell(wb, feed, stream, label)
    sheet.cell(FIRST_DATA_ROW + row, header.column, value)


def _drop_last_column(wb: Workbook, feed: FeedSpec, stream: str) -> None:
    """The last column deleted from the table (the header block above stays as it was)."""
    sheet, header = _header_cell(wb, feed, stream, template_columns(feed.stream(stream))[-1].label)
    for row in range(HEADER_ROW, sheet.max_row + 1):
        sheet.cell(row, header.column).value = None


def _total_row(wb: Workbook, feed: FeedSpec, stream: str) -> None:
    """A 合计 row under the data, summing the numeric columns (skipped with a note)."""
    sheet = wb[feed.stream(stream).path]
    filled = [r for r in range(FIRST_DATA_ROW, sheet.max_row + 1) if sheet.cell(r, 2).value]
    last = max(filled, default=FIRST_DATA_ROW - 1)
    sheet.cell(last + 1, 1, "合计")
    for i, col in enumerate(template_columns(feed.stream(stream)), start=1):
        if col.type in ("integer", "decimal"):
            values = [sheet.cell(r, i).value for r in range(FIRST_DATA_ROW, last + 1)]
            sheet.cell(last + 1, i, sum(v for v in values if isinstance(v, int | float)))


FAULTS: dict[str, Callable[[Workbook, FeedSpec, str], None]] = {
    # file-level: the whole file is rejected with a message
    "wrong_version": lambda wb, feed, s: wb[META_SHEET].cell(3, 2, "2023.1"),
    "renamed_column": lambda wb, feed, s: setattr(
        _header_cell(wb, feed, s, template_columns(feed.stream(s))[1].label)[1],
        "value",
        "名称（改）",
    ),
    "missing_column": lambda wb, feed, s: _drop_last_column(wb, feed, s),
    "merged_header": lambda wb, feed, s: wb[feed.stream(s).path].merge_cells(
        start_row=HEADER_ROW, start_column=1, end_row=HEADER_ROW, end_column=2
    ),
    "merged_data": lambda wb, feed, s: wb[feed.stream(s).path].merge_cells(
        start_row=FIRST_DATA_ROW, start_column=1, end_row=FIRST_DATA_ROW + 1, end_column=1
    ),
    "second_sheet": lambda wb, feed, s: wb.create_sheet("Sheet2").cell(1, 1, "另一批数据"),
    # loads with a note in the run's notes
    "total_row": _total_row,
    "hidden_row": lambda wb, feed, s: setattr(
        wb[feed.stream(s).path].row_dimensions[FIRST_DATA_ROW], "hidden", True
    ),
    # row-level: the first row quarantined with the reason
    "ambiguous_date": lambda wb, feed, s: _set_data(
        wb, feed, s, 0, _first_column(feed, s, "date"), "3/5"
    ),
    "personal_data": lambda wb, feed, s: _set_data(
        wb, feed, s, 0, _free_text_column(feed, s), "联系人 139 1234 5678 " + LEAKED_ID
    ),
    "unknown_code": lambda wb, feed, s: _set_data(
        wb, feed, s, 0, next(c.label for c in template_columns(feed.stream(s)) if c.choices), "其他"
    ),
}
FILE_FAULTS = (
    "wrong_version",
    "renamed_column",
    "missing_column",
    "merged_header",
    "merged_data",
    "second_sheet",
)
NOTED_FAULTS = ("total_row", "hidden_row")  # rows load (合计 skipped), the run notes say so
ROW_FAULTS = ("ambiguous_date", "unknown_code")  # quarantined by the suite
VARIANTS = ("text_date", "fullwidth_digits")  # normalised on reading, rows load


def _text_variants(row: dict[str, Any], fault: str | None) -> dict[str, Any]:
    """Values as a careless unit types them: dates as Chinese text, full-width digits."""
    row = dict(row)
    for key, value in row.items():
        if fault == "text_date" and isinstance(value, date):
            row[key] = f"{value.year}年{value.month}月{value.day}日"
        if (
            fault == "fullwidth_digits"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            row[key] = str(value).translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))
    return row


def ledger_file(
    stream: str, unit: str, period: str, rows: list[dict[str, Any]], fault: str | None = None
) -> bytes:
    """A filled ledger workbook, optionally with one of ``FAULTS``."""
    feed = load_feed(FEED)
    typed = [_text_variants(r, fault) for r in rows]
    wb = build_workbook(feed, feed.stream(stream), unit=unit, period=period, rows=typed)
    if fault in FAULTS:
        FAULTS[fault](wb, feed, stream)
    return workbook_bytes(wb)


def file_name(stream: str, unit: str, period: str) -> str:
    return f"{period}_{load_feed(FEED).stream(stream).path}_{unit}.xlsx"


@dataclass(frozen=True)
class SampleFile:
    path: Path
    stream: str
    unit: str
    period: str
    rows: int


def write_samples(
    out: Path,
    start: str = "2024-01",
    end: str | None = None,
    *,
    faults: dict[tuple[str, str, str], str] | None = None,
) -> list[SampleFile]:
    """Every unit's filled ledgers for ``start``..``end`` (default: the last full month);
    ``faults`` maps (stream, unit, period) to a defect from ``FAULTS``."""
    feed = load_feed(FEED)
    out.mkdir(parents=True, exist_ok=True)
    units = sorted({*EVENTS, *OPENINGS, *task_courses()})
    written: list[SampleFile] = []
    for period in period_range(start, end or last_full_month()):
        for stream in (s.name for s in feed.streams):
            for unit in units:
                rows = sample_rows(stream, unit, str(period))
                if not rows:
                    continue
                fault = (faults or {}).get((stream, unit, str(period)))
                path = out / file_name(stream, unit, str(period))
                path.write_bytes(ledger_file(stream, unit, str(period), rows, fault))
                written.append(SampleFile(path, stream, unit, str(period), len(rows)))
    return written
