"""Store a validation run in the warehouse's audit tables.

One transaction per run: the run itself (``audit_load_run``, step ``validate``), every
expectation's result (``audit_validation_result``), the quarantined rows with their raw
values (``audit_quarantine``, replaced per batch: quarantine is a function of the content)
and the batch's verdict and status (``audit_load_batch``). The warehouse knows nothing of
validation; validation writes its results through the warehouse's tables and helpers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from consumption_monitor.validation.review import open_items, reapply_rejections
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.loader import lock_period, now, record_run

if TYPE_CHECKING:
    from consumption_monitor.common.runs import RunContext
    from consumption_monitor.validation.runner import ValidationReport

Records = Mapping[str, Sequence[dict] | Mapping[int, dict]]  # stream -> row -> raw record


def record_validation(
    engine: Engine,
    report: ValidationReport,
    records: Records,
    *,
    started_at: datetime,
    run: RunContext | None = None,
    owner: str = "未指定",
) -> str:
    """Store every expectation's result and the quarantined rows of a validation run, and
    open a review item for every warning of a batch that loads (``owner``: the feed's
    responsible unit, from the measure catalog)."""
    at = now()
    with engine.begin() as conn:
        lock_period(conn, report.feed, report.period)
        run_id = record_run(
            conn,
            feed=report.feed,
            period=report.period,
            step="validate",
            outcome=report.verdict,
            batch_id=report.batch_id,
            started_at=started_at,
            run=run,
            message=json.dumps(report.summary(), ensure_ascii=False),
        )
        _store_results(conn, report, run_id, at)
        _replace_quarantine(conn, report, records, at)
        _set_verdict(conn, report)
        open_items(conn, report, owner, at)
        reapply_rejections(conn, report.batch_id, at)
    return run_id


def _store_results(conn: Connection, report: ValidationReport, run_id: str, at: datetime) -> None:
    conn.execute(
        insert(schema.audit_validation_result),
        [
            {
                "run_id": run_id,
                "batch_id": report.batch_id,
                "feed": report.feed,
                "period": report.period,
                "stream": o.stream,
                "suite": o.suite,
                "expectation_index": o.index,
                "expectation_type": o.expectation_type,
                "column_name": o.column,
                "severity": o.severity,
                "description": o.description,
                "success": o.success,
                "element_count": o.element_count,
                "unexpected_count": o.unexpected_count,
                "unexpected_percent": o.unexpected_percent,
                "sample": json.dumps(o.sample, ensure_ascii=False),
                "kwargs": json.dumps(o.kwargs, ensure_ascii=False),
                "exception": o.exception,
                "validated_at": at,
            }
            for o in report.outcomes
        ],
    )


def _replace_quarantine(
    conn: Connection, report: ValidationReport, records: Records, at: datetime
) -> None:
    """Quarantine is a function of the content: replace the batch's rows, never add twice."""
    q = schema.audit_quarantine
    conn.execute(delete(q).where(q.c.batch_id == report.batch_id))
    quarantine_rows = [
        {
            "batch_id": report.batch_id,
            "stream": stream,
            "row_number": row,
            "feed": report.feed,
            "period": report.period,
            "failed_expectations": json.dumps(labels, ensure_ascii=False),
            "raw_values": json.dumps(
                records[stream][row], ensure_ascii=False, sort_keys=True, default=str
            ),
            "entity_key": _entity(records[stream][row], report.entity_keys.get(stream)),
            "quarantined_at": at,
        }
        for stream, rows in report.quarantine.items()
        for row, labels in rows.items()
    ]
    if quarantine_rows:
        conn.execute(insert(q), quarantine_rows)


def _set_verdict(conn: Connection, report: ValidationReport) -> None:
    """The batch's verdict; its status only while it is not loaded or superseded."""
    batch = schema.audit_load_batch
    values: dict[str, Any] = {
        "verdict": report.verdict,
        "rows_quarantined": report.quarantined_rows,
    }
    status = conn.execute(
        select(batch.c.status).where(batch.c.batch_id == report.batch_id)
    ).scalar()
    if status in (None, "extracted", "validated", "rejected"):
        values["status"] = "rejected" if report.rejected else "validated"
    conn.execute(update(batch).where(batch.c.batch_id == report.batch_id).values(**values))


def _entity(record: dict[str, Any], key: str | None) -> str | None:
    """Who a quarantined row is about, from the record as received: its text, without the
    NUL characters PostgreSQL cannot store (shown as U+FFFD; ``raw_values`` keeps them)."""
    value = record.get(key) if key else None
    return None if value is None else str(value)[:64].replace("\x00", "\ufffd")
