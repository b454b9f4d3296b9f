"""Bad-input gallery, personal data: wherever a sender puts an ID number or a phone, no
clear identifier is ever written (archive, warehouse, reports), on SQLite and PostgreSQL.

Every case runs end to end through ``cm run`` against the real sample feed server with a
``personal_data`` fault, then scans every file under the data folder and every text
column of every warehouse table for the clear identifiers.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import String, Text, inspect, select, text

from cm_devtools.sample_server.faults import LEAKED_ID, LEAKED_MOBILE
from consumption_monitor.cli import main
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for

CLEAR = (LEAKED_ID, LEAKED_MOBILE, "139 1234 5678", "139-1234-5678", LEAKED_ID[:17])


def _files_with_clear_data(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".xlsx":  # compressed: read the cells
            book = load_workbook(io.BytesIO(data), data_only=True)
            data = "\n".join(
                str(c.value) for ws in book for row in ws.iter_rows() for c in row
            ).encode()
        if any(clear.encode() in data for clear in CLEAR):
            hits.append(str(path.relative_to(root)))
    return hits


def _rows_with_clear_data(url: str) -> list[str]:
    engine = engine_for(url)
    hits = []
    with engine.connect() as conn:
        found_in = inspect(conn)
        for table in found_in.get_table_names():
            columns = [
                c["name"]
                for c in found_in.get_columns(table)
                if isinstance(c["type"], String | Text)
            ]
            for column in columns:
                for clear in CLEAR:
                    found = conn.execute(
                        text(f'select count(*) from "{table}" where "{column}" like :v'),
                        {"v": f"%{clear}%"},
                    ).scalar()
                    if found:
                        hits.append(f"{table}.{column}")
    return hits


def _assert_nothing_clear(data_dir: Path, url: str) -> None:
    assert _files_with_clear_data(data_dir) == []
    assert _rows_with_clear_data(url) == []


def _extract_message(url: str, feed: str, period: str) -> str:
    runs = schema.audit_load_run
    with engine_for(url).connect() as conn:
        return conn.execute(
            select(runs.c.message)
            .where(runs.c.feed == feed, runs.c.period == period, runs.c.step == "extract")
            .order_by(runs.c.started_at.desc())
        ).scalar()


@pytest.mark.parametrize("how", ["remark", "nested", "number"])
def test_personal_data_in_an_undeclared_field_is_pseudonymised(
    feed_server, warehouse_url: str, tmp_path: Path, how: str, capsys
) -> None:
    feed_server.faults.add("personal_data", how=how, period="2025-03")
    assert (
        main(["run", "--feed", "retail_monthly", "--period", "2025-03", "--url", warehouse_url])
        == 0
    )
    assert "loaded" in capsys.readouterr().out
    _assert_nothing_clear(tmp_path / "data", warehouse_url)
    assert "个人信息" in _extract_message(warehouse_url, "retail_monthly", "2025-03")


def test_a_renamed_declared_field_rejects_the_batch_and_keeps_only_the_protected_form(
    feed_server, warehouse_url: str, tmp_path: Path, capsys
) -> None:
    feed_server.faults.add("personal_data", how="rename", period="2025-03")
    code = main(
        ["run", "--feed", "tradein_transactions", "--period", "2025-03", "--url", warehouse_url]
    )
    out = capsys.readouterr().out
    assert code == 1 and "声明的个人信息字段缺失" in out and "consumer_id" in out
    failed = tmp_path / "data" / "archive" / "tradein_transactions" / "2025-03" / "_failed"
    assert any(failed.rglob("*.json")), "the protected form of the page is kept"
    _assert_nothing_clear(tmp_path / "data", warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        loaded = conn.execute(text("select count(*) from core_tradein_transactions")).scalar()
    assert loaded == 0


def test_personal_data_without_a_key_is_refused_before_a_byte_is_written(
    feed_server, sqlite_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("CM_PII_KEY")
    feed_server.faults.add("personal_data", how="remark", period="2025-03")
    code = main(["run", "--feed", "retail_monthly", "--period", "2025-03", "--url", sqlite_url])
    out = capsys.readouterr().out
    assert code == 1 and "未配置" in out and "整批拒收" in out
    _assert_nothing_clear(tmp_path / "data", sqlite_url)
    # a clean period of the same feed still loads without a key
    assert (
        main(["run", "--feed", "retail_monthly", "--period", "2025-04", "--url", sqlite_url]) == 0
    )


def test_personal_data_in_a_ledger_remark_is_pseudonymised_everywhere(
    warehouse_url: str, tmp_path: Path, capsys
) -> None:
    from cm_devtools.ledger_samples import write_samples
    from consumption_monitor.feeds.sources.file_drop import drop_dir
    from consumption_monitor.feeds.spec import load_feed

    folder = drop_dir(load_feed("work_ledgers"))
    written = write_samples(folder, "2025-03", "2025-03")
    events = next(f for f in written if f.stream == "events")
    write_samples(
        folder, "2025-03", "2025-03", faults={("events", events.unit, "2025-03"): "personal_data"}
    )
    argv = ["run", "--feed", "work_ledgers", "--period", "2025-03", "--url", warehouse_url]
    assert main(argv) == 0
    assert "loaded" in capsys.readouterr().out
    _assert_nothing_clear(tmp_path / "data", warehouse_url)  # archive, drop folder, warehouse
    with engine_for(warehouse_url).connect() as conn:
        names = conn.execute(text("select event_name from core_ledger_events")).scalars().all()
    assert any("〔mobile:" in n and "〔resident_id:" in n for n in names)
    # rerunning the period finds the protected copy: same batch, nothing new
    assert main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


def _ledger_with_personal_data(folder: Path, name: str | None = None) -> Path:
    """One unit's events ledger for 2025-03 with a phone and an ID in a text cell."""
    from cm_devtools.ledger_samples import write_samples

    written = write_samples(folder, "2025-03", "2025-03")
    events = next(f for f in written if f.stream == "events")
    for other in written:
        if other.path != events.path:
            other.path.unlink()
    write_samples(
        folder, "2025-03", "2025-03", faults={("events", events.unit, "2025-03"): "personal_data"}
    )
    for other in folder.glob("*.xlsx"):
        if other != events.path:
            other.unlink()
    if name:
        return events.path.rename(folder / name)
    return events.path


