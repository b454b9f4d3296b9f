"""Bad-input gallery, ledger workbooks: hostile-but-realistic files dropped by the units.

Every case runs end to end through ``cm run --feed work_ledgers --period P`` in-process on
SQLite and PostgreSQL, with good files of other units beside the bad one, and asserts the
outcome (exit code), the one-line Chinese reason naming file, unit, sheet and fault, that
the other units' data loaded, what was quarantined, and where the operator sees it: the
run's notes in ``audit_load_run``, the ``.reason.txt`` in ``_rejected/`` and ``cm status``.
The bad files are written here with openpyxl (or patched as zip/XML where openpyxl cannot
express the defect).
"""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select, text

from cm_devtools.ledger_samples import ledger_file, sample_rows
from consumption_monitor.cli import main
from consumption_monitor.feeds.sources.file_drop import (
    DUPLICATES,
    PROCESSED,
    REJECTED,
    drop_dir,
)
from consumption_monitor.feeds.sources.workbook import build_workbook
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for

FEED = "work_ledgers"
P = "2024-03"
BAD_UNIT = "区商务局"  # its events ledger is the bad file; the others are good
SHEET = "活动台账"


# --- helpers ------------------------------------------------------------------------------


def _folder() -> Path:
    folder = drop_dir(load_feed(FEED))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _put(name: str | bytes, body: bytes) -> Path:
    folder = _folder()
    if isinstance(name, bytes):  # a name as a zip tool left it (not UTF-8)
        path = os.path.join(os.fsencode(folder), name)
        with open(path, "wb") as f:
            f.write(body)
        return Path(os.fsdecode(path))
    path = folder / name
    path.write_bytes(body)
    return path


def _good_neighbours() -> None:
    """Files of other units (and another ledger of the bad unit) that must load."""
    _put("总工会活动.xlsx", _ledger("events", "区总工会"))
    _put("商务局门店.xlsx", _ledger("openings", "区商务局"))


def _ledger(stream: str, unit: str, period: str = P, rows=None) -> bytes:
    rows = sample_rows(stream, unit, period) if rows is None else rows
    return ledger_file(stream, unit, period, rows)


def _book(unit: str = BAD_UNIT, period: str = P, rows=None) -> Workbook:
    """The events template filled in, as openpyxl objects to damage."""
    feed = load_feed(FEED)
    rows = sample_rows("events", unit, period) if rows is None else rows
    return build_workbook(feed, feed.stream("events"), unit=unit, period=period, rows=rows)


def _save(wb: Workbook) -> bytes:
    """Saved as a program would (formulas stay formulas, no cached values)."""
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _run(url: str, period: str = P) -> int:
    return main(["run", "--feed", FEED, "--period", period, "--url", url])


def _notes(url: str, period: str = P) -> str:
    runs = schema.audit_load_run
    with engine_for(url).connect() as conn:
        return (
            conn.execute(
                select(runs.c.message)
                .where(runs.c.feed == FEED, runs.c.period == period, runs.c.step == "extract")
                .order_by(runs.c.started_at.desc())
            )
            .scalars()
            .first()
            or ""
        )


def _reasons() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((_folder() / REJECTED).glob("*.txt"))]


def _status(url: str, capsys) -> str:
    capsys.readouterr()
    assert main(["status", "--url", url]) == 0
    return capsys.readouterr().out


def _units(url: str, table: str = "ledger_events", period: str = P) -> dict[str, int]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text(f"select unit, count(*) from core_{table} where period = :p group by unit"),
            {"p": period},
        ).fetchall()
    return dict(rows)


def _neighbours_loaded(url: str) -> None:
    events = _units(url)
    assert events.get("区总工会") == len(sample_rows("events", "区总工会", P))
    assert _units(url, "ledger_openings") == {
        "区商务局": len(sample_rows("openings", "区商务局", P))
    }


def _left_in_drop_folder() -> list[str]:
    """Files neither taken nor set aside (only hidden files may stay)."""
    return sorted(p.name for p in _folder().glob("*") if p.is_file())


