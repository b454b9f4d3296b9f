"""Bulk row writes: COPY on PostgreSQL, executemany elsewhere.

Both run inside the caller's transaction, so a load that fails half way leaves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

COPY_CHUNK = 10_000


def write_rows(
    conn: Connection, table: Table | str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Append ``rows`` (tuples in ``columns`` order) to ``table``; returns the count.
    ``table`` may be a quoted, schema-qualified name on PostgreSQL (a partition's build
    table)."""
    if conn.dialect.name == "postgresql":
        return _copy(conn, table if isinstance(table, str) else f'"{table.name}"', columns, rows)
    assert isinstance(table, Table), "a table name is for COPY on PostgreSQL only"
    count = 0
    stmt = insert(table)
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(dict(zip(columns, row, strict=True)))
        if len(chunk) >= COPY_CHUNK:
            conn.execute(stmt, chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(stmt, chunk)
        count += len(chunk)
    return count


def _copy(
    conn: Connection, target: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    raw = conn.connection.driver_connection  # psycopg 3 connection, same transaction
    cols = ", ".join(f'"{c}"' for c in columns)
    count = 0
    with raw.cursor() as cur, cur.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
