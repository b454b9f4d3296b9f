"""Month partitions of transaction-scale core tables on PostgreSQL (streams declared
``partitioned: true``): a period load builds the month in a standalone table, indexes it,
and swaps it in for the old month (detach, drop, attach) in the load's transaction.

Why: index upkeep dominated a COPY into the keyed table (18 s of 18.4 s for 1M rows,
shared/perf-baselines.md); COPY into an unindexed table and indexing it afterwards is ~3×
faster, and a reload replaces a partition instead of deleting a million rows.

The build table is filled and indexed on side connections that commit (``bulk.
copy_frames_side_by_side``, :func:`index_build_table`): two COPY streams and two index
builds run at once, on both cores, where one transaction would run them one after another
(1M trade-in rows, 2026-12-01: COPY 2.3 → 1.45 s, the two index builds side by side).
Readers never see it: it lives in its own schema and is not attached to the parent until the
load's transaction adopts its primary key and swaps it in, and the swap's DETACH holds the
parent's ACCESS EXCLUSIVE lock until the commit, so a query sees the old month or the new
one. A load that fails drops its build table (``loader.load_batch``); one whose process died
leaves it, and the next load of that month, holding the period's lock, drops it
(:func:`drop_orphans`). A CHECK constraint on the period lets ATTACH skip its validation
scan; indexes matching the parent's partitioned indexes are attached as they are.

The partitions live in their own schema (``core_partitions``), so table listings of the
warehouse (digests, the analyst role's grants, the schema comparison) see only the parent;
readers query the parent. SQLite keeps one table and the delete + insert path.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Engine, Table, column, table, text
from sqlalchemy.sql.expression import TableClause

from consumption_monitor.feeds.spec import StreamSpec

SCHEMA = "core_partitions"
SUFFIX = 8  # hex characters that make a build table's name unique
# Sort memory of the build table's index builds (the server's, for this transaction only):
# 1M rows' three indexes took 6.0 s with the default 64MB, 5.3 s with 256MB in a load
# (measured on the bench machine, 2 parallel maintenance workers). More does not help at
# 10M: 10M synthetic rows' three indexes took 38.7 s with 64MB, 39.3-41.3 s with 256MB and
# 45.2 s with 1GB (and 1M of them 3.2 s with 64MB or 256MB).
INDEX_BUILD_MEMORY = "256MB"
# Parallel workers of each index build (the server's max_parallel_maintenance_workers, for
# this transaction only): none, as the builds already run side by side, one per core. With
# the server's default of 2, two builds ran six processes on 2 cores beside the rollup;
# without them a 10M-row month's rollup beside the builds took half the time (2026-12-01,
# loads of the same spooled month alternating: 12.1-13.8 s → 6.0-6.7 s; the slower build
# 16.7-19.8 s → 16.4-18.3 s; the load 33.1-37.3 s → 31.5-34.5 s), a 1M-row month's load
# the same (2.88-3.16 s → 2.94-3.27 s).
INDEX_BUILD_WORKERS = 0


def applies(conn: Connection, stream: StreamSpec) -> bool:
    """Whether ``stream``'s core rows go through a partition swap on this connection."""
    return stream.partitioned and conn.dialect.name == "postgresql"


def qualified(name: str) -> str:
    return f'"{SCHEMA}"."{name}"'


def current_partition(conn: Connection, core: Table, period: str) -> str | None:
    """The name of the partition that holds ``period`` (None before its first load)."""
    return conn.execute(
        text(
            "select c.relname from pg_inherits as i join pg_class as c on c.oid = i.inhrelid "
            "where i.inhparent = cast(:parent as regclass) "
            "and pg_get_expr(c.relpartbound, c.oid) = :bound"
        ),
        {"parent": core.name, "bound": _BOUND.format(_period(period))},
    ).scalar()


_BOUND = "FOR VALUES IN ('{}')"  # a month partition's bound as pg_get_expr writes it
_BOUND_PERIOD = re.compile(re.escape(_BOUND).replace(r"\{\}", "([^']*)"))


def _period(period: str) -> str:
    """The period as a literal-safe text (YYYY-MM or YYYY-Qn style: no quotes)."""
    if not period.replace("-", "").isalnum():
        raise ValueError(f"not a period: {period!r}")
    return period


def create_build_table(conn: Connection, core: Table, period_field: str, period: str) -> str:
    """A new standalone table shaped like ``core`` (columns, NOT NULLs) with a CHECK on the
    period and no index; returns its name (unique, so it never meets an older partition's
    index names)."""
    name = _new_name(core, period)
    conn.execute(text(f'create schema if not exists "{SCHEMA}"'))
    conn.execute(
        text(
            f'create table {qualified(name)} (like "{core.name}" including defaults, '
            f"constraint ck_{name}_period check ({period_field} = '{_period(period)}'))"
        )
    )
    return name


def build_table(name: str, core: Table) -> TableClause:
    """The build table as a selectable (for the rollup and counts before the swap)."""
    return table(name, *(column(c.name) for c in core.columns), schema=SCHEMA)


def _prefix(core: Table, period: str) -> str:
    return f"{core.name}_{_period(period).replace('-', '_')}_"


def _new_name(core: Table, period: str) -> str:
    return f"{_prefix(core, period)}{uuid.uuid4().hex[:SUFFIX]}"


