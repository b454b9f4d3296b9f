"""trade-in core by month partitions on PostgreSQL (declarative partitioning)

``core_tradein_transactions`` becomes a table partitioned by ``period`` (list), one
partition per loaded month in the schema ``core_partitions`` (``warehouse/partitions.py``:
each load builds the month apart, indexes it and swaps it in). Existing rows move to their
month's partition; the primary key and indexes keep their names on the parent. The views
that read the table are dropped with it and recreated by ``migrate.upgrade`` (views are
rebuilt after every migration). SQLite keeps
its one table: nothing to do there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "core_tradein_transactions"
SCHEMA = "core_partitions"
COMMENT = (
    "core: current version per period — "
    "以旧换新补贴交易（每件商品一行）；消费者身份证号、手机号已假名化。"
)


def _indexes() -> list[str]:
    return [
        f"alter table {TABLE} add constraint pk_{TABLE} primary key (period, order_id)",
        f"create index ix_{TABLE}_order_id on {TABLE} (order_id)",
        f"create index ix_{TABLE}_consumer_key_category on {TABLE} (consumer_key, category)",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    conn = op.get_bind()
    op.execute(f'create schema if not exists "{SCHEMA}"')
    op.execute(
        f"create table {TABLE}_part (like {TABLE} including defaults including comments) "
        "partition by list (period)"
    )
    periods = conn.execute(sa.text(f"select distinct period from {TABLE} order by 1")).scalars()
    for period in list(periods):
        name = f"{TABLE}_{period.replace('-', '_')}_m0008"
        op.execute(
            f'create table "{SCHEMA}"."{name}" partition of {TABLE}_part '
            f"for values in ('{period}')"
        )
    op.execute(f"insert into {TABLE}_part select * from {TABLE}")
    op.execute(f"drop table {TABLE} cascade")  # its views: migrate.upgrade recreates them
    op.execute(f"alter table {TABLE}_part rename to {TABLE}")
    for statement in _indexes():
        op.execute(statement)
    op.execute(f"comment on table {TABLE} is '{COMMENT}'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"create table {TABLE}_flat (like {TABLE} including defaults including comments)")
    op.execute(f"insert into {TABLE}_flat select * from {TABLE}")
    op.execute(f"drop table {TABLE} cascade")
    op.execute(f"alter table {TABLE}_flat rename to {TABLE}")
    for statement in _indexes():
        op.execute(statement)
    op.execute(f"comment on table {TABLE} is '{COMMENT}'")
