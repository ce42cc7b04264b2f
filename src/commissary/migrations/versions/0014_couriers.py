"""deliveries: couriers take offered orders, hand them over with a code, share their position

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# A foreign key makes SQLite rebuild the table: keep its ids never reused (see 0003).
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, commissary.core.db.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("customer_order", table_kwargs=KEEP_AUTOINCREMENT) as batch:
        batch.add_column(_when("offered_at"))
        batch.add_column(sa.Column("courier_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("handover_code", sa.String(length=6), nullable=True))
        batch.add_column(
            sa.Column(
                "handover_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch.add_column(_when("handover_locked_at"))
        batch.add_column(sa.Column("courier_lat", sa.Double(), nullable=True))
        batch.add_column(sa.Column("courier_lon", sa.Double(), nullable=True))
        batch.add_column(_when("courier_located_at"))
        batch.create_foreign_key(
            batch.f("fk_customer_order_courier_id_user_account"),
            "user_account",
            ["courier_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(batch.f("ix_customer_order_courier_id"), ["courier_id"], unique=False)
        batch.create_index(batch.f("ix_customer_order_offered_at"), ["offered_at"], unique=False)
    op.create_table(
        "delivery_refusal",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("courier_id", BIG_ID, nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["courier_id"],
            ["user_account.id"],
            name=op.f("fk_delivery_refusal_courier_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_delivery_refusal_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "courier_id", name=op.f("pk_delivery_refusal")),
    )
    op.create_index(
        op.f("ix_delivery_refusal_courier_id"), "delivery_refusal", ["courier_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_refusal_courier_id"), table_name="delivery_refusal")
    op.drop_table("delivery_refusal")
    with op.batch_alter_table("customer_order", table_kwargs=KEEP_AUTOINCREMENT) as batch:
        batch.drop_index(batch.f("ix_customer_order_offered_at"))
        batch.drop_index(batch.f("ix_customer_order_courier_id"))
        batch.drop_constraint(
            batch.f("fk_customer_order_courier_id_user_account"), type_="foreignkey"
        )
        for column in (
            "courier_located_at",
            "courier_lon",
            "courier_lat",
            "handover_locked_at",
            "handover_attempts",
            "handover_code",
            "courier_id",
            "offered_at",
        ):
            batch.drop_column(column)
