"""orders: when the simulated kitchen is done

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_order") as batch:
        batch.add_column(
            sa.Column(
                "kitchen_due_at", commissary.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_order") as batch:
        batch.drop_column("kitchen_due_at")
