"""orders: the lines' order index also carries what the sales report sums (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_order_line_order_id", table_name="order_line")
    op.create_index(
        "ix_order_line_order_id",
        "order_line",
        ["order_id"],
        postgresql_include=["product_name", "quantity", "line_total"],
    )


def downgrade() -> None:
    op.drop_index("ix_order_line_order_id", table_name="order_line")
    op.create_index("ix_order_line_order_id", "order_line", ["order_id"])
