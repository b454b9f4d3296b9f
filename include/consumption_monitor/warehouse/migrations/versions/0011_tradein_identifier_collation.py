"""trade-in identifiers in byte order on PostgreSQL (COLLATE "C")

``order_id`` and ``consumer_key`` of ``core_tradein_transactions`` are opaque identifiers
(``identifier: true`` in the feed spec, ``feeds/spec.ColumnSpec``): compared and indexed
byte by byte, their index builds no longer go through the locale's strcoll. The change
recurses to every month partition and rebuilds the indexes that hold the columns; the rows
are not rewritten. PostgreSQL refuses to alter a column a view reads, so the project's
views (``audit_schema_views``) are dropped first; ``migrate.upgrade`` recreates them after
every migration. SQLite has no "C" collation and keeps its columns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "core_tradein_transactions"
COLUMNS = {"order_id": 32, "consumer_key": 64}


def _collate(collation: str) -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for view in conn.execute(sa.text("select name from audit_schema_views")).scalars().all():
        op.execute(f'drop view if exists "{view}" cascade')
    changes = ", ".join(
        f"alter column {name} type varchar({length}) collate {collation}"
        for name, length in COLUMNS.items()
    )
    op.execute(f"alter table {TABLE} {changes}")


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