def _rejected_one(url: str, capsys, *fragments: str) -> str:
    """The run succeeds for the others; the bad file is rejected with a one-line reason
    holding every fragment, in the run notes, the .reason.txt and cm status."""
    assert _run(url) == 0
    _neighbours_loaded(url)
    assert _units(url).get(BAD_UNIT) is None
    [reason] = _reasons()
    assert "\n" not in reason.strip()
    for fragment in fragments:
        assert fragment in reason, (fragment, reason)
    assert reason.strip() in _notes(url)
    assert reason.strip() in _status(url, capsys)
    assert _left_in_drop_folder() == []
    return reason


# --- shape --------------------------------------------------------------------------------


def test_formatting_dragged_down_is_ignored_and_the_file_loads(warehouse_url, capsys) -> None:
    from openpyxl.styles import PatternFill

    _good_neighbours()
    wb = _book()
    sheet, fill = wb[SHEET], PatternFill("solid", fgColor="FFFF00")
    for r in range(5, 8000):  # formats and blanks dragged over thousands of rows
        for c in range(1, 7):
            sheet.cell(r, c).fill = fill
        sheet.cell(r, 4).value = "   " if r % 2 else ""
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    _neighbours_loaded(warehouse_url)
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    assert _reasons() == []


def test_too_many_rows_reject_that_file_only(warehouse_url, capsys) -> None:
    _good_neighbours()
    row = sample_rows("events", BAD_UNIT, P)[0]
    _put("商务局活动.xlsx", _save(_book(rows=[row] * 5001)))
    _rejected_one(
        warehouse_url,
        capsys,
        f"文件 商务局活动.xlsx（{BAD_UNIT}） 工作表「{SHEET}」 数据超过 5000 行上限（第5005行起）",
    )


def test_a_zip_bomb_is_refused_before_it_is_unpacked(warehouse_url, capsys) -> None:
    _good_neighbours()
    wb = _book()
    wb["说明"]["A30"] = "x" * 32767  # the longest cell openpyxl writes; grown below
    body = _expanded(_save(wb), b"x" * 32767, b"x" * 100_000_000)  # 100 MB of one string
    assert len(body) < 200_000
    _put("商务局活动.xlsx", body)
    tracemalloc.start()
    try:
        _rejected_one(warehouse_url, capsys, "文件 商务局活动.xlsx：解压后", "超过上限 20.0 MB")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30_000_000  # the 100 MB are never expanded (1 GB peak before)


def _expanded(body: bytes, old: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(body)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename).replace(old, new))
    return out.getvalue()


def test_a_file_over_the_size_limit_is_rejected(warehouse_url, capsys) -> None:
    _good_neighbours()
    _put("大文件.xlsx", b"PK\x03\x04" + os.urandom(5_100_000))
    _rejected_one(warehouse_url, capsys, "文件 大文件.xlsx：文件大小 5.1 MB 超过上限 5.0 MB")


def test_merged_data_cells_name_the_range(warehouse_url, capsys) -> None:
    _good_neighbours()
    wb = _book()
    wb[SHEET].merge_cells("A5:A6")
    _put("商务局活动.xlsx", _save(wb))
    reason = _rejected_one(
        warehouse_url, capsys, f"（{BAD_UNIT}） 工作表「{SHEET}」 数据区有合并单元格 A5:A6"
    )
    assert "None" not in reason


def test_a_second_sheet_with_data_rejects_the_file(warehouse_url, capsys) -> None:
    _good_neighbours()
    wb = _book()
    wb.create_sheet("Sheet2")["B3"] = "第二批活动"
    _put("商务局活动.xlsx", _save(wb))
    _rejected_one(
        warehouse_url,
        capsys,
        f"文件 商务局活动.xlsx（{BAD_UNIT}）：工作表「Sheet2」也有数据（B3「第二批活动」）",
        f"平台只读取「{SHEET}」",
    )


