"""Indicator snapshots: every KPI of the measure catalog for a period, frozen when computed.

The values, components (actual year to date, target, expected to date, completion ratio)
and status are computed by one SQL statement in the warehouse (``snapshots.query``). Rows
are immutable: a computation whose result equals the latest snapshot of a (KPI, period)
adds nothing, any difference (a revised batch, a later month's data) adds a row that points
to the one it replaces, and ``mart_indicator_snapshot_latest`` shows the newest. The id of
a row hashes its content and its predecessor, so recomputing is deterministic and a value
that reverts to an earlier state still adds a new row.

Every KPI has a row for every period computed, 暂无数据 included: a computation for some
feeds also computes the KPIs that have no row for the period yet (those without a feed,
and those whose feed has no data for it, e.g. January of feeds published with February),
so ``mart_indicator_snapshot_latest`` is complete for every KPI and period.

A seasonal pace reads the KPI's own history: the year-to-date values of its latest
snapshots in the previous ``years`` complete years (December present and positive), as a
cumulative share of December's, averaged over those years; months without a value carry
the previous month's share. Fewer than ``min_years`` complete years -> linear (the basis
says so). A revision of last year's data reaches this year's shares through
``affected_periods`` (to the end of the next year); one two years back only when this year's
periods are recomputed (``cm snapshot`` or the next load of their feed).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, inspect, select, text

from consumption_monitor.common.periods import Period
from consumption_monitor.indicators.catalog import Catalog, Kpi, load_catalog
from consumption_monitor.indicators.snapshot_query import build_query
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import is_postgres

Seasonal = tuple[tuple[float, ...] | None, str]  # shares (None: linear) and their basis

_LOCK_ID = 5104030005
# What makes two snapshots of a KPI and period the same: everything but ids and timing
# (the load time of the batches is kept, but the batch ids already identify them).
CONTENT = (
    "kpi_id",
    "period",
    "measure_no",
    "kind",
    "name",
    "unit",
    "actual_month",
    "actual_ytd",
    "prior_ytd",
    "comparable_ytd",
    "yoy_month_pct",
    "yoy_ytd_pct",
    "yoy_basis",
    "target_value",
    "target_comparator",
    "months_elapsed",
    "pace",
    "pace_basis",
    "expected_to_date",
    "completion_ratio",
    "status",
    "milestone_status",
    "status_date",
    "data_period",
    "source_batches",
    "validation_state",
)


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:")


def _canonical(value: Any) -> Any:
    """One comparable form per value, whatever the database returned (SQLite gives
    timestamps as text and numbers as int or float)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 6)
    if isinstance(value, str) and _TIMESTAMP.match(value):
        value = _datetime(value)
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return value


