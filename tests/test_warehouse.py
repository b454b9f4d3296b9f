"""Loads on the embedded SQLite file and on PostgreSQL: idempotent, atomic, revisable.

Every test runs twice (``warehouse_url`` is parametrised) against the real feed server.
"""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import func, inspect, select, text

from consumption_monitor.feeds.errors import FeedUnavailable
from consumption_monitor.pipeline.steps import (
    BatchRejected,
    extract_step,
    load_step,
    run_period,
    validate_step,
)
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import warehouse_digest
from consumption_monitor.warehouse.loader import LoadRefused
from consumption_monitor.warehouse.migrate import head_revision, upgrade

PERIODS = ["2024-02", "2024-03", "2024-04", "2024-05", "2024-06", "2024-07"]


def count(url: str, table: str, where: str = "1=1", **params) -> int:
    with engine_for(url).connect() as conn:
        return conn.execute(text(f"select count(*) from {table} where {where}"), params).scalar()


def test_migrations_create_every_table_and_view(warehouse_url: str) -> None:
    assert upgrade(warehouse_url) == head_revision()
    assert upgrade(warehouse_url) == head_revision()  # a second upgrade is a no-op
    insp = inspect(engine_for(warehouse_url))
    tables = set(insp.get_table_names())
    assert set(schema.metadata.tables) <= tables
    assert {"mart_retail_monthly", "mart_indicator_snapshot_latest"} <= set(insp.get_view_names())


