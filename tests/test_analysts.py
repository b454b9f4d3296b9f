"""The analysts' warehouse: documented views, the generated data dictionary, the example
queries, and the read-only role ``cm_analyst`` tested by connecting as it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from consumption_monitor.indicators.catalog import load_catalog
from consumption_monitor.indicators.snapshots import compute_snapshot
from consumption_monitor.pipeline.steps import run_period
from consumption_monitor.warehouse import schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.dictionary import (
    DICTIONARY_FILE,
    render_dictionary,
    undocumented,
    view_columns,
    view_docs,
)
from consumption_monitor.warehouse.migrate import upgrade
from consumption_monitor.warehouse.roles import ANALYST_ROLE, ensure_analyst_role

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "sql" / "examples").glob("*.sql"))
FORBIDDEN = [  # raw, staging, core, audit and quarantine: never readable by analysts
    "raw_payload",
    "stg_retail_above_quota",
    "core_retail_above_quota",
    "core_complaints_12315_cases",
    "audit_quarantine",
    "audit_load_batch",
    "audit_validation_result",
]


@pytest.fixture(scope="module")
def views() -> dict[str, list[str]]:
    return view_columns()


def test_every_view_and_column_is_documented(views) -> None:
    assert undocumented(views, view_docs(), list(schema.metadata.tables.values())) == []
    marts = {p.stem for p in (REPO / "sql" / "marts").glob("*.sql")}
    assert marts <= set(views)
    feeds_with_marts = {"retail", "ecommerce", "employment", "complaints_12315", "ledger"}
    assert all(any(v.startswith(f"mart_{f}") for v in views) for f in feeds_with_marts)


def test_the_data_dictionary_is_up_to_date(views) -> None:
    committed = DICTIONARY_FILE.read_text(encoding="utf-8")
    assert render_dictionary(views) == committed, "run `cm docs` and commit docs/"
    assert "`mart_indicator_snapshot_latest`（视图）" in committed
    assert "| `completion_ratio` | 完成度" in committed


def _load(url: str) -> None:
    for period in ("2025-02", "2025-03"):
        run_period("retail_monthly", period, url=url)
    run_period("complaints_12315", "2025-03", url=url)
    compute_snapshot(engine_for(url), "2025-03")


def test_the_example_queries_run(feed_server, warehouse_url: str) -> None:
    assert len(EXAMPLES) >= 4
    _load(warehouse_url)
    with engine_for(warehouse_url).connect() as conn:
        for path in EXAMPLES:
            rows = conn.execute(text(path.read_text(encoding="utf-8"))).fetchall()
            assert rows, f"{path.name} returned nothing"
            if path.stem == "kpi_status_by_measure":
                assert [r.measure_no for r in rows] == list(range(1, 20))
                assert sum(r.kpis for r in rows) == len(load_catalog().kpis)


def _as_analyst(url: str) -> psycopg.Connection:
    database = url.rsplit("/", 1)[1]
    host = url.split("@", 1)[1].rsplit("/", 1)[0]
    return psycopg.connect(
        f"postgresql://{ANALYST_ROLE}@{host}/{database}", autocommit=True, connect_timeout=5
    )


@pytest.mark.postgres
def test_the_analyst_role_reads_marts_and_nothing_else(feed_server, pg_database: str) -> None:
    _load(pg_database)
    granted = ensure_analyst_role(engine_for(pg_database))["granted"]
    assert "mart_indicator_snapshot" in granted and "mart_retail_monthly" in granted
    assert not [g for g in granted if g.startswith(("raw_", "stg_", "core_", "audit_"))]
    with _as_analyst(pg_database) as conn:
        assert conn.execute("select current_user").fetchone()[0] == ANALYST_ROLE
        for name in granted:
            conn.execute(f'select * from "{name}" limit 1')
        for path in EXAMPLES:
            assert conn.execute(path.read_text(encoding="utf-8")).fetchall()
        count = conn.execute("select count(*) from mart_indicator_snapshot_latest").fetchone()
        assert count[0] >= 50
        for name in FORBIDDEN:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f'select * from "{name}" limit 1')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from mart_indicator_snapshot")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create table analyst_scratch (x int)")


@pytest.mark.postgres
def test_recreated_views_keep_the_analyst_grants(feed_server, pg_database: str) -> None:
    _load(pg_database)
    ensure_analyst_role(engine_for(pg_database))
    engine = engine_for(pg_database)
    with engine.begin() as conn:  # a changed view file makes migrate recreate every view
        conn.execute(text("update audit_schema_views set sha256 = 'changed'"))
    upgrade(pg_database)
    with _as_analyst(pg_database) as conn:
        assert conn.execute("select count(*) from mart_retail_monthly").fetchone()[0] == 2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from raw_payload limit 1")


def test_analyst_role_is_postgres_only(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    with pytest.raises(SystemExit):
        ensure_analyst_role(engine_for(sqlite_url))
