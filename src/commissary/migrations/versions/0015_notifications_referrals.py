"""notifications: in-app messages about order events; referral codes of members

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# As ``commissary.models.user`` makes them, copied so this file never changes with the model.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
KINDS = (
    "order.created",
    "order.accepted",
    "order.rejected",
    "order.cancelled",
    "order.ready",
    "order.out_for_delivery",
    "order.completed",
    "order.acceptance_overdue",
    "courier.assigned",
    "delivery.released",
    "delivery.cancelled",
    "referral.converted",
)


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(10))


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("order_id", BigId, nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(*KINDS, name="notificationkind", native_enum=False, length=40),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", commissary.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("emailed_at", commissary.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_notification_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_notification_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_notification_user_id_id", ["user_id", "id"], unique=False)

    # SQLite rebuilds the table for the foreign key: it keeps AUTOINCREMENT (see 0003).
    table_kwargs = {"sqlite_autoincrement": True}
    with op.batch_alter_table("user_account", table_kwargs=table_kwargs) as batch_op:
        batch_op.add_column(sa.Column("referral_code", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("referred_by_id", BigId, nullable=True))
        batch_op.add_column(
            sa.Column(
                "referral_converted_at",
                commissary.core.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_user_account_referred_by_id_user_account"),
            "user_account",
            ["referred_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_referred_by_id"), ["referred_by_id"], unique=False
        )
    # Every existing member gets a code of their own.
    bind = op.get_bind()
    users = sa.table("user_account", sa.column("id", BigId), sa.column("referral_code"))
    ids = bind.execute(sa.select(users.c.id)).scalars().all()
    codes: set[str] = set()
    for user_id in ids:
        code = _new_code()
        while code in codes:
            code = _new_code()
        codes.add(code)
        bind.execute(users.update().where(users.c.id == user_id).values(referral_code=code))
    with op.batch_alter_table("user_account", table_kwargs=table_kwargs) as batch_op:
        batch_op.alter_column("referral_code", existing_type=sa.String(length=16), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_user_account_referral_code"), ["referral_code"]
        )


def downgrade() -> None:
    table_kwargs = {"sqlite_autoincrement": True}
    with op.batch_alter_table("user_account", table_kwargs=table_kwargs) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_user_account_referral_code"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_user_account_referred_by_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_user_account_referred_by_id_user_account"), type_="foreignkey"
        )
        batch_op.drop_column("referral_converted_at")
        batch_op.drop_column("referred_by_id")
        batch_op.drop_column("referral_code")

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_user_id_id")
        batch_op.drop_index(batch_op.f("ix_notification_order_id"))
    op.drop_table("notification")
