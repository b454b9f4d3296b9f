"""review items: the verification (核实) of every warning of a loaded batch

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_review_item",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("batch_id", sa.String(length=20), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column(
            "rule", sa.String(length=255), nullable=False, comment="the check or rule that warned"
        ),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column(
            "entity_key",
            sa.String(length=128),
            nullable=True,
            comment="who the warning is about (entity key)",
        ),
        sa.Column(
            "entity_label", sa.String(length=255), nullable=True, comment="the entity's name"
        ),
        sa.Column("message", sa.Text(), nullable=False, comment="the warning as operators read it"),
        sa.Column("rows", sa.Text(), nullable=False, comment="JSON: batch rows with their keys"),
        sa.Column(
            "owner",
            sa.String(length=64),
            nullable=False,
            comment="the responsible unit (measure catalog)",
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="open | explained | accepted | rejected",
        ),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("explained_by", sa.String(length=64), nullable=True),
        sa.Column("explained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_audit_review_item")),
        comment="audit: verification (核实) of every warning: explanation and decision",
    )
    with op.batch_alter_table("audit_review_item", schema=None) as batch_op:
        batch_op.create_index("ix_audit_review_item_batch", ["batch_id"], unique=False)
        batch_op.create_index("ix_audit_review_item_feed_period", ["feed", "period"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_review_item", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_review_item_feed_period")
        batch_op.drop_index("ix_audit_review_item_batch")
    op.drop_table("audit_review_item")