def test_an_empty_extra_sheet_is_harmless(warehouse_url) -> None:
    wb = _book()
    wb.create_sheet("Sheet2")
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))


def test_a_total_row_is_skipped_with_a_note(warehouse_url, capsys) -> None:
    _good_neighbours()
    rows = sample_rows("events", BAD_UNIT, P)
    wb = _book(rows=rows)
    total_row = 5 + len(rows)
    sheet = wb[SHEET]
    sheet.cell(total_row, 1, "合 计")
    sheet.cell(total_row, 5, sum(r["attendance"] for r in rows))
    sheet.cell(total_row, 6, sum(r["sales_driven"] for r in rows))
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    _neighbours_loaded(warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        n, attendance = conn.execute(
            text("select count(*), sum(attendance) from core_ledger_events where unit = :u"),
            {"u": BAD_UNIT},
        ).one()
    assert (n, attendance) == (len(rows), sum(r["attendance"] for r in rows))  # not doubled
    note = (
        f"文件 商务局活动.xlsx（{BAD_UNIT}） 工作表「{SHEET}」 "
        f"第{total_row}行为合计/小计行，未计入数据"
    )
    assert note in _notes(warehouse_url)


def test_a_hidden_row_loads_with_a_note(warehouse_url) -> None:
    wb = _book()
    wb[SHEET].row_dimensions[6].hidden = True
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    assert f"（{BAD_UNIT}） 工作表「{SHEET}」 第6行为隐藏行，已按数据入库" in _notes(warehouse_url)


def test_an_inserted_column_is_read_by_its_labels(warehouse_url) -> None:
    wb = _book()
    wb[SHEET].insert_cols(1)
    wb[SHEET]["A4"], wb[SHEET]["A5"] = "序号", 1
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    notes = _notes(warehouse_url)
    assert "表头位置与模板不同，已按表头文字识别" in notes
    assert "表头外的列「序号」（A4）有内容，未入库" in notes


def test_an_inserted_column_names_the_cell_where_the_unit_really_is(warehouse_url, capsys) -> None:
    _good_neighbours()
    wb = _book()
    wb[SHEET].insert_cols(1)
    wb[SHEET]["C2"] = "商务局"  # not the list's name
    _put("商务局活动.xlsx", _save(wb))
    _rejected_one(
        warehouse_url,
        capsys,
        f"文件 商务局活动.xlsx 工作表「{SHEET}」 C2「填报单位」「商务局」不在责任单位清单内",
    )


# --- cells --------------------------------------------------------------------------------


def test_a_formula_without_a_cached_value_is_rejected_not_null(warehouse_url, capsys) -> None:
    _good_neighbours()
    wb = _book()
    wb[SHEET]["E5"] = "=SUM(100,200)"
    _put("商务局活动.xlsx", _save(wb))
    _rejected_one(
        warehouse_url,
        capsys,
        f"（{BAD_UNIT}） 工作表「{SHEET}」 单元格 E5 为公式但没有计算结果",
        "请在 Excel 中打开、保存后重新报送",
    )


def test_a_formula_with_its_cached_value_loads_the_value(warehouse_url) -> None:
    wb = _book()
    wb[SHEET]["E5"] = "=SUM(100,200)"
    body = _with_cached_value(_save(wb), b"300")
    _put("商务局活动.xlsx", body)
    assert _run(warehouse_url) == 0
    with engine_for(warehouse_url).connect() as conn:
        got = conn.execute(
            text("select attendance from core_ledger_events where unit = :u and row_no = 5"),
            {"u": BAD_UNIT},
        ).scalar_one()
    assert got == 300


def _with_cached_value(body: bytes, value: bytes) -> bytes:
    """The workbook as Excel saves it: the formula with its computed value."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</f><v />", b"</f><v>" + value + b"</v>")
            dst.writestr(info, data)
    return out.getvalue()


def test_an_ambiguous_comma_is_quarantined_a_thousands_separator_is_not(
    warehouse_url, capsys
) -> None:
    rows = sample_rows("events", BAD_UNIT, P)
    wb = _book(rows=rows)
    wb[SHEET]["F5"] = "12,34"  # 带动消费: 12.34 or 1234?
    wb[SHEET]["E6"] = "1,234"  # 参与人次: a thousands separator
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    with engine_for(warehouse_url).connect() as conn:
        loaded = dict(
            conn.execute(
                text("select row_no, attendance from core_ledger_events where unit = :u"),
                {"u": BAD_UNIT},
            ).fetchall()
        )
    assert 5 not in loaded and loaded[6] == 1234
    capsys.readouterr()
    assert main(["quarantine", "--feed", FEED, "--url", warehouse_url, "--json"]) == 0
    [held] = json.loads(capsys.readouterr().out)
    assert held["location"].startswith(f"{P} 文件 商务局活动.xlsx 工作表「{SHEET}」第5行：")
    assert "列「带动消费（万元）」「12,34」无法识别" in held["location"]


@pytest.mark.parametrize("dash", ["－", "—", "–", "ー", "―", "−"])
def test_full_width_and_long_dashes_in_dates_are_read(warehouse_url, dash: str) -> None:
    wb = _book()
    wb[SHEET]["C5"] = f"２０２４{dash}03{dash}05"
    _put("商务局活动.xlsx", _save(wb))
    assert _run(warehouse_url) == 0
    with engine_for(warehouse_url).connect() as conn:
        got = conn.execute(
            text("select event_date from core_ledger_events where unit = :u and row_no = 5"),
            {"u": BAD_UNIT},
        ).scalar_one()
    assert str(got) == "2024-03-05"


# --- not a workbook -----------------------------------------------------------------------


def _ole(*names: str) -> bytes:
    """A compound-file (OLE) container with the given directory entry names, as Office
    writes an encrypted workbook (EncryptionInfo + EncryptedPackage) or an old .xls."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    entries = b"".join(n.encode("utf-16-le").ljust(128, b"\0") for n in ("Root Entry", *names))
    return header + entries.ljust(4096, b"\0")


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (
            _ole("EncryptionInfo", "EncryptedPackage"),
            "工作簿有密码保护，无法读取；请取消密码后重新报送",
        ),
        (_ole("Workbook"), "为旧版 .xls 格式，请用模板（.xlsx）填写后重新报送"),
        ("单位,活动\n区商务局,x\n".encode(), "不是 Excel 工作簿（.xlsx）"),
        (b"", "不是 Excel 工作簿（.xlsx）"),
        (b"PK\x03\x04" + b"\0" * 100, "文件已损坏，无法作为 Excel 工作簿打开"),
    ],
    ids=["password", "xls", "csv", "empty", "broken_zip"],
)
def test_what_is_not_a_ledger_workbook_says_what_it_is(
    warehouse_url, capsys, body: bytes, fault: str
) -> None:
    _good_neighbours()
    _put("商务局活动.xlsx", body)
    _rejected_one(warehouse_url, capsys, f"文件 商务局活动.xlsx：{fault}")


