"""initial warehouse schema: raw, staging, core, marts, audit

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27 07:47:02.196837
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_load_batch",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column(
            "revision", sa.Integer(), nullable=False, comment="1 for the first version of a period"
        ),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("archive_dir", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="validated | rejected | loaded | superseded",
        ),
        sa.Column("is_current", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column(
            "verdict", sa.String(length=16), nullable=True, comment="passed | warning | rejected"
        ),
        sa.Column("rows_received", sa.Integer(), nullable=True),
        sa.Column("rows_loaded", sa.Integer(), nullable=True),
        sa.Column("rows_quarantined", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_audit_load_batch")),
        comment="audit: one row per distinct batch (content) of a (feed, period)",
    )
    with op.batch_alter_table("audit_load_batch", schema=None) as batch_op:
        batch_op.create_index("ix_audit_load_batch_feed_period", ["feed", "period"], unique=False)
        batch_op.create_index(
            "uq_audit_load_batch_current",
            ["feed", "period"],
            unique=True,
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        )

    op.create_table(
        "audit_load_run",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column(
            "step", sa.String(length=16), nullable=False, comment="extract | validate | load"
        ),
        sa.Column("batch_id", sa.String(length=20), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("dag_run_id", sa.String(length=250), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_audit_load_run")),
        comment="audit: every attempt of every step, including failures",
    )
    with op.batch_alter_table("audit_load_run", schema=None) as batch_op:
        batch_op.create_index("ix_audit_load_run_feed_period", ["feed", "period"], unique=False)

    op.create_table(
        "audit_quarantine",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column(
            "row_number", sa.Integer(), nullable=False, comment="0-based position in the batch"
        ),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("failed_expectations", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column("raw_values", sa.Text(), nullable=False, comment="JSON object as received"),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "batch_id", "stream", "row_number", name=op.f("pk_audit_quarantine")
        ),
        comment="audit: rows held back by critical row-level checks, with their raw values",
    )
    with op.batch_alter_table("audit_quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_audit_quarantine_feed_period", ["feed", "period"], unique=False)

    op.create_table(
        "audit_schema_views",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False, comment="of the view's SQL file"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_schema_views")),
        comment="audit: the analyst views in place and the SQL they were built from",
    )
    op.create_table(
        "audit_validation_result",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("suite", sa.String(length=128), nullable=False),
        sa.Column("expectation_index", sa.Integer(), nullable=False),
        sa.Column("expectation_type", sa.String(length=128), nullable=False),
        sa.Column("column_name", sa.String(length=255), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("element_count", sa.Integer(), nullable=True),
        sa.Column("unexpected_count", sa.Integer(), nullable=True),
        sa.Column("unexpected_percent", sa.Float(), nullable=True),
        sa.Column(
            "sample", sa.Text(), nullable=True, comment="JSON list of up to 10 unexpected values"
        ),
        sa.Column("kwargs", sa.Text(), nullable=True, comment="JSON expectation arguments"),
        sa.Column("exception", sa.Text(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_validation_result")),
        comment="audit: every expectation of every validation run",
    )
    with op.batch_alter_table("audit_validation_result", schema=None) as batch_op:
        batch_op.create_index("ix_audit_validation_result_batch", ["batch_id"], unique=False)
        batch_op.create_index(
            "ix_audit_validation_result_feed_period", ["feed", "period"], unique=False
        )

    op.create_table(
        "core_retail_above_quota",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("enterprise_name", sa.String(length=128), nullable=True, comment="单位名称"),
        sa.Column(
            "industry_code",
            sa.String(length=2),
            nullable=True,
            comment="行业代码（GB/T 4754 大类）",
        ),
        sa.Column("industry_name", sa.String(length=32), nullable=True, comment="行业名称"),
        sa.Column("category_code", sa.String(length=8), nullable=False, comment="商品类别代码"),
        sa.Column("category_name", sa.String(length=64), nullable=True, comment="商品类别名称"),
        sa.Column(
            "value_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月零售额（1-2月期为空）",
        ),
        sa.Column(
            "value_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="1-当月累计零售额",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "uscc", "category_code", name=op.f("pk_core_retail_above_quota")
        ),
        comment="core: current version per period — 限额以上单位分企业、分商品类别零售额。",
    )
    op.create_table(
        "core_retail_district_totals",
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column(
            "period_label",
            sa.String(length=16),
            nullable=True,
            comment="发布口径标签（1-2月、3月…）",
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False, comment="行政区划代码"),
        sa.Column("region_name", sa.String(length=32), nullable=True, comment="行政区划名称"),
        sa.Column("indicator_code", sa.String(length=32), nullable=False, comment="指标代码"),
        sa.Column("indicator_name", sa.String(length=64), nullable=True, comment="指标名称"),
        sa.Column(
            "value_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月值（1-2月期为空）",
        ),
        sa.Column(
            "value_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="1-当月累计值",
        ),
        sa.Column(
            "yoy_month_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月同比增速（公布的可比口径）",
        ),
        sa.Column(
            "yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="累计同比增速（公布的可比口径）",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "region_code", "indicator_code", name=op.f("pk_core_retail_district_totals")
        ),
        comment="core: current version per period — 社会消费品零售总额及限额以上单位消费品零售额（区级），当月与累计。",
    )
    op.create_table(
        "mart_indicator_snapshot",
        sa.Column("snapshot_id", sa.String(length=24), nullable=False),
        sa.Column("kpi_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("measure_no", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column(
            "actual_month", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True
        ),
        sa.Column("actual_ytd", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True),
        sa.Column(
            "yoy_month_pct", sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True
        ),
        sa.Column("yoy_ytd_pct", sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
        sa.Column("yoy_basis", sa.String(length=16), nullable=True, comment="published | computed"),
        sa.Column(
            "target_value", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True
        ),
        sa.Column("target_comparator", sa.String(length=2), nullable=True),
        sa.Column(
            "expected_to_date", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=True
        ),
        sa.Column(
            "completion_ratio", sa.Numeric(precision=9, scale=4, asdecimal=False), nullable=True
        ),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column(
            "source_batches", sa.Text(), nullable=False, comment="batch ids the values came from"
        ),
        sa.Column(
            "validation_state",
            sa.String(length=16),
            nullable=True,
            comment="worst verdict of the source batches",
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_mart_indicator_snapshot")),
        comment="mart: immutable indicator snapshots; a revision adds a row",
    )
    with op.batch_alter_table("mart_indicator_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mart_indicator_snapshot_kpi_period", ["kpi_id", "period"], unique=False
        )

    op.create_table(
        "raw_payload",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("page_no", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column(
            "archive_path", sa.Text(), nullable=False, comment="relative to the archive root"
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True, comment="without credentials"),
        sa.Column("params", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", "stream", "page_no", name=op.f("pk_raw_payload")),
        comment="raw: every archived page of every batch, with its checksum",
    )
    op.create_table(
        "stg_retail_above_quota",
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False, comment="统计期 YYYY-MM"),
        sa.Column("region_code", sa.String(length=6), nullable=True, comment="行政区划代码"),
        sa.Column("uscc", sa.String(length=18), nullable=False, comment="统一社会信用代码"),
        sa.Column("enterprise_name", sa.String(length=128), nullable=True, comment="单位名称"),
        sa.Column(
            "industry_code",
            sa.String(length=2),
            nullable=True,
            comment="行业代码（GB/T 4754 大类）",
        ),
        sa.Column("industry_name", sa.String(length=32), nullable=True, comment="行业名称"),
        sa.Column("category_code", sa.String(length=8), nullable=False, comment="商品类别代码"),
        sa.Column("category_name", sa.String(length=64), nullable=True, comment="商品类别名称"),
        sa.Column(
            "value_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月零售额（1-2月期为空）",
        ),
        sa.Column(
            "value_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="1-当月累计零售额",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.PrimaryKeyConstraint(
            "batch_id", "period", "uscc", "category_code", name=op.f("pk_stg_retail_above_quota")
        ),
        comment="staging: typed rows of every accepted batch — 限额以上单位分企业、分商品类别零售额。",
    )
    op.create_table(
        "stg_retail_district_totals",
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
        sa.Column("indicator_code", sa.String(length=32), nullable=False, comment="指标代码"),
        sa.Column("indicator_name", sa.String(length=64), nullable=True, comment="指标名称"),
        sa.Column(
            "value_month",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月值（1-2月期为空）",
        ),
        sa.Column(
            "value_ytd",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="1-当月累计值",
        ),
        sa.Column(
            "yoy_month_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="当月同比增速（公布的可比口径）",
        ),
        sa.Column(
            "yoy_ytd_pct",
            sa.Numeric(precision=18, scale=4, asdecimal=False),
            nullable=True,
            comment="累计同比增速（公布的可比口径）",
        ),
        sa.Column("unit", sa.String(length=8), nullable=True, comment="计量单位"),
        sa.PrimaryKeyConstraint(
            "batch_id",
            "period",
            "region_code",
            "indicator_code",
            name=op.f("pk_stg_retail_district_totals"),
        ),
        comment="staging: typed rows of every accepted batch — 社会消费品零售总额及限额以上单位消费品零售额（区级），当月与累计。",
    )


def downgrade() -> None:

    op.drop_table("stg_retail_district_totals")
    op.drop_table("stg_retail_above_quota")
    op.drop_table("raw_payload")
    with op.batch_alter_table("mart_indicator_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_mart_indicator_snapshot_kpi_period")

    op.drop_table("mart_indicator_snapshot")
    op.drop_table("core_retail_district_totals")
    op.drop_table("core_retail_above_quota")
    with op.batch_alter_table("audit_validation_result", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_validation_result_feed_period")
        batch_op.drop_index("ix_audit_validation_result_batch")

    op.drop_table("audit_validation_result")
    op.drop_table("audit_schema_views")
    with op.batch_alter_table("audit_quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_quarantine_feed_period")

    op.drop_table("audit_quarantine")
    with op.batch_alter_table("audit_load_run", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_load_run_feed_period")

    op.drop_table("audit_load_run")
    with op.batch_alter_table("audit_load_batch", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_audit_load_batch_current",
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        )
        batch_op.drop_index("ix_audit_load_batch_feed_period")

    op.drop_table("audit_load_batch")
