"""support: conversations and their messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 01:48:43.836647
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import commissary.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_conversation",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "closed", name="conversationstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "assignee_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", commissary.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", commissary.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "closed_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["user_account.id"],
            name=op.f("fk_support_conversation_assignee_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["user_account.id"],
            name=op.f("fk_support_conversation_closed_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["user_account.id"],
            name=op.f("fk_support_conversation_customer_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_conversation")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("support_conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_conversation_assignee_id"), ["assignee_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_conversation_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_support_conversation_customer_id_id", ["customer_id", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_support_conversation_status"), ["status"], unique=False
        )

    op.create_table(
        "support_message",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", commissary.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_support_message_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["support_conversation.id"],
            name=op.f("fk_support_message_conversation_id_support_conversation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_message")),
        sa.UniqueConstraint(
            "conversation_id", "seq", name=op.f("uq_support_message_conversation_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("support_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_support_message_author_id"), ["author_id"], unique=False
        )
        batch_op.create_index(
            "ix_support_message_conversation_id_id", ["conversation_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("support_message", schema=None) as batch_op:
        batch_op.drop_index("ix_support_message_conversation_id_id")
        batch_op.drop_index(batch_op.f("ix_support_message_author_id"))

    op.drop_table("support_message")
    with op.batch_alter_table("support_conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_support_conversation_status"))
        batch_op.drop_index("ix_support_conversation_customer_id_id")
        batch_op.drop_index(batch_op.f("ix_support_conversation_created_at"))
        batch_op.drop_index(batch_op.f("ix_support_conversation_assignee_id"))

    op.drop_table("support_conversation")
