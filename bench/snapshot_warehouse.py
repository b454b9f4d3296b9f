"""The warehouse :mod:`bench.snapshot` measures: five years of every monthly feed and ten
million trade-in transactions, on PostgreSQL, built in minutes rather than the hours a real
10M extract would take.

Three steps, each of which leaves a warehouse the product could have produced:

1. **base** — every feed from 2024-01 (the sample feed server's first period) to
   :data:`LAST` through the real pipeline (``cm run``: extract → validate → load →
   snapshot per period, the catch-up path), the ledgers as dropped Excel files, trade-in at
   the sample server's district volume (~2,000 rows a month);
2. **history** — the years before 2024 (from :data:`FIRST_YEAR`), which the sample server
   does not serve, copied by SQL from a loaded year of the same weekday parity: every
   current batch gets a new batch id and audit row, periods and dates shift by whole years
   (29 February becomes the 28th). Trade-in gets no history: the programme and its rules
   (``reference/tradein_rules_<year>.yaml``) start in 2024. 12315 deadlines of those
   years stay null, as the product leaves them for years without a holiday calendar;
3. **multiply** — trade-in grows to ``rows`` transactions by ``insert … select``: every
   base row is copied into its own month with a fresh order id and fresh pseudonyms
   (SHA-256 of the pseudonym and the copy number, still 64 hex characters, never a raw
   identifier), so each month keeps its share and profile. Indexes and the primary key are
   dropped for the copy and rebuilt after (same names and definitions), the batches' row
   counts updated, and the monthly rollup ``core_tradein_monthly`` rebuilt period by period
   with the loader's own ``refresh_rollup`` (what each load of a period does), then
   everything is vacuumed and analysed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

from consumption_monitor.common.periods import Period
from consumption_monitor.feeds.spec import list_feeds, load_feed

FIRST_LOADED, LAST = Period(2024, 1), Period(2025, 12)
FIRST_YEAR = 2021  # 2021-01 .. 2025-12: five years, sixty months
AS_OF = date(2026, 1, 20)  # the sample server then publishes up to 2025-12
TRADEIN = "tradein_transactions"
CORE = "core_tradein_transactions"
REPO = Path(__file__).resolve().parent.parent


def _env(server_url: str, work: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CM_DATA_DIR": str(work / "data"),
        "CM_INCOMING_DIR": str(work / "incoming"),
        "CM_PII_KEY": os.environ.get("CM_PII_KEY") or uuid.uuid4().hex * 2,
        "CM_FEED_BASE_URL": server_url,
        "GX_ANALYTICS_ENABLED": "false",
    }
    env.pop("CM_FEED_TOKEN", None)
    env.pop("CM_WAREHOUSE_URL", None)
    return env


def load_base(url: str, work: Path) -> dict[str, int]:
    """Every feed from :data:`FIRST_LOADED` to :data:`LAST` through ``cm run``; returns the
    periods loaded per feed. Raises if a period failed."""
    from cm_devtools import ledger_samples as samples
    from cm_devtools.sample_server import FeedServer
    from consumption_monitor.feeds.sources.file_drop import drop_dir

    loaded: dict[str, int] = {}
    with FeedServer(as_of=AS_OF) as server:
        env = _env(server.url, work)
        incoming = Path(env["CM_INCOMING_DIR"])
        samples.write_samples(
            drop_dir(load_feed(samples.FEED), incoming), str(FIRST_LOADED), str(LAST)
        )
        for feed in list_feeds():
            out = subprocess.run(
                [sys.executable, "-m", "consumption_monitor", "run", "--feed", feed,
                 "--from", str(FIRST_LOADED), "--to", str(LAST), "--url", url, "--json"],
                env=env, capture_output=True, text=True, cwd=REPO,
            )  # fmt: skip
            try:
                outcomes = json.loads(out.stdout)
            except ValueError:
                raise RuntimeError(f"cm run {feed} failed:\n{out.stderr[-3000:]}") from None
            failed = [o for o in outcomes if o["outcome"] == "failed"]
            if out.returncode or failed:
                raise RuntimeError(f"cm run {feed}: failed periods {failed[:3]}")
            loaded[feed] = sum(o["outcome"] in ("loaded", "unchanged") for o in outcomes)
    return loaded


def _source_year(year: int) -> int:
    """The loaded year a history year is copied from: same parity, so weekdays drift by
    at most a few days."""
    return LAST.year - (LAST.year - year) % 2


def _shifted(column: str, kind: str) -> str:
    if kind == "period":
        return f"m.year || substr(t.{column}, 5)"
    if kind == "date":
        return (
            f"case when t.{column} ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$' then to_char("
            f"to_date(t.{column}, 'YYYY-MM-DD') + make_interval(years => m.shift), "
            f"'YYYY-MM-DD') else t.{column} end"
        )
    if kind == "batch":
        return "m.new_id"
    return f"t.{column}"


def fill_history(conn: psycopg.Connection) -> int:
    """Copy the loaded years into :data:`FIRST_YEAR` .. 2023 for every feed but trade-in;
    returns the number of batches added."""
    years = ", ".join(f"({y}, {_source_year(y)})" for y in range(FIRST_YEAR, FIRST_LOADED.year))
    conn.execute(
        f"""create temp table batch_map as
        select b.batch_id as old_id, left(md5(b.batch_id || ':' || y.target), 20) as new_id,
               y.target::text as year, y.target - y.source as shift
        from audit_load_batch as b
        join (values {years}) as y (target, source) on substr(b.period, 1, 4) = y.source::text
        where b.is_current and b.feed <> %s""",
        (TRADEIN,),
    )
    conn.execute(
        """insert into audit_load_batch (batch_id, feed, period, revision, content_sha256,
            archive_dir, status, is_current, verdict, rows_received, rows_loaded,
            rows_quarantined, first_seen_at, loaded_at)
        select m.new_id, b.feed, m.year || substr(b.period, 5), b.revision,
               encode(sha256(convert_to(b.content_sha256 || m.new_id, 'UTF8')), 'hex'),
               replace(b.archive_dir, b.period, m.year || substr(b.period, 5)),
               b.status, b.is_current, b.verdict, b.rows_received, b.rows_loaded,
               b.rows_quarantined, b.first_seen_at + make_interval(years => m.shift),
               b.loaded_at + make_interval(years => m.shift)
        from audit_load_batch as b join batch_map as m on m.old_id = b.batch_id"""
    )
    for feed in list_feeds():
        if feed == TRADEIN:
            continue
        spec = load_feed(feed)
        for stream in spec.streams:
            kinds = {c.name: "date" if c.type == "date" else "" for c in stream.columns}
            kinds[spec.period_field] = "period"
            kinds["batch_id"] = "batch"
            tables = [f"core_{stream.table}"] + ([f"stg_{stream.table}"] if stream.staging else [])
            for table in tables:
                conn.execute(
                    f"insert into {table} ({', '.join(kinds)}) "
                    f"select {', '.join(_shifted(c, k) for c, k in kinds.items())} "
                    f"from {table} as t join batch_map as m on m.old_id = t.batch_id"
                )
    added = conn.execute("select count(*) from batch_map").fetchone()[0]
    conn.execute("drop table batch_map")
    return added


def _index_definitions(conn: psycopg.Connection) -> tuple[list[str], list[str]]:
    """(drop, create) statements for the trade-in core table's primary key and indexes."""
    pk = conn.execute(
        "select conname, pg_get_constraintdef(oid) from pg_constraint "
        "where conrelid = %s::regclass and contype = 'p'",
        (CORE,),
    ).fetchall()
    indexes = conn.execute(
        "select indexname, indexdef from pg_indexes where tablename = %s "
        "and indexname not in (select conname from pg_constraint where conrelid = %s::regclass)",
        (CORE, CORE),
    ).fetchall()
    drop = [f"alter table {CORE} drop constraint {name}" for name, _ in pk]
    drop += [f"drop index {name}" for name, _ in indexes]
    create = [f"alter table {CORE} add constraint {name} {d}" for name, d in pk]
    create += [d for _, d in indexes]
    return drop, create


