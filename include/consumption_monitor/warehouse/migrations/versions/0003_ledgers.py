"""work ledgers from responsible units (file drops)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 08:53:05.262986
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "core_ledger_events",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("event_type", sa.String(length=16), nullable=True, comment="活动类型"),
        sa.Column("event_name", sa.String(length=128), nullable=True, comment="活动名称"),
        sa.Column("event_date", sa.String(length=10), nullable=True, comment="举办日期（开始日）"),
        sa.Column("venue", sa.String(length=128), nullable=True, comment="举办地点"),
        sa.Column("attendance", sa.Integer(), nullable=True, comment="参与人次"),
        sa.Column(
            "sales_driven",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="带动消费金额（万元）",
        ),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "unit", "row_no", name=op.f("pk_core_ledger_events")),
        comment="core: current version per period — 消费促进、汽车展销、首发首秀首展、家电五进、工会团购、大型文旅活动、招聘会等活动（每场一行）。",
    )
    op.create_table(
        "core_ledger_milestones",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("task", sa.String(length=128), nullable=True, comment="重点任务名称"),
        sa.Column("status", sa.String(length=8), nullable=True, comment="未启动 / 推进中 / 已完成"),
        sa.Column("status_date", sa.String(length=10), nullable=True, comment="最近进展或完成日期"),
        sa.Column("note", sa.String(length=255), nullable=True, comment="进展说明"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "unit", "row_no", name=op.f("pk_core_ledger_milestones")),
        comment="core: current version per period — 定性任务（如火红年华4A创建、苏铁山药申报名特优新农产品）的月度进度（每个任务一行）。",
    )
    op.create_table(
        "core_ledger_openings",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("opening_type", sa.String(length=16), nullable=True, comment="门店或场景类型"),
        sa.Column("name", sa.String(length=128), nullable=True, comment="门店、场景或站点名称"),
        sa.Column(
            "opened_date", sa.String(length=10), nullable=True, comment="开业、认定或建成日期"
        ),
        sa.Column("address", sa.String(length=128), nullable=True, comment="地址"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "unit", "row_no", name=op.f("pk_core_ledger_openings")),
        comment="core: current version per period — 区域首店、品牌连锁店、烟火小店、24小时便利店、打卡消费场景、运动IP、智能回收站点（每个一行）。",
    )
    op.create_table(
        "core_ledger_product_sales",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("product", sa.String(length=128), nullable=True, comment="文创产品名称"),
        sa.Column(
            "sales_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月销售额（万元）",
        ),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "unit", "row_no", name=op.f("pk_core_ledger_product_sales")
        ),
        comment="core: current version per period — “三线文化+阳光康养”特色文创产品当月销售额（每个产品一行）。",
    )
    op.create_table(
        "stg_ledger_events",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("event_type", sa.String(length=16), nullable=True, comment="活动类型"),
        sa.Column("event_name", sa.String(length=128), nullable=True, comment="活动名称"),
        sa.Column("event_date", sa.String(length=10), nullable=True, comment="举办日期（开始日）"),
        sa.Column("venue", sa.String(length=128), nullable=True, comment="举办地点"),
        sa.Column("attendance", sa.Integer(), nullable=True, comment="参与人次"),
        sa.Column(
            "sales_driven",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="带动消费金额（万元）",
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "unit", "row_no", name=op.f("pk_stg_ledger_events")
        ),
        comment="staging: typed rows of every accepted batch — 消费促进、汽车展销、首发首秀首展、家电五进、工会团购、大型文旅活动、招聘会等活动（每场一行）。",
    )
    op.create_table(
        "stg_ledger_milestones",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("task", sa.String(length=128), nullable=True, comment="重点任务名称"),
        sa.Column("status", sa.String(length=8), nullable=True, comment="未启动 / 推进中 / 已完成"),
        sa.Column("status_date", sa.String(length=10), nullable=True, comment="最近进展或完成日期"),
        sa.Column("note", sa.String(length=255), nullable=True, comment="进展说明"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "unit", "row_no", name=op.f("pk_stg_ledger_milestones")
        ),
        comment="staging: typed rows of every accepted batch — 定性任务（如火红年华4A创建、苏铁山药申报名特优新农产品）的月度进度（每个任务一行）。",
    )
    op.create_table(
        "stg_ledger_openings",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("opening_type", sa.String(length=16), nullable=True, comment="门店或场景类型"),
        sa.Column("name", sa.String(length=128), nullable=True, comment="门店、场景或站点名称"),
        sa.Column(
            "opened_date", sa.String(length=10), nullable=True, comment="开业、认定或建成日期"
        ),
        sa.Column("address", sa.String(length=128), nullable=True, comment="地址"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "unit", "row_no", name=op.f("pk_stg_ledger_openings")
        ),
        comment="staging: typed rows of every accepted batch — 区域首店、品牌连锁店、烟火小店、24小时便利店、打卡消费场景、运动IP、智能回收站点（每个一行）。",
    )
    op.create_table(
        "stg_ledger_product_sales",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（表头“统计期”）"
        ),
        sa.Column(
            "unit", sa.String(length=32), nullable=False, comment="填报的责任单位（表头“填报单位”）"
        ),
        sa.Column("row_no", sa.Integer(), nullable=False, comment="台账文件中的 Excel 行号"),
        sa.Column("source_file", sa.String(length=255), nullable=True, comment="来源文件名"),
        sa.Column("product", sa.String(length=128), nullable=True, comment="文创产品名称"),
        sa.Column(
            "sales_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月销售额（万元）",
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "unit", "row_no", name=op.f("pk_stg_ledger_product_sales")
        ),
        comment="staging: typed rows of every accepted batch — “三线文化+阳光康养”特色文创产品当月销售额（每个产品一行）。",
    )


def downgrade() -> None:
    op.drop_table("stg_ledger_product_sales")
    op.drop_table("stg_ledger_openings")
    op.drop_table("stg_ledger_milestones")
    op.drop_table("stg_ledger_events")
    op.drop_table("core_ledger_product_sales")
    op.drop_table("core_ledger_openings")
    op.drop_table("core_ledger_milestones")
    op.drop_table("core_ledger_events")
