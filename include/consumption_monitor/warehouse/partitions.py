"""Month partitions of transaction-scale core tables on PostgreSQL (streams declared
``partitioned: true``): a period load builds the month in a standalone table, indexes it,
and swaps it in for the old month (detach, drop, attach) in the load's one transaction.

Why: index upkeep dominated a COPY into the keyed table (18 s of 18.4 s for 1M rows,
shared/perf-baselines.md); COPY into an unindexed table and indexing it afterwards is ~3×
faster, and a reload replaces a partition instead of deleting a million rows. Readers never
see half a month: the build table is invisible to them until the commit, and the swap's
DETACH holds the parent's ACCESS EXCLUSIVE lock until then, so a query sees the old month or
the new one. A load that fails rolls the whole transaction back: the build table vanishes,
the old partition stays. A CHECK constraint on the period lets ATTACH skip its validation
scan; indexes matching the parent's partitioned indexes are attached as they are.

The partitions live in their own schema (``core_partitions``), so table listings of the
warehouse (digests, the analyst role's grants, the schema comparison) see only the parent;
readers query the parent. SQLite keeps one table and the delete + insert path.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, Table, column, table, text
from sqlalchemy.sql.expression import TableClause

from consumption_monitor.feeds.spec import StreamSpec

SCHEMA = "core_partitions"
# Sort memory of the build table's index builds (the server's, for this transaction only):
# 1M rows' three indexes took 6.0 s with the default 64MB, 5.3 s with 256MB in a load
# (measured on the bench machine, 2 parallel maintenance workers). More does not help at
# 10M: 10M synthetic rows' three indexes took 38.7 s with 64MB, 39.3-41.3 s with 256MB and
# 45.2 s with 1GB (and 1M of them 3.2 s with 64MB or 256MB).
INDEX_BUILD_MEMORY = "256MB"


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
        {"parent": core.name, "bound": f"FOR VALUES IN ('{_period(period)}')"},
    ).scalar()


def _period(period: str) -> str:
    """The period as a literal-safe text (YYYY-MM or YYYY-Qn style: no quotes)."""
    if not period.replace("-", "").isalnum():
        raise ValueError(f"not a period: {period!r}")
    return period


def create_build_table(conn: Connection, core: Table, period_field: str, period: str) -> str:
    """A new standalone table shaped like ``core`` (columns, NOT NULLs) with a CHECK on the
    period and no index; returns its name (unique, so it never meets an older partition's
    index names)."""
    name = f"{core.name}_{_period(period).replace('-', '_')}_{uuid.uuid4().hex[:8]}"
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


def index_build_table(conn: Connection, core: Table, name: str) -> None:
    """The parent's primary key and indexes on the filled build table, so ATTACH adopts
    them instead of building its own."""
    keys = ", ".join(f'"{c.name}"' for c in core.primary_key.columns)
    conn.execute(text(f"set local maintenance_work_mem = '{INDEX_BUILD_MEMORY}'"))
    conn.execute(text(f"alter table {qualified(name)} add primary key ({keys})"))
    for index in core.indexes:
        columns = ", ".join(f'"{c.name}"' for c in index.columns)
        conn.execute(text(f"create index on {qualified(name)} ({columns})"))


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
        name = f"{core.name}_{_period(period).replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        conn.execute(text(f'create schema if not exists "{SCHEMA}"'))
        conn.execute(
            text(
                f'create table {qualified(name)} partition of "{core.name}" '
                f"for values in ('{_period(period)}')"
            )
        )
    return name
