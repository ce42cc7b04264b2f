"""orders: the event stream's positions (global, gap-free, in commit order)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:00:00

The events written before this revision get their positions here, in id order, so the
sequencer starts after them and hands nothing old to the stream's consumers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_event", sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE order_event SET position = ranked.rn FROM "
        "(SELECT id, row_number() OVER (ORDER BY id) AS rn FROM order_event) AS ranked "
        "WHERE order_event.id = ranked.id"
    )
    op.create_index("ix_order_event_position", "order_event", ["position"], unique=True)
    op.create_index(
        "ix_order_event_unsequenced",
        "order_event",
        ["id"],
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )
    head = op.create_table(
        "event_stream_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_stream_head")),
    )
    op.execute(
        head.insert().from_select(
            ["id", "position"],
            sa.select(sa.literal(1), sa.func.count()).select_from(sa.table("order_event")),
        )
    )


def downgrade() -> None:
    op.drop_table("event_stream_head")
    op.drop_index("ix_order_event_unsequenced", table_name="order_event")
    op.drop_index("ix_order_event_position", table_name="order_event")
    op.drop_column("order_event", "position")
