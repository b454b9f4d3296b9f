"""Month partitions of core_tradein_transactions on PostgreSQL (issue 17 §1): a load builds
the month apart and swaps it in; a reload replaces the partition; readers see the old month
or the new one, never half; a failed load leaves the old month. SQLite keeps one table.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from alembic import command
from sqlalchemy import text

from cm_devtools.sample_server import tradein_data
from consumption_monitor.feeds.engine import ExtractedBatch
from consumption_monitor.feeds.frames import iter_frames
from consumption_monitor.feeds.spec import load_feed
from consumption_monitor.feeds.text_limits import TextTooLong
from consumption_monitor.pipeline.steps import extract_step, load_step, run_period, validate_step
from consumption_monitor.warehouse import partitions, schema
from consumption_monitor.warehouse.db import engine_for
from consumption_monitor.warehouse.digest import table_digest
from consumption_monitor.warehouse.loader import load_batch
from consumption_monitor.warehouse.migrate import alembic_config, upgrade

FEED = "tradein_transactions"
PERIOD = "2025-03"
ROWS = 3000
CORE = "core_tradein_transactions"


@pytest.fixture(autouse=True)
def _volume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tradein_data.ROWS_ENV, str(ROWS))


def _scalar(url: str, sql: str, **params):
    with engine_for(url).connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _partitions(url: str) -> list[tuple[str, str]]:
    """(partition, bound) of the core table, and any other table left in the schema."""
    with engine_for(url).connect() as conn:
        return conn.execute(
            text(
                "select c.relname, coalesce(pg_get_expr(c.relpartbound, c.oid), '') "
                "from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
                "where n.nspname = :s and c.relkind = 'r' order by 1"
            ),
            {"s": partitions.SCHEMA},
        ).all()


def _collations(url: str) -> dict[tuple[str, str], str]:
    """(schema, column): collation of the core table's and its partitions' columns that do
    not sort in the database's default order."""
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text(
                "select distinct table_schema, column_name, collation_name "
                "from information_schema.columns where table_name like :t "
                "and collation_name is not null"
            ),
            {"t": f"{CORE}%"},
        ).all()
    return {(s, c): collation for s, c, collation in rows}


def _month_count(url: str) -> int:
    return _scalar(url, f"select count(*) from {CORE} where period = :p", p=PERIOD)


@pytest.mark.postgres
def test_reload_swaps_the_month_and_keeps_one_partition(feed_server, pg_database) -> None:
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    run_period(FEED, "2025-04", url=url)
    loaded = first["load"]["rows"]["transactions"]
    assert _month_count(url) == loaded
    before = _partitions(url)
    assert [b for _, b in before] == ["FOR VALUES IN ('2025-03')", "FOR VALUES IN ('2025-04')"]
    # the parent is partitioned; the month's partition carries the parent's indexes
    with engine_for(url).connect() as conn:
        kind = conn.execute(text(f"select relkind from pg_class where relname = '{CORE}'"))
        assert kind.scalar() == "p"
        indexes = conn.execute(
            text("select count(*) from pg_indexes where schemaname = :s and tablename = :t"),
            {"s": partitions.SCHEMA, "t": before[0][0]},
        ).scalar()
    assert indexes == 2  # primary key (order_id, period), (consumer_key, category)
    # a reload of the same batch replaces the partition (a new table), same rows
    with engine_for(url).begin() as conn:
        conn.execute(
            text(f"delete from {CORE} where period = :p and order_id like '%%0'"), {"p": PERIOD}
        )
    again = load_step(FEED, first["batch"], url=url)
    assert again["outcome"] == "unchanged"
    after = _partitions(url)
    assert len(after) == 2 and after[1] == before[1] and after[0][0] != before[0][0]
    assert _month_count(url) == loaded
    rollup = _scalar(url, "select sum(items) from core_tradein_monthly where period = :p", p=PERIOD)
    assert rollup == loaded


