"""Indicator snapshots: the values a measure is judged on, frozen when computed.

A snapshot row is immutable. Its id is derived from the KPI, the period, the source batches
and the values, so recomputing an unchanged period adds nothing, while a revised batch adds
a new row and the earlier one stays as history. ``mart_indicator_snapshot_latest`` gives the
latest row per KPI and period. This is the seed of the measure catalog: the retail KPIs of
measure 19 (消费品市场月度监测) with no numeric target.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from consumption_monitor.warehouse import schema


@dataclass(frozen=True)
class RetailKpi:
    kpi_id: str
    name: str
    indicator_code: str
    measure_no: int = 19


RETAIL_KPIS = (
    RetailKpi("retail_sales_total", "社会消费品零售总额", "retail_total"),
    RetailKpi("retail_sales_above_quota", "限额以上单位消费品零售额", "retail_above_quota"),
)

_RETAIL_SQL = text(
    """
    select t.value_month, t.value_ytd, t.yoy_month_pct, t.yoy_ytd_pct, t.unit, t.batch_id,
           b.verdict
    from core_retail_district_totals as t
    left join audit_load_batch as b on b.batch_id = t.batch_id
    where t.period = :period and t.indicator_code = :indicator
    """
)


def snapshot_id(kpi_id: str, period: str, values: dict[str, Any]) -> str:
    """Content id of a snapshot: numbers in canonical form, so SQLite's floats and
    PostgreSQL's Decimals give the same id for the same figures."""
    from consumption_monitor.reporting import canonical_value

    canonical = {k: canonical_value(v) for k, v in values.items()}
    payload = json.dumps([kpi_id, period, canonical], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _insert_if_new(conn: Connection, row: dict[str, Any]) -> bool:
    table = schema.mart_indicator_snapshot
    exists = conn.execute(
        select(table.c.snapshot_id).where(table.c.snapshot_id == row["snapshot_id"])
    ).first()
    if exists:
        return False
    conn.execute(insert(table).values(**row, computed_at=datetime.now(UTC)))
    return True


def compute_retail(engine: Engine, period: str) -> dict[str, Any]:
    """Snapshot the district retail KPIs of ``period``; returns what was found and added."""
    added, found = [], []
    with engine.begin() as conn:
        for kpi in RETAIL_KPIS:
            row = conn.execute(
                _RETAIL_SQL, {"period": period, "indicator": kpi.indicator_code}
            ).first()
            if row is None:
                continue
            values = {
                "kpi_id": kpi.kpi_id,
                "period": period,
                "measure_no": kpi.measure_no,
                "name": kpi.name,
                "unit": row.unit,
                "actual_month": row.value_month,
                "actual_ytd": row.value_ytd,
                "yoy_month_pct": row.yoy_month_pct,
                "yoy_ytd_pct": row.yoy_ytd_pct,
                "yoy_basis": "published",
                "target_value": None,
                "target_comparator": None,
                "expected_to_date": None,
                "completion_ratio": None,
                "status": None,
                "source_batches": row.batch_id,
                "validation_state": row.verdict,
            }
            values["snapshot_id"] = snapshot_id(kpi.kpi_id, period, values)
            found.append(kpi.kpi_id)
            if _insert_if_new(conn, values):
                added.append(kpi.kpi_id)
    return {"period": period, "kpis": found, "added": added}
