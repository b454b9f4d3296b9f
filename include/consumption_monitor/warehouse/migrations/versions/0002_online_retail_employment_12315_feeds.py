"""online retail, employment and 12315 feeds; reference working-day calendar

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:24:18.120270
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_reference_data",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "sha256", sa.String(length=64), nullable=False, comment="of the reference file loaded"
        ),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_reference_data")),
        comment="audit: the reference tables in place and the file they were loaded from",
    )
    op.create_table(
        "core_complaints_12315_cases",
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（登记月份）"
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("case_id", sa.String(length=32), nullable=False, comment="案件编号"),
        sa.Column("case_type", sa.String(length=8), nullable=True, comment="案件类型（投诉/举报）"),
        sa.Column(
            "matter_type", sa.String(length=8), nullable=True, comment="事项类别（商品/服务）"
        ),
        sa.Column("handling_unit", sa.String(length=64), nullable=True, comment="承办单位"),
        sa.Column("received_date", sa.String(length=10), nullable=True, comment="登记日期"),
        sa.Column(
            "accepted_date",
            sa.String(length=10),
            nullable=True,
            comment="投诉受理（或不予受理）决定日期",
        ),
        sa.Column("closed_date", sa.String(length=10), nullable=True, comment="投诉办结日期"),
        sa.Column("checked_date", sa.String(length=10), nullable=True, comment="举报核查完成日期"),
        sa.Column("outcome", sa.String(length=16), nullable=True, comment="办理结果"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "case_id", name=op.f("pk_core_complaints_12315_cases")),
        comment="core: current version per period — 12315 投诉举报案件（每件一行）：登记、受理、办结或核查日期及办理结果。",
    )
    op.create_table(
        "core_ecommerce_district_online",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column(
            "period_label",
            sa.String(length=16),
            nullable=True,
            comment="发布口径标签（1-2月、3月…）",
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False, comment="行政区划代码"),
        sa.Column("region_name", sa.String(length=32), nullable=True, comment="行政区划名称"),
        sa.Column(
            "online_retail_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网上零售额 1-当月累计",
        ),
        sa.Column(
            "online_retail_yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网上零售额累计同比增速（公布的可比口径）",
        ),
        sa.Column(
            "physical_online_retail_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="实物商品网上零售额 1-当月累计",
        ),
        sa.Column(
            "physical_online_retail_yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="实物商品网上零售额累计同比增速（公布的可比口径）",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "region_code", name=op.f("pk_core_ecommerce_district_online")
        ),
        comment="core: current version per period — 网上零售额及实物商品网上零售额（区级），1-当月累计。",
    )
    op.create_table(
        "core_ecommerce_platform_sales",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column(
            "period_label",
            sa.String(length=16),
            nullable=True,
            comment="发布口径标签（1-2月期含1月、2月）",
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("enterprise_name", sa.String(length=128), nullable=True, comment="企业名称"),
        sa.Column("platform", sa.String(length=32), nullable=False, comment="销售平台"),
        sa.Column(
            "online_sales",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网络销售额（当期）",
        ),
        sa.Column("live_sessions", sa.Integer(), nullable=True, comment="直播场次"),
        sa.Column(
            "live_sales",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="直播销售额",
        ),
        sa.Column("orders", sa.Integer(), nullable=True, comment="订单量"),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="金额计量单位"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "uscc", "platform", name=op.f("pk_core_ecommerce_platform_sales")
        ),
        comment="core: current version per period — 重点监测企业分平台网络销售额、直播场次、直播销售额及订单量（当期）。",
    )
    op.create_table(
        "core_employment_job_fairs",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("event_id", sa.String(length=32), nullable=False, comment="招聘会编号"),
        sa.Column("event_date", sa.String(length=10), nullable=True, comment="举办日期"),
        sa.Column(
            "mode", sa.String(length=16), nullable=True, comment="形式（线上/线下/线上+线下）"
        ),
        sa.Column("organiser", sa.String(length=64), nullable=True, comment="主办单位"),
        sa.Column("name", sa.String(length=128), nullable=True, comment="招聘会名称"),
        sa.Column("jobs_offered", sa.Integer(), nullable=True, comment="提供就业岗位数"),
        sa.Column("attendees", sa.Integer(), nullable=True, comment="入场求职人数"),
        sa.Column("hires", sa.Integer(), nullable=True, comment="达成就业意向人数"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "event_id", name=op.f("pk_core_employment_job_fairs")),
        comment="core: current version per period — 公共就业招聘会（每场一行）：日期、形式、主办单位、提供岗位、入场人数、达成就业意向人数。",
    )
    op.create_table(
        "core_employment_monthly_figures",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=False, comment="行政区划代码"),
        sa.Column(
            "urban_new_jobs_month", sa.Integer(), nullable=True, comment="城镇新增就业人数（当月）"
        ),
        sa.Column(
            "urban_new_jobs_ytd", sa.Integer(), nullable=True, comment="城镇新增就业人数（累计）"
        ),
        sa.Column(
            "public_welfare_placed_month",
            sa.Integer(),
            nullable=True,
            comment="公益性岗位安置就业困难人员（当月）",
        ),
        sa.Column(
            "public_welfare_placed_ytd",
            sa.Integer(),
            nullable=True,
            comment="公益性岗位安置就业困难人员（累计）",
        ),
        sa.Column(
            "work_relief_jobs_month",
            sa.Integer(),
            nullable=True,
            comment="以工代赈提供就业岗位（当月）",
        ),
        sa.Column(
            "work_relief_jobs_ytd",
            sa.Integer(),
            nullable=True,
            comment="以工代赈提供就业岗位（累计）",
        ),
        sa.Column("ui_recipients", sa.Integer(), nullable=True, comment="当月领取失业保险金人数"),
        sa.Column(
            "ui_benefits_paid_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="失业保险金发放金额（当月）",
        ),
        sa.Column(
            "ui_benefits_paid_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="失业保险金发放金额（累计）",
        ),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "region_code", name=op.f("pk_core_employment_monthly_figures")
        ),
        comment="core: current version per period — 城镇新增就业、公益性岗位安置、以工代赈岗位、失业保险金领取人数及发放金额，当月与累计。",
    )
    op.create_table(
        "ref_workday_calendar",
        sa.Column("day", sa.String(length=10), nullable=False, comment="ISO date"),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column(
            "workday_seq",
            sa.Integer(),
            nullable=False,
            comment="working days from the first covered date up to this one, inclusive",
        ),
        sa.Column(
            "day_type",
            sa.String(length=16),
            nullable=False,
            comment="workday | weekend | holiday | adjusted_workday",
        ),
        sa.Column(
            "holiday_name",
            sa.String(length=32),
            nullable=True,
            comment="the holiday, or the holiday a 调休 day serves",
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_ref_workday_calendar")),
        comment="reference: PRC working-day calendar from reference/prc_holidays.yaml; the N-th working day after D has workday_seq = seq(D) + N",
    )
    with op.batch_alter_table("ref_workday_calendar", schema=None) as batch_op:
        batch_op.create_index("ix_ref_workday_calendar_workday_seq", ["workday_seq"], unique=False)

    op.create_table(
        "stg_complaints_12315_cases",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column(
            "period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM（登记月份）"
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("case_id", sa.String(length=32), nullable=False, comment="案件编号"),
        sa.Column("case_type", sa.String(length=8), nullable=True, comment="案件类型（投诉/举报）"),
        sa.Column(
            "matter_type", sa.String(length=8), nullable=True, comment="事项类别（商品/服务）"
        ),
        sa.Column("handling_unit", sa.String(length=64), nullable=True, comment="承办单位"),
        sa.Column("received_date", sa.String(length=10), nullable=True, comment="登记日期"),
        sa.Column(
            "accepted_date",
            sa.String(length=10),
            nullable=True,
            comment="投诉受理（或不予受理）决定日期",
        ),
        sa.Column("closed_date", sa.String(length=10), nullable=True, comment="投诉办结日期"),
        sa.Column("checked_date", sa.String(length=10), nullable=True, comment="举报核查完成日期"),
        sa.Column("outcome", sa.String(length=16), nullable=True, comment="办理结果"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "case_id", name=op.f("pk_stg_complaints_12315_cases")
        ),
        comment="staging: typed rows of every accepted batch — 12315 投诉举报案件（每件一行）：登记、受理、办结或核查日期及办理结果。",
    )
    op.create_table(
        "stg_ecommerce_district_online",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column(
            "period_label",
            sa.String(length=16),
            nullable=True,
            comment="发布口径标签（1-2月、3月…）",
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False, comment="行政区划代码"),
        sa.Column("region_name", sa.String(length=32), nullable=True, comment="行政区划名称"),
        sa.Column(
            "online_retail_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网上零售额 1-当月累计",
        ),
        sa.Column(
            "online_retail_yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网上零售额累计同比增速（公布的可比口径）",
        ),
        sa.Column(
            "physical_online_retail_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="实物商品网上零售额 1-当月累计",
        ),
        sa.Column(
            "physical_online_retail_yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="实物商品网上零售额累计同比增速（公布的可比口径）",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "region_code", name=op.f("pk_stg_ecommerce_district_online")
        ),
        comment="staging: typed rows of every accepted batch — 网上零售额及实物商品网上零售额（区级），1-当月累计。",
    )
    op.create_table(
        "stg_ecommerce_platform_sales",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column(
            "period_label",
            sa.String(length=16),
            nullable=True,
            comment="发布口径标签（1-2月期含1月、2月）",
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("enterprise_name", sa.String(length=128), nullable=True, comment="企业名称"),
        sa.Column("platform", sa.String(length=32), nullable=False, comment="销售平台"),
        sa.Column(
            "online_sales",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="网络销售额（当期）",
        ),
        sa.Column("live_sessions", sa.Integer(), nullable=True, comment="直播场次"),
        sa.Column(
            "live_sales",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="直播销售额",
        ),
        sa.Column("orders", sa.Integer(), nullable=True, comment="订单量"),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="金额计量单位"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "uscc", "platform", name=op.f("pk_stg_ecommerce_platform_sales")
        ),
        comment="staging: typed rows of every accepted batch — 重点监测企业分平台网络销售额、直播场次、直播销售额及订单量（当期）。",
    )
    op.create_table(
        "stg_employment_job_fairs",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("event_id", sa.String(length=32), nullable=False, comment="招聘会编号"),
        sa.Column("event_date", sa.String(length=10), nullable=True, comment="举办日期"),
        sa.Column(
            "mode", sa.String(length=16), nullable=True, comment="形式（线上/线下/线上+线下）"
        ),
        sa.Column("organiser", sa.String(length=64), nullable=True, comment="主办单位"),
        sa.Column("name", sa.String(length=128), nullable=True, comment="招聘会名称"),
        sa.Column("jobs_offered", sa.Integer(), nullable=True, comment="提供就业岗位数"),
        sa.Column("attendees", sa.Integer(), nullable=True, comment="入场求职人数"),
        sa.Column("hires", sa.Integer(), nullable=True, comment="达成就业意向人数"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "event_id", name=op.f("pk_stg_employment_job_fairs")
        ),
        comment="staging: typed rows of every accepted batch — 公共就业招聘会（每场一行）：日期、形式、主办单位、提供岗位、入场人数、达成就业意向人数。",
    )
    op.create_table(
        "stg_employment_monthly_figures",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=False, comment="行政区划代码"),
        sa.Column(
            "urban_new_jobs_month", sa.Integer(), nullable=True, comment="城镇新增就业人数（当月）"
        ),
        sa.Column(
            "urban_new_jobs_ytd", sa.Integer(), nullable=True, comment="城镇新增就业人数（累计）"
        ),
        sa.Column(
            "public_welfare_placed_month",
            sa.Integer(),
            nullable=True,
            comment="公益性岗位安置就业困难人员（当月）",
        ),
        sa.Column(
            "public_welfare_placed_ytd",
            sa.Integer(),
            nullable=True,
            comment="公益性岗位安置就业困难人员（累计）",
        ),
        sa.Column(
            "work_relief_jobs_month",
            sa.Integer(),
            nullable=True,
            comment="以工代赈提供就业岗位（当月）",
        ),
        sa.Column(
            "work_relief_jobs_ytd",
            sa.Integer(),
            nullable=True,
            comment="以工代赈提供就业岗位（累计）",
        ),
        sa.Column("ui_recipients", sa.Integer(), nullable=True, comment="当月领取失业保险金人数"),
        sa.Column(
            "ui_benefits_paid_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="失业保险金发放金额（当月）",
        ),
        sa.Column(
            "ui_benefits_paid_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="失业保险金发放金额（累计）",
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "region_code", name=op.f("pk_stg_employment_monthly_figures")
        ),
        comment="staging: typed rows of every accepted batch — 城镇新增就业、公益性岗位安置、以工代赈岗位、失业保险金领取人数及发放金额，当月与累计。",
    )


def downgrade() -> None:
    op.drop_table("stg_employment_monthly_figures")
    op.drop_table("stg_employment_job_fairs")
    op.drop_table("stg_ecommerce_platform_sales")
    op.drop_table("stg_ecommerce_district_online")
    op.drop_table("stg_complaints_12315_cases")
    with op.batch_alter_table("ref_workday_calendar", schema=None) as batch_op:
        batch_op.drop_index("ix_ref_workday_calendar_workday_seq")

    op.drop_table("ref_workday_calendar")
    op.drop_table("core_employment_monthly_figures")
    op.drop_table("core_employment_job_fairs")
    op.drop_table("core_ecommerce_platform_sales")
    op.drop_table("core_ecommerce_district_online")
    op.drop_table("core_complaints_12315_cases")
    op.drop_table("audit_reference_data")
