"""catalog: drink options (option groups and options); cart; options on order lines

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 01:48:04.218175
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cart",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["user_account.id"],
            name=op.f("fk_cart_customer_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_cart_customer_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "cart_item",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cart_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("option_ids", sa.JSON(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["cart.id"], name=op.f("fk_cart_item_cart_id_cart"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_cart_item_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart_item")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cart_item_cart_id"), ["cart_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cart_item_product_id"), ["product_id"], unique=False)

    op.create_table(
        "option_group",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("min_choices", sa.Integer(), nullable=False),
        sa.Column("max_choices", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_option_group_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_option_group")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("option_group", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_option_group_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "product_option",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("price_delta", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("ingredients", sa.JSON(), nullable=False),
        sa.Column("allergens", sa.JSON(), nullable=False),
        sa.Column("is_available", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["option_group.id"],
            name=op.f("fk_product_option_group_id_option_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_option")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("product_option", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_option_group_id"), ["group_id"], unique=False)

    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("options", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_column("options")

    with op.batch_alter_table("product_option", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_option_group_id"))

    op.drop_table("product_option")
    with op.batch_alter_table("option_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_option_group_product_id"))

    op.drop_table("option_group")
    with op.batch_alter_table("cart_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cart_item_product_id"))
        batch_op.drop_index(batch_op.f("ix_cart_item_cart_id"))

    op.drop_table("cart_item")
    op.drop_table("cart")
