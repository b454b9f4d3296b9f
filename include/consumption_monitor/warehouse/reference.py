"""Reference tables loaded from the package's ``reference/`` files (like dbt seeds).

Why in the warehouse: the 12315 views count statutory deadlines in working days in SQL, so
the official holiday calendar must be a table there, numbered exactly as
:mod:`consumption_monitor.common.workdays` numbers it. The file stays the source of truth: each
migrate reloads a table whose file changed (its sha256 differs from the one recorded in
``audit_reference_data``), so correcting or extending the calendar needs no migration, and
the views recompute every deadline from the corrected table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, Table, delete, func, insert, select

from consumption_monitor.common.workdays import parse_calendar, reference_path
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.bulk import write_rows


@dataclass(frozen=True)
class ReferenceTable:
    """A table rebuilt from one file: ``rows`` turns the file's bytes into tuples."""

    table: Table
    source: Callable[[], Path]
    columns: Sequence[str]
    rows: Callable[[bytes], Iterable[tuple[Any, ...]]]
    version: str = ""  # changes when the rows made from the same file change (code change)


def _calendar_rows(data: bytes) -> Iterable[tuple[Any, ...]]:
    calendar = parse_calendar(yaml.safe_load(data.decode("utf-8")))
    for d in calendar.days(fallback=True):  # + the weekends-only years (fallback_*)
        yield d.day.isoformat(), d.is_workday, d.workday_seq, d.day_type, d.holiday_name


REFERENCE_TABLES: tuple[ReferenceTable, ...] = (
    ReferenceTable(
        schema.ref_workday_calendar,
        reference_path,
        ("day", "is_workday", "workday_seq", "day_type", "holiday_name"),
        _calendar_rows,
        version="fallback-years-2",  # issue 15: weekends-only years after the file's last
    ),
)


def refresh_reference(conn: Connection, *, force: bool = False) -> list[str]:
    """Reload each reference table whose file changed (or all with ``force``), inside the
    caller's transaction; returns the tables reloaded."""
    state = schema.audit_reference_data
    reloaded = []
    for ref in REFERENCE_TABLES:
        data = ref.source().read_bytes()
        digest = hashlib.sha256(data + ref.version.encode()).hexdigest()
        name = ref.table.name
        recorded = conn.execute(select(state.c.sha256).where(state.c.name == name)).scalar()
        present = conn.execute(select(func.count()).select_from(ref.table)).scalar()
        if not force and recorded == digest and present:
            continue
        conn.execute(delete(ref.table))
        count = write_rows(conn, ref.table, ref.columns, ref.rows(data))
        conn.execute(delete(state).where(state.c.name == name))
        conn.execute(
            insert(state).values(name=name, sha256=digest, rows=count, loaded_at=datetime.now(UTC))
        )
        reloaded.append(name)
    return reloaded
