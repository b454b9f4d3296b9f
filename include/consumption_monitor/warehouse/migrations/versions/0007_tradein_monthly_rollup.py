"""trade-in monthly rollup: core_tradein_monthly, filled from the transactions in place

The loader rebuilds a period's rows with each load (``loader.refresh_rollup``); this
migration fills it once for the periods already loaded, with the same aggregate, so the
trade-in marts read the same figures before and after.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "core_tradein_monthly",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（销售月份）"
        ),
        sa.Column(
            "category_group",
            sa.String(length=8),
            nullable=True,
            comment="品类大类（家电/数码/汽车/家装厨卫）",
        ),
        sa.Column("category", sa.String(length=16), nullable=True, comment="补贴品类"),
        sa.Column("uscc", sa.String(length=18), nullable=True, comment="销售企业统一社会信用代码"),
        sa.Column(
            "items",
            sa.Integer(),
            nullable=False,
            comment="交易件数（行数；同一期别内订单号唯一，即交易笔数）",
        ),
        sa.Column(
            "sales_yuan",
            sa.Numeric(precision=24, scale=4, asdecimal=False),
            nullable=True,
            comment="成交价格合计（元）",
        ),
        sa.Column(
            "subsidy_yuan",
            sa.Numeric(precision=24, scale=4, asdecimal=False),
            nullable=True,
            comment="补贴金额合计（元）",
        ),
        sa.Column("enterprise_name", sa.String(length=64), nullable=True, comment="销售企业名称"),
        comment="core: per-period rollup of core_tradein_transactions — "
        "以旧换新补贴交易按期别、品类、销售企业汇总（随每期加载在同一事务内重建）",
    )
    with op.batch_alter_table("core_tradein_monthly", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_core_tradein_monthly_period_category_group_category_uscc"),
            ["period", "category_group", "category", "uscc"],
            unique=False,
        )
    op.execute(
        "insert into core_tradein_monthly (period, category_group, category, uscc, items, "
        "sales_yuan, subsidy_yuan, enterprise_name) "
        "select period, category_group, category, uscc, count(*), sum(price), sum(subsidy), "
        "max(enterprise_name) from core_tradein_transactions "
        "group by period, category_group, category, uscc"
    )


def downgrade() -> None:
    with op.batch_alter_table("core_tradein_monthly", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_core_tradein_monthly_period_category_group_category_uscc")
        )
    op.drop_table("core_tradein_monthly")
