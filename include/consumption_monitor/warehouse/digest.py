"""Read-only summaries of the warehouse for operators: the demo summary, table digests.

Table digests hash every row of a table in key order with a canonical text form, so two
warehouses (or one before and after a rerun) can be compared table by table, across
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, inspect, select, text

from consumption_monitor.warehouse import schema

#: columns that differ between warehouses built apart: times, and the snapshot chain (a
#: snapshot's id hashes its predecessor's)
VOLATILE_COLUMNS = {
    "computed_at",
    "data_loaded_at",
    "snapshot_id",
    "previous_snapshot_id",
    "published_at",  # mart_revisions: when a version was loaded
    # plausibility rules judge a batch against the history loaded before it: a period
    # loaded before its predecessors is judged with less (无历史数据，未检查), so the
    # verdict a snapshot carries depends on the load order by design
    "validation_state",
}
#: logs of computations: their rows depend on the order periods were loaded in, not only on
#: the data (a period loaded before its predecessors gets a snapshot recomputed later)
HISTORY_TABLES = {"mart_indicator_snapshot"}


def canonical_value(value: Any) -> Any:
    """One text form per value whatever the backend returned: SQLite gives ``462`` or
    ``462.5`` where PostgreSQL gives ``Decimal('462.0000')``, so every number is written with
    six decimals (integers exactly, through Decimal). Booleans count as 0/1: SQLite stores
    them as integers."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | Decimal):
        return format(Decimal(value), ".6f")
    if isinstance(value, float):
        return format(value, ".6f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _order_key(dialect: str, name: str, column_type: Any) -> str:
    """An ORDER BY term that sorts alike on SQLite and PostgreSQL: text by code point
    (PostgreSQL's database collation would sort Chinese and mixed case differently), NULLs
    first (PostgreSQL puts them last by default)."""
    term = f'"{name}"'
    if dialect == "postgresql" and _python_type(column_type) is str:
        term += ' collate "C"'
    return term + " nulls first"


def _python_type(column_type: Any) -> Any:
    """The column's Python type, or None for types that have none (SQLite view columns)."""
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def table_digest(
    engine: Engine, table_name: str, *, exclude: set[str] | None = None
) -> dict[str, Any]:
    """sha256 over the table's rows in a total order (every column sorted on), the same for
    the same content on SQLite and PostgreSQL."""
    exclude = exclude or set()
    dialect = engine.dialect.name
    with engine.connect() as conn:
        columns = [c for c in inspect(conn).get_columns(table_name) if c["name"] not in exclude]
        quoted = ", ".join(f'"{c["name"]}"' for c in columns)
        order = ", ".join(_order_key(dialect, c["name"], c["type"]) for c in columns)
        rows = conn.execute(text(f'select {quoted} from "{table_name}" order by {order}'))
        digest = hashlib.sha256()
        count = 0
        for row in rows:
            digest.update(
                json.dumps(
                    [canonical_value(v) for v in row], ensure_ascii=False, default=str
                ).encode()
            )
            count += 1
    return {"table": table_name, "rows": count, "sha256": digest.hexdigest()}


def analytic_tables(engine: Engine) -> list[str]:
    """Core tables, mart tables and mart views: what analysts read."""
    insp = inspect(engine)
    names = insp.get_table_names() + insp.get_view_names()
    return sorted(n for n in names if n.startswith(("core_", "mart_")))


def warehouse_digest(engine: Engine, *, exclude_volatile: bool = False) -> dict[str, dict]:
    """Digest of every analytic table. ``exclude_volatile`` compares warehouses built apart
    (other times, other load orders): without timestamps, snapshot chains and history logs;
    ``mart_indicator_snapshot_latest`` still holds every current snapshot value."""
    exclude = VOLATILE_COLUMNS if exclude_volatile else set()
    names = analytic_tables(engine)
    if exclude_volatile:
        names = [n for n in names if n not in HISTORY_TABLES]
    return {name: table_digest(engine, name, exclude=exclude) for name in names}


def demo_summary(engine: Engine, feed: str = "retail_monthly") -> dict[str, Any]:
    """Periods loaded, rows, validation outcomes and the latest snapshot of a feed."""
    b = schema.audit_load_batch
    with engine.connect() as conn:
        batches = conn.execute(
            select(
                b.c.period,
                b.c.batch_id,
                b.c.revision,
                b.c.verdict,
                b.c.rows_loaded,
                b.c.rows_quarantined,
            )
            .where(b.c.feed == feed, b.c.is_current)
            .order_by(b.c.period)
        ).fetchall()
        rejected = conn.execute(
            select(b.c.period, b.c.batch_id).where(b.c.feed == feed, b.c.status == "rejected")
        ).fetchall()
        snapshot = (
            conn.execute(
                text(
                    "select kpi_id, name, period, unit, actual_month, actual_ytd, yoy_month_pct, "
                    "yoy_ytd_pct, validation_state, computed_at "
                    "from mart_indicator_snapshot_latest "
                    "where actual_ytd is not null and period = "
                    "(select max(period) from mart_indicator_snapshot_latest "
                    "where actual_ytd is not null) "
                    "order by kpi_id desc"
                )
            )
            .mappings()
            .fetchall()
        )
    verdicts: dict[str, int] = {}
    for row in batches:
        verdicts[row.verdict or "unknown"] = verdicts.get(row.verdict or "unknown", 0) + 1
    return {
        "feed": feed,
        "periods_loaded": len(batches),
        "first_period": batches[0].period if batches else None,
        "last_period": batches[-1].period if batches else None,
        "rows_loaded": sum(r.rows_loaded or 0 for r in batches),
        "rows_quarantined": sum(r.rows_quarantined or 0 for r in batches),
        "verdicts": verdicts,
        "revised_periods": sorted(r.period for r in batches if r.revision > 1),
        "rejected_batches": [{"period": r.period, "batch_id": r.batch_id} for r in rejected],
        "latest_snapshot": [
            {k: (canonical_value(v) if k == "computed_at" else v) for k, v in dict(r).items()}
            for r in snapshot
        ],
    }