# --- file names and the drop folder -------------------------------------------------------


def test_a_gbk_name_from_a_zip_is_stored_safely_and_shown_readably(warehouse_url) -> None:
    _good_neighbours()
    raw = "商务局3月活动.xlsx".encode("gbk")
    _put(raw, _ledger("events", BAD_UNIT))
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    sidecars = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (_folder() / PROCESSED / P).glob("*.json")
    ]
    mine = next(s for s in sidecars if s["unit"] == BAD_UNIT and s["stream"] == "events")
    assert mine["file"] == "商务局3月活动.xlsx" and mine["original_name_bytes"] == raw.hex()
    with engine_for(warehouse_url).connect() as conn:
        files = conn.execute(text("select distinct source_file from core_ledger_events")).scalars()
        assert "商务局3月活动.xlsx" in set(files)
    # the next run of another period is not blocked by anything this file left behind
    _put("4月.xlsx", _ledger("events", "区总工会", "2024-04"))
    assert _run(warehouse_url, "2024-04") == 0


def test_a_very_long_name_is_shortened_and_the_file_still_handled(warehouse_url, capsys) -> None:
    _good_neighbours()
    long_name = "西区商务局" * 16 + ".xlsx"  # 85 characters, 245 bytes (the limit: 255)
    _put(long_name, _ledger("events", BAD_UNIT))  # a good file...
    assert _run(warehouse_url) == 0
    assert _left_in_drop_folder() == []
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    [sidecar] = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (_folder() / PROCESSED / P).glob("*.json")
        if json.loads(p.read_text(encoding="utf-8"))["original_name"] == long_name
    ]
    assert len(sidecar["file"]) <= 80 and "…" in sidecar["file"]
    # ...and a bad one with a long name: set aside under a safe name, reason readable
    bad = _save(_book())
    bad_wb = load_workbook(io.BytesIO(bad))
    bad_wb[SHEET].merge_cells("A5:A6")
    _put("甲" * 83 + ".xlsx", _save(bad_wb))
    assert _run(warehouse_url) == 0
    [reason] = _reasons()
    assert "甲" * 60 + "…" in reason and "数据区有合并单元格 A5:A6" in reason
    assert all(len(p.name.encode()) < 100 for p in (_folder() / REJECTED).iterdir())