def drop_table(engine: Engine, name: str) -> None:
    """Drop a failed load's build table on a connection of its own, unless it is attached
    (a commit whose outcome the client never heard of may have made it the month)."""
    with engine.begin() as conn:
        attached = conn.execute(
            text("select relispartition from pg_class where oid = to_regclass(:name)"),
            {"name": qualified(name)},
        ).scalar()
        if attached is False:
            conn.execute(text(f"drop table {qualified(name)}"))


def drop_orphans(conn: Connection, core: Table, period: str) -> list[str]:
    """Drop the build tables of ``period`` that no load attached: left by a load whose
    process died between its side connections' commits and its own. The caller holds the
    period's lock (``loader.lock_period``), so no other load is building this month."""
    names = [name for name, _ in unattached(conn, core, period)]
    for name in names:
        conn.execute(text(f"drop table {qualified(name)}"))
    return names


def unattached(conn: Connection, core: Table, period: str | None = None) -> list[tuple[str, str]]:
    """The build tables of ``core`` (of ``period``, or of every period) attached to
    nothing, as (name, period) in name order: a load building one now, or one a dead load
    left. Only names this module makes count (``<core>_<period>_<8 hex>``)."""
    pattern = re.compile(rf"{re.escape(core.name)}_(?P<period>[0-9A-Za-z_]+)_[0-9a-f]{{{SUFFIX}}}")
    names = conn.execute(
        text(
            "select c.relname from pg_class as c "
            "join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = :schema and c.relkind = 'r' and not c.relispartition "
            "and starts_with(c.relname, :prefix) order by c.relname"
        ),
        {"schema": SCHEMA, "prefix": _prefix(core, period) if period else f"{core.name}_"},
    ).scalars()
    out = []
    for name in names:
        match = pattern.fullmatch(name)
        found = match["period"].replace("_", "-") if match else None
        if found and (period is None or found == period):
            out.append((name, found))
    return out


def attached(conn: Connection, core: Table) -> list[dict[str, Any]]:
    """The period partitions of ``core`` in period order: name, period, estimated rows
    (None before the table's first ANALYZE) and bytes with its indexes."""
    rows = conn.execute(
        text(
            "select c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples, "
            "pg_total_relation_size(c.oid) from pg_inherits as i "
            "join pg_class as c on c.oid = i.inhrelid "
            "where i.inhparent = to_regclass(:parent)"
        ),
        {"parent": core.name},
    ).all()
    out = []
    for name, bound, tuples, size in rows:
        period = _BOUND_PERIOD.fullmatch(bound or "")
        out.append(
            {
                "name": name,
                "period": period[1] if period else bound,
                "rows_estimate": int(tuples) if tuples is not None and tuples >= 0 else None,
                "bytes": int(size),
            }
        )
    return sorted(out, key=lambda p: p["period"])


def index_build_table(
    engine: Engine,
    core: Table,
    name: str,
    builders: int,
    meanwhile: Callable[[], None] | None = None,
) -> str:
    """The parent's primary key (as a unique index) and indexes on the filled, committed
    build table, up to ``builders`` at once, each on a connection of its own; returns the
    key's index, for :func:`adopt_primary_key`. ATTACH then adopts them instead of building
    its own. ``meanwhile`` runs on this thread while they build (the load's rollup, which
    reads the table: a read and an index build do not block each other)."""
    key_index = f"{name}_pkey"
    keys = ", ".join(f'"{c.name}"' for c in core.primary_key.columns)
    statements = [f'create unique index "{key_index}" on {qualified(name)} ({keys})']
    for index in core.indexes:
        columns = ", ".join(f'"{c.name}"' for c in index.columns)
        statements.append(f"create index on {qualified(name)} ({columns})")

    def build(statement: str) -> None:
        with engine.begin() as conn:
            conn.execute(text(f"set local maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"))
            conn.execute(
                text(f"set local max_parallel_maintenance_workers = {INDEX_BUILD_WORKERS}")
            )
            conn.execute(text(statement))

    with ThreadPoolExecutor(max(1, min(builders, len(statements)))) as pool:
        building = [pool.submit(build, s) for s in statements]
        if meanwhile is not None:
            meanwhile()
        for done in building:
            done.result()
    return key_index


def adopt_primary_key(conn: Connection, name: str, key_index: str) -> None:
    """Make the build table's unique key index its primary key (no scan: the key columns
    are NOT NULL), in the load's transaction."""
    conn.execute(text(f'alter table {qualified(name)} add primary key using index "{key_index}"'))


def swap_in(conn: Connection, core: Table, period: str, name: str) -> str | None:
    """Replace the period's partition with the build table; returns the partition dropped."""
    old = current_partition(conn, core, period)
    if old is not None:
        conn.execute(text(f'alter table "{core.name}" detach partition {qualified(old)}'))
        conn.execute(text(f"drop table {qualified(old)}"))
    conn.execute(
        text(
            f'alter table "{core.name}" attach partition {qualified(name)} '
            f"for values in ('{_period(period)}')"
        )
    )
    return old


def ensure_partition(conn: Connection, core: Table, period: str) -> str:
    """An (empty) partition for ``period`` if it has none yet; returns its name. For
    writers other than the loader (tests, benchmarks) inserting rows into the parent."""
    name = current_partition(conn, core, period)
    if name is None:
        name = _new_name(core, period)
        conn.execute(text(f'create schema if not exists "{SCHEMA}"'))
        conn.execute(
            text(
                f'create table {qualified(name)} partition of "{core.name}" '
                f"for values in ('{_period(period)}')"
            )
        )
    return name