@pytest.mark.postgres
def test_readers_see_the_old_month_or_the_new_one(feed_server, pg_database) -> None:
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    new = first["load"]["rows"]["transactions"]
    with engine_for(url).begin() as conn:
        conn.execute(
            text(f"delete from {CORE} where period = :p and order_id like '%%1'"), {"p": PERIOD}
        )
    old = _month_count(url)
    assert 0 < old < new
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        engine = engine_for(url)
        while not done.is_set():
            with engine.connect() as conn:
                seen.append(
                    conn.execute(
                        text(f"select count(*) from {CORE} where period = :p"), {"p": PERIOD}
                    ).scalar()
                )

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    try:
        load_step(FEED, first["batch"], url=url)
        time.sleep(0.2)
    finally:
        done.set()
        reader.join(timeout=30)
    assert set(seen) <= {old, new}, sorted(set(seen))
    assert seen[0] == old and seen[-1] == new


@pytest.mark.postgres
def test_a_failed_load_leaves_the_old_month(feed_server, pg_database) -> None:
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    loaded = first["load"]["rows"]["transactions"]
    before = _partitions(url)
    digest = table_digest(engine_for(url), CORE)
    spec = load_feed(FEED)
    stream = dataclasses.replace(spec.stream("transactions"), chunk_rows=1000)
    ref = {k: v for k, v in first["batch"].items() if k not in ("revision", "stage")}
    batch_dir = ExtractedBatch.from_dict(ref).path()

    def frames() -> Iterator[pd.DataFrame]:  # the second chunk breaks the load mid-COPY
        for i, frame in enumerate(iter_frames(spec, batch_dir, stream)):
            if i == 1:
                frame.loc[frame.index[0], "enterprise_name"] = "长" * 65
            yield frame

    with pytest.raises(TextTooLong):
        load_batch(
            engine_for(url), spec, PERIOD, first["batch"]["batch_id"], {"transactions": frames()}
        )
    assert _partitions(url) == before  # no build table left behind
    assert _month_count(url) == loaded
    assert table_digest(engine_for(url), CORE) == digest


@pytest.mark.postgres
def test_migration_moves_existing_rows_into_month_partitions(feed_server, pg_database) -> None:
    url = pg_database
    upgrade(url)
    run_period(FEED, PERIOD, url=url)
    run_period(FEED, "2025-04", url=url)
    digest = table_digest(engine_for(url), CORE)
    cfg = alembic_config(url)
    command.downgrade(cfg, "0009")  # the revision before the partitions
    assert _scalar(url, f"select relkind from pg_class where relname = '{CORE}'") == "r"
    assert table_digest(engine_for(url), CORE) == digest
    assert _collations(url) == {}  # 0011's downgrade: the locale's order again
    upgrade(url)  # migrations, then the views the old table's drop took along
    assert _collations(url) == {  # 0011: identifiers in byte order, in every partition
        (schema_, column): "C"
        for schema_ in ("public", partitions.SCHEMA)
        for column in ("consumer_key", "order_id")
    }
    assert [b for _, b in _partitions(url)] == [
        "FOR VALUES IN ('2025-03')",
        "FOR VALUES IN ('2025-04')",
    ]
    assert table_digest(engine_for(url), CORE) == digest
    revised = run_period(FEED, PERIOD, url=url)  # a migrated partition is swapped like any
    assert revised["load"]["outcome"] == "unchanged"
    assert table_digest(engine_for(url), CORE) == digest


def test_sqlite_keeps_one_table_and_reloads_in_place(feed_server, sqlite_url) -> None:
    first = run_period(FEED, PERIOD, url=sqlite_url)
    loaded = first["load"]["rows"]["transactions"]
    with engine_for(sqlite_url).begin() as conn:
        assert not partitions.applies(conn, load_feed(FEED).stream("transactions"))
        conn.execute(text(f"delete from {CORE} where order_id like '%0'"))
    batch = extract_step(FEED, PERIOD, url=sqlite_url)
    validate_step(FEED, batch, url=sqlite_url)
    load_step(FEED, batch, url=sqlite_url)
    assert _month_count(sqlite_url) == loaded
    assert schema.core(load_feed(FEED).stream("transactions")).name == CORE


def _month_tables(url: str) -> list[str]:
    return [name for name, _ in _partitions(url) if name.startswith(f"{CORE}_2025_03_")]