def test_hidden_files_and_folders_are_reported_not_silent(warehouse_url) -> None:
    _good_neighbours()
    _put(".商务局活动.xlsx", _ledger("events", BAD_UNIT))
    _put("~$总工会活动.xlsx", b"lock")
    (_folder() / "新建文件夹").mkdir()
    assert _run(warehouse_url) == 0
    _neighbours_loaded(warehouse_url)
    notes = _notes(warehouse_url)
    assert (
        "已忽略隐藏文件 .商务局活动.xlsx（以“.”或“~$”开头的文件不处理；如是台账请改名后重新报送）"
        in notes
    )
    assert "已忽略隐藏文件 ~$总工会活动.xlsx" in notes
    assert "已忽略 新建文件夹：不是普通文件" in notes


def test_a_name_with_a_backslash_is_stored_under_a_safe_name(warehouse_url) -> None:
    _put("商务局\\3月\\活动.xlsx", _ledger("events", BAD_UNIT))
    _put("C:\\temp\\总工会.xlsx", b"")  # a path as a zip tool may leave it, and bad
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    assert _reasons() == [
        "文件 C:\\temp\\总工会.xlsx：不是 Excel 工作簿（.xlsx），请用模板填写后重新报送"
        "；该文件未入库，请更正后重新报送\n"
    ]
    for kind in (PROCESSED + "/" + P, REJECTED):
        stored = [p.name for p in (_folder() / kind).iterdir()]
        assert stored and all("\\" not in name and "总工会" not in name for name in stored)


@pytest.mark.parametrize(
    "damage", ["", "{", '{"file": "x.xlsx"}'], ids=["empty", "corrupt", "incomplete"]
)
def test_a_broken_sidecar_blocks_no_file_and_no_period(warehouse_url, capsys, damage: str) -> None:
    _good_neighbours()
    _put("商务局活动.xlsx", _ledger("events", BAD_UNIT))
    assert _run(warehouse_url) == 0
    folder = _folder()
    broken = next(
        p
        for p in (folder / PROCESSED / P).glob("*.json")
        if json.loads(p.read_text(encoding="utf-8"))["unit"] == "区总工会"
    )
    broken.write_text(damage, encoding="utf-8")  # a crash half-way through writing it
    # another period loads, and says what is broken
    _put("4月.xlsx", _ledger("events", BAD_UNIT, "2024-04"))
    assert _run(warehouse_url, "2024-04") == 0
    assert _units(warehouse_url, period="2024-04") == {
        BAD_UNIT: len(sample_rows("events", BAD_UNIT, "2024-04"))
    }
    message = f"登记文件 {PROCESSED}/{P}/{broken.name} 已损坏"
    assert message in _notes(warehouse_url, "2024-04")
    # the same period still loads its other files; the unit whose sidecar broke is named
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == len(sample_rows("events", BAD_UNIT, P))
    assert message in _notes(warehouse_url) and "不计入 2024-03 的批次" in _notes(warehouse_url)
    assert message in _status(warehouse_url, capsys)


