"""catalog: the waiters of each restaurant

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "restaurant_staff",
        sa.Column(
            "restaurant_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["restaurant_id"],
            ["restaurant.id"],
            name=op.f("fk_restaurant_staff_restaurant_id_restaurant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_restaurant_staff_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("restaurant_id", "user_id", name=op.f("pk_restaurant_staff")),
    )
    op.create_index(
        op.f("ix_restaurant_staff_user_id"), "restaurant_staff", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_restaurant_staff_user_id"), table_name="restaurant_staff")
    op.drop_table("restaurant_staff")