def multiply_tradein(conn: psycopg.Connection, rows: int) -> int:
    """Grow trade-in to ``rows`` transactions (see the module docstring); returns the
    row count. The base rows are numbered in a hashed order so that the remainder (``rows``
    is rarely a multiple of the base) falls on every month alike."""
    columns = [c.name for c in load_feed(TRADEIN).stream("transactions").columns] + ["batch_id"]
    fresh = {
        "order_id": "substr(t.order_id, 1, 8) || lpad(to_hex(c), 4, '0') || substr(t.order_id, 9)",
        "consumer_key": "encode(sha256(convert_to(t.consumer_key || ':' || c, 'UTF8')), 'hex')",
        "phone_key": "encode(sha256(convert_to(t.phone_key || ':' || c, 'UTF8')), 'hex')",
    }
    conn.execute(
        f"create temp table base as select row_number() over (order by md5(order_id)) as r, "
        f"{', '.join(columns)} from {CORE}"
    )
    base = conn.execute("select count(*) from base").fetchone()[0]
    copies = max(0, (rows - 1) // base)
    drop, create = _index_definitions(conn)
    for statement in drop:
        conn.execute(statement)
    conn.execute(
        f"insert into {CORE} ({', '.join(columns)}) "
        f"select {', '.join(fresh.get(c, f't.{c}') for c in columns)} "
        f"from base as t cross join generate_series(1, {copies}) as c "
        f"where c * {base} + t.r <= {rows}"
    )
    conn.execute("set maintenance_work_mem = '512MB'")
    for statement in create:
        conn.execute(statement)
    conn.execute("drop table base")
    conn.execute(
        f"""update audit_load_batch as b set rows_received = n.rows, rows_loaded = n.rows
        from (select batch_id, count(*) as rows from {CORE} group by batch_id) as n
        where n.batch_id = b.batch_id"""
    )
    return conn.execute(f"select count(*) from {CORE}").fetchone()[0]


def refresh_rollups(url: str) -> list[float]:
    """Rebuild the trade-in rollup of every period as the loader does after loading it
    (one transaction per period); returns the seconds per period."""
    from consumption_monitor.warehouse.db import make_engine
    from consumption_monitor.warehouse.loader import refresh_rollup

    spec = load_feed(TRADEIN)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            periods = conn.exec_driver_sql(f"select distinct period from {CORE}").scalars()
            periods = sorted(periods)
        seconds = []
        for period in periods:
            start = time.perf_counter()
            with engine.begin() as conn:
                refresh_rollup(conn, spec.stream("transactions"), spec.period_field, period)
            seconds.append(time.perf_counter() - start)
    finally:
        engine.dispose()
    return seconds


def tradein_rows(conn: psycopg.Connection) -> int:
    return conn.execute(f"select count(*) from {CORE}").fetchone()[0]


def vacuum_analyze(conn: psycopg.Connection) -> None:
    """What autovacuum would have done by the time the snapshot runs (visibility map, hint
    bits, statistics); ``conn`` must be in autocommit mode."""
    conn.execute("vacuum (analyze)")


def timed(step, *args) -> tuple[object, float]:
    start = time.perf_counter()
    result = step(*args)
    return result, time.perf_counter() - start