# --- periods and versions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "fault"),
    [
        ("2099-01", "统计期 2099-01 尚未结束（目前可入库的最近一期为"),
        ("2023-12", "统计期 2023-12 早于责任单位工作台账的起始期 2024-01，不能入库"),
    ],
    ids=["future", "before_first"],
)
def test_a_file_of_a_period_that_cannot_load_is_rejected_with_the_reason(
    warehouse_url, capsys, period: str, fault: str
) -> None:
    _good_neighbours()
    _put("商务局活动.xlsx", _ledger("events", BAD_UNIT, P, rows=sample_rows("events", BAD_UNIT, P)))
    _put("错期.xlsx", ledger_file("events", "区总工会", period, []))
    assert _run(warehouse_url) == 0
    [reason] = _reasons()
    assert reason.startswith(f"文件 错期.xlsx（区总工会）：{fault}")
    assert reason.strip() in _notes(warehouse_url) and reason.strip() in _status(
        warehouse_url, capsys
    )
    assert not (_folder() / PROCESSED / period).exists()


def test_a_file_of_another_period_is_noted_and_shown_until_loaded(warehouse_url, capsys) -> None:
    _good_neighbours()
    _put("5月.xlsx", _ledger("events", BAD_UNIT, "2024-05"))
    assert _run(warehouse_url) == 0
    assert (
        f"文件 5月.xlsx（{BAD_UNIT}）为 2024-05 的台账，已登记，将在 2024-05 的运行中入库"
        "（本次运行 2024-03）" in _notes(warehouse_url)
    )
    assert "已收到但未入库的台账：2024-05（1 个文件）" in _status(warehouse_url, capsys)
    assert _run(warehouse_url, "2024-05") == 0
    assert "已收到但未入库" not in _status(warehouse_url, capsys)


def test_a_resent_older_version_is_explained(warehouse_url, capsys) -> None:
    rows = sample_rows("events", BAD_UNIT, P)
    old = _ledger("events", BAD_UNIT, rows=rows)
    _put("v1.xlsx", old)
    assert _run(warehouse_url) == 0
    _put("v2.xlsx", _ledger("events", BAD_UNIT, rows=rows[:1]))
    assert _run(warehouse_url) == 0
    _put("v1-重发.xlsx", old)
    assert _run(warehouse_url) == 0
    assert _units(warehouse_url)[BAD_UNIT] == 1  # the newer version stays
    [aside] = (_folder() / DUPLICATES).glob("*.reason.txt")
    reason = aside.read_text(encoding="utf-8").strip()
    assert reason.startswith("文件 v1-重发.xlsx 与已处理的 v1.xlsx（2024-03）内容相同")
    assert (
        f"这是{BAD_UNIT}的旧版本，2024-03 现采用之后报送的 v2.xlsx，重发旧版本不会替换它" in reason
    )
    assert reason in _notes(warehouse_url)


def test_only_bad_files_reject_the_period_with_every_reason(warehouse_url, capsys) -> None:
    wb = _book()
    wb[SHEET].merge_cells("A5:A6")
    _put("商务局活动.xlsx", _save(wb))
    _put("总工会活动.xlsx", b"")
    assert _run(warehouse_url) == 1
    out = capsys.readouterr().out
    assert "没有可入库的文件" in out and "数据区有合并单元格 A5:A6" in out
    assert "文件 总工会活动.xlsx：不是 Excel 工作簿" in _notes(warehouse_url)
    assert len(_reasons()) == 2
