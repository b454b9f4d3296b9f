"""Work ledgers (工作台账) as Excel file drops, through the real pipeline.

Templates are generated, filled with the sample rows, dropped in the incoming folder and
loaded on the SQLite file and on PostgreSQL; the duplicate, correction and bad-input cases
use real workbooks written by the sample generator.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from cm_devtools.ledger_samples import (
    FILE_FAULTS,
    file_name,
    ledger_file,
    sample_rows,
    write_samples,
)
from consumption_monitor import cli
from consumption_monitor.common import config
from consumption_monitor.feeds.engine import read_records
from consumption_monitor.feeds.errors import PeriodNotPublished
from consumption_monitor.feeds.sources.file_drop import DUPLICATES, PROCESSED, REJECTED, drop_dir
from consumption_monitor.feeds.sources.workbook import (
    FileRejected,
    normalise_date,
    read_workbook,
    template_columns,
)
from consumption_monitor.feeds.sources.workbook_templates import write_templates
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse.db import engine_for

FEED = "work_ledgers"
MARCH = [  # (stream, unit) with sample rows in 2024-03
    ("events", "区商务局"),
    ("events", "区总工会"),
    ("events", "区文广旅局"),
    ("openings", "区商务局"),
    ("product_sales", "区文广旅局"),
    ("milestones", "区文广旅局"),
]


def _drop(stream: str, unit: str, period: str, rows=None, fault=None, name=None) -> Path:
    folder = drop_dir(load_feed(FEED))
    folder.mkdir(parents=True, exist_ok=True)
    rows = sample_rows(stream, unit, period) if rows is None else rows
    path = folder / (name or file_name(stream, unit, period))
    path.write_bytes(ledger_file(stream, unit, period, rows, fault))
    return path


def _expected(stream: str, rows: list[dict[str, Any]]) -> list[tuple]:
    names = [c.name for c in template_columns(load_feed(FEED).stream(stream))]
    return sorted(
        tuple(v.isoformat() if isinstance(v, date) else v for v in (r[n] for n in names))
        for r in rows
    )


def _core(url: str, stream: str, period: str, unit: str | None = None) -> list[tuple]:
    spec = load_feed(FEED).stream(stream)
    names = ", ".join(c.name for c in template_columns(spec))
    where = "period = :p" + (" and unit = :u" if unit else "")
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text(f"select {names} from core_{spec.table} where {where}"), {"p": period, "u": unit}
        ).fetchall()
    # text() has no column types: PostgreSQL returns numerics as Decimal
    return sorted(tuple(float(v) if isinstance(v, Decimal) else v for v in r) for r in rows)


# --- templates and samples (no warehouse) -------------------------------------------------


def test_templates_have_drop_downs_instructions_and_a_hidden_version(tmp_path, capsys) -> None:
    assert cli.main(["ledger-templates", "--out", str(tmp_path), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert sorted(Path(f).name for f in files) == sorted(
        p.name for p in write_templates(tmp_path / "again")
    )
    assert len(files) == 4
    wb = load_workbook(next(f for f in files if "活动台账" in f))
    assert wb.sheetnames == ["活动台账", "_codes", "说明", "_meta"]
    assert wb["_meta"].sheet_state == "hidden" and wb["_meta"]["B3"].value == "2025.1"
    sheet = wb["活动台账"]
    assert [c.value for c in sheet[4]][:3] == ["活动类型", "活动名称", "举办日期"]
    ranges = {str(dv.sqref): dv.formula1 for dv in sheet.data_validations.dataValidation}
    assert "B2" in ranges and "A5:A2005" in ranges  # unit and event type drop-downs
    codes = [c.value for c in wb["_codes"]["B"][1:] if c.value]  # column B: event types
    assert codes == list(load_feed(FEED).stream("events").column("event_type").choices)
    assert "区商务局" in [c.value for c in wb["_codes"]["A"]]
    assert "不要修改、合并或删除" in "".join(str(c.value) for c in wb["说明"]["A"])


def test_samples_are_deterministic(tmp_path: Path, capsys) -> None:
    first = write_samples(tmp_path / "a", "2024-11", "2025-01")
    argv = ["ledger-samples", "--out", str(tmp_path / "b"), "--from", "2024-11", "--to", "2025-01"]
    assert cli.main([*argv, "--json"]) == 0
    second = [Path(f) for f in json.loads(capsys.readouterr().out)["files"]]
    assert [f.path.name for f in first] == [p.name for p in second]
    assert all(a.path.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    assert {f.stream for f in first} == {"events", "openings", "product_sales", "milestones"}


def test_samples_report_every_task_of_the_plan(warehouse_url: str) -> None:
    """Every milestone of the catalog (issue 15 §5) comes through 重点任务进度 from one of
    its 责任单位, with a course that is realistic at mid-2025: some not started, most in
    progress, a few done; none of them is 暂无数据 once the month is loaded."""
    from cm_devtools.ledger_samples import UNIT_ALIASES
    from consumption_monitor.indicators.catalog import load_catalog
    from consumption_monitor.indicators.snapshots import read_snapshot

    period = "2025-06"
    write_samples(drop_dir(load_feed(FEED)), period, period)
    out = run_period(FEED, period, url=warehouse_url)
    assert out["validation"]["quarantined"]["milestones"] == 0
    tasks = [k for k in load_catalog().kpis if k.kind == "milestone"]
    with engine_for(warehouse_url).connect() as conn:
        reported = {
            r.task: r
            for r in conn.execute(
                text("select task, unit, status, note from mart_ledger_milestones_monthly "
                     "where period = :p"),
                {"p": period},
            )
        }  # fmt: skip
    assert set(reported) == {k.task for k in tasks}
    for kpi in tasks:
        assert reported[kpi.task].unit in {UNIT_ALIASES.get(u, u) for u in kpi.units}
    statuses = [r.status for r in reported.values()]
    assert {s: statuses.count(s) for s in set(statuses)}.keys() == {"未启动", "推进中", "已完成"}
    assert statuses.count("推进中") > len(tasks) / 2
    assert all("进展" in r.note for r in reported.values())
    snapshot = {r["kpi_id"]: r for r in read_snapshot(engine_for(warehouse_url), period)}
    assert all(snapshot[k.id]["status"] != "暂无数据" for k in tasks)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("2025年3月5日", "2025-03-05"),
        ("2025/3/5", "2025-03-05"),
        ("２０２５－０３－０５".replace("－", "-"), "2025-03-05"),
        (date(2025, 3, 5), "2025-03-05"),
        ("3/5", "3/5"),  # no year: ambiguous, left for the suite to quarantine
        ("2025-02-30", "2025-02-30"),  # not a date: stays as typed
        ("2025－03－05", "2025-03-05"),  # full-width, em, en and katakana dashes
        ("2025—3—5", "2025-03-05"),
        ("2025–3–5", "2025-03-05"),
        ("2025ー3ー5", "2025-03-05"),
    ],
)
def test_text_dates_are_read_when_unambiguous(typed, read) -> None:
    assert normalise_date(typed) == read


@pytest.mark.parametrize(
    ("fault", "note"),
    [
        ("total_row", "第7行为合计/小计行，未计入数据"),
        ("hidden_row", "第5行为隐藏行，已按数据入库"),
    ],
)
def test_noted_faults_load_the_rows_with_a_note(fault: str, note: str) -> None:
    rows = sample_rows("events", "区商务局", "2024-03")
    parsed = read_workbook(
        load_feed(FEED), ledger_file("events", "区商务局", "2024-03", rows, fault), "a.xlsx"
    )
    assert len(parsed.records) == len(rows) == 2
    assert parsed.notes == [
        f"文件 a.xlsx（区商务局） 工作表「活动台账」 {note}"
        + ("（如不应报送请删除后重新报送）" if fault == "hidden_row" else "")
    ]


@pytest.mark.parametrize("fault", FILE_FAULTS)
def test_file_level_faults_name_the_file_and_the_problem(fault: str) -> None:
    body = ledger_file(
        "events", "区商务局", "2024-03", sample_rows("events", "区商务局", "2024-03"), fault
    )
    with pytest.raises(FileRejected) as info:
        read_workbook(load_feed(FEED), body, "商务局3月.xlsx")
    message = str(info.value)
    assert "商务局3月.xlsx" in message
    expected = {
        "wrong_version": "模板版本 2023.1 已停用",
        "renamed_column": "缺少列「活动名称」；未识别的列 「名称（改）」（B4）",
        "missing_column": "缺少列「带动消费（万元）」",
        "merged_header": "合并单元格 A4:B4",
        "merged_data": "（区商务局） 工作表「活动台账」 数据区有合并单元格 A5:A6",
        "second_sheet": "工作表「Sheet2」也有数据（A1「另一批数据」）",
    }[fault]
    assert expected in message
    if fault not in ("wrong_version", "second_sheet"):
        assert "工作表「活动台账」" in message


# --- through the pipeline, on SQLite and PostgreSQL ------------------------------------------


def test_round_trip_duplicate_and_correction(warehouse_url: str) -> None:
    period = "2024-03"
    for stream, unit in MARCH:
        _drop(stream, unit, period)
    _drop("events", "区商务局", "2024-05")  # another period's file: filed, not loaded now
    first = run_period(FEED, period, url=warehouse_url)
    assert first["validation"]["verdict"] == "passed"
    for stream in ("events", "openings", "product_sales", "milestones"):
        expected = [
            row
            for s, unit in MARCH
            if s == stream
            for row in _expected(stream, sample_rows(stream, unit, period))
        ]
        assert _core(warehouse_url, stream, period) == sorted(expected), stream
    folder = drop_dir(load_feed(FEED))
    assert list(folder.glob("*.xlsx")) == []
    assert len(list((folder / PROCESSED / period).glob("*.xlsx"))) == len(MARCH)
    assert len(list((folder / PROCESSED / "2024-05").glob("*.xlsx"))) == 1

    # the same file sent again: recognised by its sha256, nothing new loads
    _drop("events", "区商务局", period, name="重发.xlsx")
    again = run_period(FEED, period, url=warehouse_url)
    assert again["load"]["outcome"] == "unchanged"
    assert again["batch"]["batch_id"] == first["batch"]["batch_id"]
    assert "重发.xlsx" in again["batch"]["notes"][0] and "内容相同" in again["batch"]["notes"][0]
    # set aside under a safe generated name; the original name is in the .json beside it
    [aside] = (folder / DUPLICATES).glob("*.xlsx")
    assert json.loads(aside.with_name(aside.name + ".json").read_text())["file"] == "重发.xlsx"

    # a corrected file of one unit supersedes its earlier file; the other units stay
    corrected = sample_rows("events", "区商务局", period)[:1]
    corrected[0] = {**corrected[0], "attendance": 999, "sales_driven": 12.5}
    _drop("events", "区商务局", period, rows=corrected, name="更正.xlsx")
    third = run_period(FEED, period, url=warehouse_url)
    assert third["load"]["outcome"] == "loaded"
    assert third["load"]["superseded"] == first["batch"]["batch_id"]
    assert _core(warehouse_url, "events", period, "区商务局") == _expected("events", corrected)
    assert _core(warehouse_url, "events", period, "区总工会") == _expected(
        "events", sample_rows("events", "区总工会", period)
    )
    # the marts count what the plan targets, from the current files only
    events = [
        *corrected,
        *sample_rows("events", "区总工会", period),
        *sample_rows("events", "区文广旅局", period),
    ]
    types = [e["event_type"] for e in events]
    with engine_for(warehouse_url).connect() as conn:
        by_type = conn.execute(
            text("select event_type, events from mart_ledger_events_by_type where year = '2024'")
        ).fetchall()
        sales = conn.execute(
            text("select actual, target_year from mart_ledger_targets where measure_no = 10")
        ).one()
        milestone = conn.execute(
            text("select status from mart_ledger_milestones where task like '火红年华%'")
        ).scalar_one()
    assert dict(by_type) == {t: types.count(t) for t in types}
    sold = sum(r["sales_month"] for r in sample_rows("product_sales", "区文广旅局", period))
    assert (float(sales[0]), float(sales[1])) == (pytest.approx(sold), 5.0)
    assert milestone == sample_rows("milestones", "区文广旅局", period)[0]["status"]

    # the archive re-parses the workbooks to the same records (sha256-checked bytes)
    batch_dir = config.archive_dir() / third["batch"]["archive_dir"]
    records = read_records(load_feed(FEED), batch_dir)
    assert {r["source_file"] for r in records["events"]} >= {"更正.xlsx"}
    assert sum(third["load"]["rows"].values()) == sum(len(v) for v in records.values())
    with engine_for(warehouse_url).connect() as conn:
        raw = conn.execute(
            text("select count(*), min(url) from raw_payload where batch_id = :b"),
            {"b": third["batch"]["batch_id"]},
        ).one()
    assert raw[0] == len(MARCH) and raw[1].startswith("file:")


def test_bad_input_is_explained_and_valid_rows_load(warehouse_url: str, capsys) -> None:
    period = "2024-04"
    _drop("events", "区商务局", period, fault="ambiguous_date")  # row 5 quarantined
    _drop("events", "区文广旅局", period, fault="unknown_code")  # its only row quarantined
    _drop("openings", "区商务局", period, fault="text_date")  # 2024年4月9日: loads
    _drop("product_sales", "区文广旅局", period, fault="fullwidth_digits")  # loads
    _drop("milestones", "区农业农村和交通运输局", period, fault="wrong_version")
    _drop("milestones", "区文广旅局", period, fault="merged_header")
    _drop("openings", "区文广旅局", period, fault="missing_column")
    out = run_period(FEED, period, url=warehouse_url)

    notes = "\n".join(out["batch"]["notes"])
    assert "模板版本 2023.1 已停用" in notes and "合并单元格" in notes and "缺少列「地址」" in notes
    rejected = drop_dir(load_feed(FEED)) / REJECTED
    assert len(list(rejected.glob("*.reason.txt"))) == 3
    assert out["validation"]["quarantined"] == {
        "events": 2,
        "openings": 0,
        "product_sales": 0,
        "milestones": 0,
    }
    with engine_for(warehouse_url).connect() as conn:
        held = conn.execute(
            text("select failed_expectations, raw_values from audit_quarantine where period = :p"),
            {"p": period},
        ).fetchall()
    reasons = {
        json.loads(raw)["source_file"]: (json.loads(raw), json.loads(failed))
        for failed, raw in held
    }
    ambiguous, failed = reasons[file_name("events", "区商务局", period)]
    assert ambiguous["event_date"] == "3/5" and ambiguous["row_no"] == 5
    assert ambiguous["_sheet"] == "活动台账" and any("_unparseable" in f for f in failed)
    unknown, failed = reasons[file_name("events", "区文广旅局", period)]
    assert unknown["event_type"] == "其他" and any("in_set[event_type]" in f for f in failed)

    # `cm quarantine` says where each held row is in the unit's workbook and what is wrong
    assert cli.main(["quarantine", "--feed", FEED, "--url", warehouse_url, "--json"]) == 0
    located = sorted(r["location"] for r in json.loads(capsys.readouterr().out))
    assert located == [
        f"{period} 文件 {file_name('events', '区商务局', period)} 工作表「活动台账」第5行："
        "列「举办日期」「3/5」无法识别（日期请填 2025-03-05 或 2025年3月5日，数值请填数字）",
        f"{period} 文件 {file_name('events', '区文广旅局', period)} 工作表「活动台账」第5行："
        "列「活动类型」「其他」不在下拉清单内",
    ]

    good_events = sample_rows("events", "区商务局", period)[1:]
    assert _core(warehouse_url, "events", period) == _expected("events", good_events)
    assert _core(warehouse_url, "openings", period) == _expected(
        "openings", sample_rows("openings", "区商务局", period)
    )
    assert _core(warehouse_url, "product_sales", period) == _expected(
        "product_sales", sample_rows("product_sales", "区文广旅局", period)
    )
    assert _core(warehouse_url, "milestones", period) == []


def test_a_month_without_files_is_not_published(warehouse_url: str) -> None:
    with pytest.raises(PeriodNotPublished, match="尚未收到台账文件"):
        run_period(FEED, "2024-06", url=warehouse_url)