def test_migrated_schema_matches_the_metadata(warehouse_url: str) -> None:
    """The Alembic migrations and the table definitions in schema.py have not drifted."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []


@pytest.mark.postgres
def test_identifier_columns_sort_byte_by_byte_on_postgres(pg_database: str) -> None:
    """Columns a spec declares ``identifier`` are COLLATE "C" after the migrations (their
    index builds skip the locale), and no other column is."""
    from consumption_monitor.feeds.spec import list_feeds, load_feed

    upgrade(pg_database)
    expected = set()
    for name in list_feeds():
        for stream in load_feed(name).streams:
            tables = [f"core_{stream.table}", *([f"stg_{stream.table}"] * stream.staging)]
            for column in (c for c in stream.columns if c.identifier):
                expected |= {(table, column.name, "C") for table in tables}
    with engine_for(pg_database).connect() as conn:
        found = conn.execute(
            text(
                "select table_name, column_name, collation_name from information_schema.columns "
                "where table_schema = 'public' and collation_name is not null"
            )
        ).all()
    assert expected and set(map(tuple, found)) == expected


def test_only_a_string_column_is_an_identifier() -> None:
    from consumption_monitor.feeds.spec import SpecError, _column

    assert _column({"name": "k", "identifier": True}, "x").identifier
    with pytest.raises(SpecError, match="only a string column is an identifier"):
        _column({"name": "n", "type": "integer", "identifier": True}, "x")


def test_chunk_and_check_rows_are_positive_and_check_rows_groups_chunks() -> None:
    from consumption_monitor.feeds.spec import SpecError, _stream

    def stream(**extra):
        raw = {"name": "s", "table": "t", "path": "/s", "keys": ["k"], "columns": [{"name": "k"}]}
        return _stream({**raw, **extra}, "f")

    assert stream(chunk_rows=10, check_rows=40).check_rows == 40
    with pytest.raises(SpecError, match="check_rows groups chunks: it needs chunk_rows"):
        stream(check_rows=40)
    for bad in (0, -5, True, "50000"):
        with pytest.raises(SpecError, match="must be a positive integer"):
            stream(chunk_rows=bad)


def test_a_clean_period_loads_everything(feed_server, warehouse_url: str) -> None:
    out = run_period("retail_monthly", "2024-03", url=warehouse_url)
    assert out["validation"]["verdict"] == "passed"
    assert out["load"]["outcome"] == "loaded"
    assert count(warehouse_url, "core_retail_district_totals") == 2
    assert count(warehouse_url, "core_retail_above_quota") == out["batch"]["rows"]["above_quota"]
    assert count(warehouse_url, "raw_payload") == out["batch"]["pages"]
    with engine_for(warehouse_url).connect() as conn:
        snap = conn.execute(
            text(
                "select actual_month, actual_ytd, yoy_basis from mart_indicator_snapshot_latest "
                "where kpi_id = 'm19_retail_sales_total' and period = '2024-03'"
            )
        ).one()
        month = conn.execute(
            text("select retail_month from mart_retail_monthly where period = '2024-03'")
        ).scalar()
    assert snap.actual_month == pytest.approx(month)
    assert snap.yoy_basis == "published"


def test_three_reruns_leave_core_and_marts_byte_for_byte_equal(
    feed_server, warehouse_url: str
) -> None:
    run_period("retail_monthly", "2024-04", url=warehouse_url)
    first = warehouse_digest(engine_for(warehouse_url))
    outcomes = [
        run_period("retail_monthly", "2024-04", url=warehouse_url)["load"]["outcome"]
        for _ in range(3)
    ]
    assert outcomes == ["unchanged"] * 3
    assert warehouse_digest(engine_for(warehouse_url)) == first  # computed_at included
    assert count(warehouse_url, "audit_load_batch") == 1
    assert count(warehouse_url, "audit_load_run", "step = 'load'") == 4


def test_shuffled_backfill_builds_the_same_warehouse(
    feed_server, warehouse_url: str, new_warehouse_url
) -> None:
    ordered, shuffled = warehouse_url, new_warehouse_url()
    for period in PERIODS:
        run_period("retail_monthly", period, url=ordered)
    mixed = PERIODS[:]
    random.Random(7).shuffle(mixed)
    assert mixed != PERIODS
    for period in mixed:
        run_period("retail_monthly", period, url=shuffled)
    a = warehouse_digest(engine_for(ordered), exclude_volatile=True)
    b = warehouse_digest(engine_for(shuffled), exclude_volatile=True)
    assert a == b
    assert a["core_retail_district_totals"]["rows"] == 2 * len(PERIODS)


def test_a_revised_batch_supersedes_and_history_is_kept(feed_server, warehouse_url: str) -> None:
    first = run_period("retail_monthly", "2024-05", url=warehouse_url)
    feed_server.faults.add("revision", period="2024-05", revision=1)
    second = run_period("retail_monthly", "2024-05", url=warehouse_url)
    old, new = first["batch"]["batch_id"], second["batch"]["batch_id"]
    assert old != new
    assert second["load"]["superseded"] == old
    assert second["batch"]["revision"] == 2
    b = schema.audit_load_batch
    with engine_for(warehouse_url).connect() as conn:
        states = dict(conn.execute(select(b.c.batch_id, b.c.status)).fetchall())
        current = conn.execute(select(b.c.batch_id).where(b.c.is_current)).scalars().all()
        core_batches = (
            conn.execute(text("select distinct batch_id from core_retail_above_quota"))
            .scalars()
            .all()
        )
        stg_batches = conn.execute(
            text("select count(distinct batch_id) from stg_retail_above_quota")
        ).scalar()
        history = conn.execute(
            text(
                "select count(*) from mart_indicator_snapshot "
                "where kpi_id = 'm19_retail_sales_total'"
            )
        ).scalar()
        latest = conn.execute(
            text(
                "select source_batches from mart_indicator_snapshot_latest "
                "where kpi_id = 'm19_retail_sales_total'"
            )
        ).scalar()
    assert states == {old: "superseded", new: "loaded"}
    assert current == [new] and core_batches == [new]
    assert stg_batches == 2  # the earlier version stays queryable
    assert history == 2 and latest == new


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost(
    feed_server, warehouse_url: str
) -> None:
    feed_server.faults.add("bad_rows", period="2024-06")
    out = run_period("retail_monthly", "2024-06", url=warehouse_url)
    received = out["batch"]["rows"]["above_quota"]
    quarantined = out["validation"]["quarantined"]["above_quota"]
    loaded = out["load"]["rows"]["above_quota"]
    assert out["validation"]["verdict"] == "warning"  # the bad USCC check character warns
    assert quarantined == 7  # negative, wrong region, non-numeric, wrong period, unit, 2 dups
    assert loaded + quarantined == received
    with engine_for(warehouse_url).connect() as conn:
        rows = conn.execute(select(schema.audit_quarantine)).mappings().all()
        warned = conn.execute(
            text(
                "select unexpected_count from audit_validation_result "
                "where column_name = '_uscc_check_ok' and success = :f"
            ),
            {"f": False},
        ).scalar()
    reasons = {r["row_number"]: json.loads(r["failed_expectations"]) for r in rows}
    raw = {r["row_number"]: json.loads(r["raw_values"]) for r in rows}
    assert any("region_code" in label for label in reasons[8])
    assert raw[11]["value_month"] == "12,3x4"  # the raw value, not a coerced one
    assert raw[17]["unit"] == "元"
    assert warned == 1


def test_a_rejected_batch_loads_nothing(feed_server, warehouse_url: str) -> None:
    """A missing column is critical: the batch is rejected, the current version stays."""
    run_period("retail_monthly", "2024-07", url=warehouse_url)
    before = warehouse_digest(engine_for(warehouse_url))
    feed_server.faults.add("drop_column", period="2024-07", column="value_ytd")
    batch = extract_step("retail_monthly", "2024-07", url=warehouse_url)
    with pytest.raises(BatchRejected, match="value_ytd") as info:
        validate_step("retail_monthly", batch, url=warehouse_url)
    assert "未入库" in str(info.value)
    assert "None" not in str(info.value)  # a table-level check says it failed, not "不符 None"
    with pytest.raises(LoadRefused):
        load_step("retail_monthly", batch, url=warehouse_url)
    assert warehouse_digest(engine_for(warehouse_url)) == before
    b = schema.audit_load_batch
    with engine_for(warehouse_url).connect() as conn:
        status = conn.execute(select(b.c.status).where(b.c.batch_id == batch["batch_id"])).scalar()
        failed = conn.execute(
            select(func.count())
            .select_from(schema.audit_validation_result)
            .where(
                schema.audit_validation_result.c.batch_id == batch["batch_id"],
                schema.audit_validation_result.c.success.is_(False),
            )
        ).scalar()
    assert status == "rejected"
    assert failed >= 1


def test_a_truncated_feed_fails_clearly_and_loads_nothing(feed_server, warehouse_url: str) -> None:
    feed_server.faults.add("truncate", times=-1, path="above-quota")
    upgrade(warehouse_url)
    with pytest.raises(FeedUnavailable, match=r"truncated|IncompleteRead|Connection broken|JSON"):
        run_period("retail_monthly", "2024-03", url=warehouse_url)
    assert count(warehouse_url, "audit_load_batch") == 0
    assert count(warehouse_url, "core_retail_above_quota") == 0
    assert count(warehouse_url, "audit_load_run", "outcome = 'failed'") == 1


def test_transient_faults_are_retried_and_the_period_loads(feed_server, warehouse_url) -> None:
    feed_server.faults.add("http_500", times=2)
    feed_server.faults.add("http_429", times=1, retry_after=1)
    feed_server.faults.add("truncate", times=1, path="district-totals")
    out = run_period("retail_monthly", "2024-03", url=warehouse_url)
    assert out["load"]["outcome"] == "loaded"
    statuses = [r["status"] for r in feed_server.request_log]
    assert statuses.count(500) == 2 and statuses.count(429) == 1