def _datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def snapshot_id(content: dict[str, Any], previous: str | None) -> str:
    payload = json.dumps(
        [previous, [_canonical(content[k]) for k in CONTENT]], ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _views(conn: Connection) -> set[str]:
    return set(inspect(conn).get_view_names())


def _stored(column: str, value: Any) -> float | None:
    """``value`` as the snapshot table stores it (PostgreSQL rounds to the column's scale),
    so that a recomputation compares equal to what was stored."""
    if value is None:
        return None
    scale = schema.mart_indicator_snapshot.c[column].type.scale
    return round(float(value), scale) if scale is not None else float(value)


def _shares(history: dict[str, float], year: int) -> tuple[float, ...] | None:
    """The cumulative shares of ``year``'s December by month, or None when incomplete."""
    december = history.get(f"{year:04d}-12")
    if not december or december <= 0:
        return None
    shares, share = [], 0.0
    for month in range(1, 13):
        value = history.get(f"{year:04d}-{month:02d}")
        share = share if value is None else max(share, min(1.0, value / december))
        shares.append(share)
    return tuple(shares)


def seasonal_paces(
    conn: Connection, period: str, kpis: list[Kpi], views: set[str] | None = None
) -> dict[str, Seasonal]:
    """Per seasonal KPI, the 12 cumulative shares of its own previous years (None: too
    little history, linear) and the basis the report shows."""
    wanted = [k for k in kpis if k.pace.kind == "seasonal"]
    views = _views(conn) if views is None else views
    if not wanted or "mart_indicator_snapshot_latest" not in views:
        return {}
    year = Period.parse(period).year
    first = year - max(k.pace.years for k in wanted)
    sql = text(
        "select kpi_id, period, actual_ytd from mart_indicator_snapshot_latest "
        "where period between :first and :last and actual_ytd is not null"
    )
    history: dict[str, dict[str, float]] = {}
    for r in conn.execute(sql, {"first": f"{first:04d}-01", "last": f"{year - 1:04d}-12"}):
        history.setdefault(r.kpi_id, {})[r.period] = float(r.actual_ytd)
    out: dict[str, Seasonal] = {}
    for kpi in wanted:
        years = range(year - kpi.pace.years, year)
        complete = {y: s for y in years if (s := _shares(history.get(kpi.id, {}), y))}
        if len(complete) < kpi.pace.min_years:
            out[kpi.id] = (None, f"历史不足（需{kpi.pace.min_years}个完整年度），按线性")
            continue
        mean = tuple(
            round(sum(s[m] for s in complete.values()) / len(complete), 6) for m in range(12)
        )
        span = "、".join(f"{y}" for y in sorted(complete))
        out[kpi.id] = ((*mean[:11], 1.0), f"按{span}年同期累计平均占比")
    return out


def compute_rows(
    conn: Connection, period: str, catalog: Catalog, kpis: list[Kpi] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The snapshot rows of ``period`` as the warehouse computes them (nothing stored), and
    the KPIs whose source view is missing."""
    views = _views(conn)
    seasonal = seasonal_paces(conn, period, kpis or catalog.kpis, views)
    query = build_query(catalog, period, conn.dialect.name, views, kpis, seasonal)
    computed = conn.execute(text(query.sql), query.params).mappings().all()
    rows = []
    for r in computed:
        kpi = catalog.kpi(r["kpi_id"])
        row = {
            "kpi_id": kpi.id,
            "period": str(Period.parse(period)),
            "measure_no": kpi.measure_number,
            "kind": kpi.kind,
            "name": kpi.name,
            "unit": kpi.unit,
            "yoy_basis": kpi.yoy if kpi.yoy != "none" else None,
            "target_comparator": kpi.target.comparator if kpi.target else None,
            "data_loaded_at": _datetime(r["data_loaded_at"]),
            "source_batches": r["source_batches"] or "",
        }
        for key in (
            "actual_month",
            "actual_ytd",
            "prior_ytd",
            "comparable_ytd",
            "yoy_month_pct",
            "yoy_ytd_pct",
            "target_value",
            "expected_to_date",
            "completion_ratio",
        ):
            row[key] = _stored(key, r[key])
        for key in (
            "months_elapsed",
            "pace",
            "pace_basis",
            "status",
            "milestone_status",
            "status_date",
        ):
            row[key] = r[key]
        row["data_period"] = r["data_period"]
        row["validation_state"] = r["validation_state"] if r["data_period"] else None
        rows.append(row)
    return rows, query.skipped


def _latest(conn: Connection, period: str) -> dict[str, dict[str, Any]]:
    view = text("select * from mart_indicator_snapshot_latest where period = :p")
    return {r["kpi_id"]: dict(r) for r in conn.execute(view, {"p": period}).mappings()}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(_canonical(a.get(k)) == _canonical(b.get(k)) for k in CONTENT)


def compute_snapshot(
    engine: Engine,
    period: str,
    *,
    feeds: list[str] | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Compute and store the snapshot of ``period`` (every KPI, or those of ``feeds``);
    returns the KPIs computed, those added as new snapshots and those with a missing view."""
    catalog = catalog or load_catalog()
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        latest = _latest(conn, period)
        # The feeds' KPIs, and every KPI without a row for the period yet (complete).
        kpis = [k for k in catalog.kpis if feeds is None or k.feed in feeds or k.id not in latest]
        if not kpis:
            return {"period": period, "kpis": [], "added": [], "missing_sources": []}
        rows, missing = compute_rows(conn, period, catalog, kpis)
        now = datetime.now(UTC)
        added = []
        for row in rows:
            before = latest.get(row["kpi_id"])
            if before is not None and _same(row, before):
                continue
            previous = before["snapshot_id"] if before else None
            row.update(
                snapshot_id=snapshot_id(row, previous),
                previous_snapshot_id=previous,
                computed_at=now,
            )
            added.append(row)
        if added:
            conn.execute(insert(schema.mart_indicator_snapshot), added)
    return {
        "period": period,
        "kpis": [r["kpi_id"] for r in rows],
        "added": [r["kpi_id"] for r in added],
        "missing_sources": missing,
    }


def read_snapshot(engine: Engine, period: str) -> list[dict[str, Any]]:
    """The latest snapshot rows of ``period``, in catalog order."""
    order = {k.id: i for i, k in enumerate(load_catalog().kpis)}
    with engine.connect() as conn:
        rows = [
            {k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()}
            for r in _latest(conn, period).values()
        ]
    return sorted(rows, key=lambda r: order.get(r["kpi_id"], len(order)))


def affected_periods(engine: Engine, periods: list[str], *, feed: str | None = None) -> list[str]:
    """The periods whose snapshots a change in ``periods`` can alter: each period to the
    end of the next year (year-to-date sums, and computed YoY a year later), up to the
    latest period loaded (by ``feed`` when given: its KPIs read only its data)."""
    b = schema.audit_load_batch
    query = select(b.c.period).where(b.c.is_current)
    if feed is not None:
        query = query.where(b.c.feed == feed)
    with engine.connect() as conn:
        newest = conn.execute(query.order_by(b.c.period.desc())).scalar()
    if not periods or newest is None:
        return sorted(set(periods))
    out: set[str] = set()
    for p in periods:
        start = Period.parse(p)
        end = min(Period(start.year + 1, 12), max(Period.parse(newest), start))
        current = start
        while current <= end:
            out.add(str(current))
            current = current.shift(1)
    return sorted(out)