@pytest.mark.postgres
def test_a_load_failing_after_its_side_connections_committed_leaves_no_build_table(
    feed_server, pg_database
) -> None:
    """The build table is filled and indexed on side connections that commit; a load whose
    own transaction then fails (here the audit insert after the swap, refused by a trigger)
    must drop it and leave the old month as it was."""
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    before = _partitions(url)
    digest = table_digest(engine_for(url), CORE)
    with engine_for(url).begin() as conn:
        conn.execute(
            text(
                "create function refuse() returns trigger language plpgsql as "
                "$$ begin raise exception 'audit refused'; end $$"
            )
        )
        conn.execute(
            text(
                "create trigger refuse before insert on audit_load_run "
                "for each row execute function refuse()"
            )
        )
    with pytest.raises(Exception, match="audit refused"):
        load_step(FEED, first["batch"], url=url)
    assert _partitions(url) == before
    assert table_digest(engine_for(url), CORE) == digest


@pytest.mark.postgres
def test_a_duplicate_key_fails_the_load_at_its_index_and_leaves_the_old_month(
    feed_server, pg_database
) -> None:
    """Rows that bypass the history check's quarantine with a repeated order id: the side
    connection's unique index build refuses them, and nothing of the build is left."""
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    before = _partitions(url)
    spec = load_feed(FEED)
    stream = dataclasses.replace(spec.stream("transactions"), chunk_rows=1000)
    ref = {k: v for k, v in first["batch"].items() if k not in ("revision", "stage")}
    batch_dir = ExtractedBatch.from_dict(ref).path()

    def frames() -> Iterator[pd.DataFrame]:  # the last chunk repeats the first order id
        chunks = list(iter_frames(spec, batch_dir, stream))
        chunks[-1].loc[chunks[-1].index[-1], "order_id"] = chunks[0]["order_id"].iloc[0]
        yield from chunks

    with pytest.raises(Exception, match=r"duplicate key|could not create unique index"):
        load_batch(
            engine_for(url), spec, PERIOD, first["batch"]["batch_id"], {"transactions": frames()}
        )
    assert _partitions(url) == before
    assert _month_count(url) == first["load"]["rows"]["transactions"]


@pytest.mark.postgres
def test_a_dead_loads_build_table_is_dropped_by_the_next_load_of_its_month(
    feed_server, pg_database
) -> None:
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    run_period(FEED, "2025-04", url=url)
    core = schema.core(load_feed(FEED).stream("transactions"))
    with engine_for(url).begin() as conn:  # what a killed load leaves: committed, unattached
        orphan = partitions.create_build_table(conn, core, "period", PERIOD)
        other = partitions.create_build_table(conn, core, "period", "2025-04")
    assert orphan in _month_tables(url)
    load_step(FEED, first["batch"], url=url)
    left = [name for name, _ in _partitions(url)]
    assert orphan not in left
    assert other in left  # another month's is that month's next load's business
    assert len(_month_tables(url)) == 1  # the attached month alone


@pytest.mark.postgres
@pytest.mark.parametrize("streams", ["1", "3"])
def test_the_copy_streams_load_the_same_month(
    feed_server, pg_database, monkeypatch: pytest.MonkeyPatch, streams: str
) -> None:
    """One COPY stream or several (``CM_LOAD_COPY_STREAMS``): the same rows, keys and
    rollup as the default two."""
    url = pg_database
    first = run_period(FEED, PERIOD, url=url)
    digest = table_digest(engine_for(url), CORE)
    rollup = table_digest(engine_for(url), "core_tradein_monthly")
    spec = load_feed(FEED)
    stream = dataclasses.replace(spec.stream("transactions"), chunk_rows=700)
    ref = {k: v for k, v in first["batch"].items() if k not in ("revision", "stage")}
    batch_dir = ExtractedBatch.from_dict(ref).path()
    monkeypatch.setenv("CM_LOAD_COPY_STREAMS", streams)
    again = load_batch(
        engine_for(url),
        spec,
        PERIOD,
        first["batch"]["batch_id"],
        {"transactions": iter_frames(spec, batch_dir, stream)},
    )
    assert again.rows["transactions"] == first["load"]["rows"]["transactions"]
    assert table_digest(engine_for(url), CORE) == digest
    assert table_digest(engine_for(url), "core_tradein_monthly") == rollup
    assert len(_month_tables(url)) == 1
