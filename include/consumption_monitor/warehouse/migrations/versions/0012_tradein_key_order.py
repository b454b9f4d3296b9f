"""trade-in primary key led by the order id; its separate order-id index dropped

``core_tradein_transactions`` had the primary key ``(period, order_id)`` and an index on
``order_id`` for the history check's lookups of an order id in the other periods. Within a
month partition the period is one value, yet a ``(period, order_id)`` index build compares it
first on every step, through the locale's strcoll (the period is not ``COLLATE "C"``):
1.47 s against 0.86 s for ``(order_id, period)`` on a 1M-row month (2026-12-01), and the
``order_id`` index cost 0.90 s more per load. The key ``(order_id, period)`` serves those
lookups, so each month's load builds two indexes instead of three. The feed spec declares the
keys in this order (``keys: [order_id, period]``; ``schema.stream_tables`` keeps the declared
order).

PostgreSQL: the constraint and index are replaced on the partitioned parent, which rebuilds
them on every month partition (once; the rows are not rewritten). SQLite cannot alter a
primary key: the table is rebuilt (Alembic's batch mode), after dropping the project's views
that read it; ``migrate.upgrade`` recreates the views after every migration.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "core_tradein_transactions"
PK = f"pk_{TABLE}"
ORDER_INDEX = f"ix_{TABLE}_order_id"


def _rekey(key: list[str], order_index: bool) -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute(f"alter table {TABLE} drop constraint {PK}")
        op.execute(f"alter table {TABLE} add constraint {PK} primary key ({', '.join(key)})")
        if order_index:
            op.execute(f"create index {ORDER_INDEX} on {TABLE} (order_id)")
        else:
            op.execute(f"drop index if exists {ORDER_INDEX}")
        return
    for view in conn.execute(sa.text("select name from audit_schema_views")).scalars().all():
        op.execute(f'drop view if exists "{view}"')
    with op.batch_alter_table(TABLE, recreate="always") as batch:
        batch.drop_constraint(PK, type_="primary")
        batch.create_primary_key(PK, key)
        if order_index:
            batch.create_index(ORDER_INDEX, ["order_id"])
        else:
            batch.drop_index(ORDER_INDEX)


def upgrade() -> None:
    _rekey(["order_id", "period"], order_index=False)


def downgrade() -> None:
    _rekey(["period", "order_id"], order_index=True)
