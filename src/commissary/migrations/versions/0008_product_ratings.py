"""catalog: product ratings, and each product's average and count

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product") as batch:
        batch.add_column(sa.Column("rating", sa.Numeric(3, 1), nullable=True))
        batch.add_column(
            sa.Column("ratings_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "product_rating",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 10", name=op.f("ck_product_rating_score_range")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_rating_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_product_rating_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_rating")),
        sa.UniqueConstraint("product_id", "user_id", name=op.f("uq_product_rating_product_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_product_rating_product_id_id", "product_rating", ["product_id", "id"], unique=False
    )
    op.create_index(op.f("ix_product_rating_user_id"), "product_rating", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_product_rating_user_id"), table_name="product_rating")
    op.drop_index("ix_product_rating_product_id_id", table_name="product_rating")
    op.drop_table("product_rating")
    with op.batch_alter_table("product") as batch:
        batch.drop_column("ratings_count")
        batch.drop_column("rating")
