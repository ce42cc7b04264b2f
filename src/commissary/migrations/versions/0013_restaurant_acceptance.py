"""orders: manual kitchens accept or reject orders; restaurants can pause taking orders

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER_TIMES = ("awaiting_since_at", "acceptance_overdue_at", "accepted_at", "ready_by")


def upgrade() -> None:
    with op.batch_alter_table("restaurant") as batch:
        batch.add_column(
            sa.Column("is_accepting_orders", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("restaurant") as batch:
        batch.alter_column("is_accepting_orders", server_default=None)
    with op.batch_alter_table("customer_order") as batch:
        for name in ORDER_TIMES:
            batch.add_column(
                sa.Column(name, commissary.core.db.UTCDateTime(timezone=True), nullable=True)
            )
        batch.create_index(
            "ix_customer_order_status_awaiting_since", ["status", "awaiting_since_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_order") as batch:
        batch.drop_index("ix_customer_order_status_awaiting_since")
        for name in reversed(ORDER_TIMES):
            batch.drop_column(name)
    with op.batch_alter_table("restaurant") as batch:
        batch.drop_column("is_accepting_orders")