def test_a_rejected_ledger_with_personal_data_is_not_kept(
    warehouse_url: str, tmp_path: Path, capsys
) -> None:
    from cm_devtools.ledger_samples import META_SHEET
    from consumption_monitor.feeds.sources.file_drop import REJECTED, drop_dir
    from consumption_monitor.feeds.spec import load_feed

    folder = drop_dir(load_feed("work_ledgers"))
    path = _ledger_with_personal_data(folder)
    book = load_workbook(path)
    book[META_SHEET].cell(3, 2, "2023.1")  # an old template version: the file is rejected
    book.save(path)
    argv = ["run", "--feed", "work_ledgers", "--period", "2025-03", "--url", warehouse_url]
    assert main(argv) == 1
    assert "未保存" in capsys.readouterr().out
    rejected = folder / REJECTED
    assert not list(rejected.glob("*.xlsx"))  # only the reason and the checksum
    assert any("未保存" in p.read_text(encoding="utf-8") for p in rejected.glob("*.reason.txt"))
    _assert_nothing_clear(tmp_path / "data", warehouse_url)


def test_a_file_name_with_a_phone_number_is_masked(
    warehouse_url: str, tmp_path: Path, capsys
) -> None:
    from consumption_monitor.feeds.sources.file_drop import drop_dir
    from consumption_monitor.feeds.spec import load_feed

    folder = drop_dir(load_feed("work_ledgers"))
    _ledger_with_personal_data(folder, name=f"联系人{LEAKED_MOBILE}.xlsx")
    argv = ["run", "--feed", "work_ledgers", "--period", "2025-03", "--url", warehouse_url]
    assert main(argv) == 0
    capsys.readouterr()
    _assert_nothing_clear(tmp_path / "data", warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        names = conn.execute(text("select url from raw_payload")).scalars().all()
    assert any("139****5678" in n for n in names)
