"""indicator snapshots: pace kind and basis, like-for-like YoY numerator

Issue 15: every target KPI is judged by a pace profile (linear, seasonal, schedule, level,
year_end) shown beside the expected value, and a computed YoY is like-for-like over the
units present in both years (``comparable_ytd`` / ``prior_ytd``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "mart_indicator_snapshot"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(
            sa.Column(
                "comparable_ytd",
                sa.Numeric(18, 4, asdecimal=False),
                nullable=True,
                comment="this year's value of the units present in both years (like-for-like YoY)",
            )
        )
        batch.add_column(
            sa.Column(
                "pace",
                sa.String(length=16),
                nullable=True,
                comment="pace kind: linear | seasonal | schedule | level | …",
            )
        )
        batch.add_column(
            sa.Column(
                "pace_basis",
                sa.String(length=128),
                nullable=True,
                comment="what the expected-to-date value rests on",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("pace_basis")
        batch.drop_column("pace")
        batch.drop_column("comparable_ytd")
