"""ids never reused on SQLite, per-account token keys, category names unique in any case

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from commissary.core.db import register_sqlite_functions

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with an integer id. On SQLite they are rebuilt with AUTOINCREMENT so the id
# of a deleted row is never handed out again; PostgreSQL identities never reuse one.
ID_TABLES = (
    "user_account",
    "restaurant",
    "category",
    "product",
    "customer_order",
    "order_line",
    "order_event",
    "audit_log",
    "outbox_job",
)
FOLDED_INDEX = "uq_category_name_folded"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _random_key_sql() -> str:
    if _is_sqlite():
        return "lower(hex(randomblob(16)))"
    return "md5(random()::text || clock_timestamp()::text || id::text)"


def _rebuild_sqlite_tables(autoincrement: bool) -> None:
    # Foreign keys are off on the migration connection, so dropping and re-creating a
    # referenced table cascades nothing; rows keep their ids.
    for table in ID_TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.add_column(sa.Column("token_key", sa.String(length=32), nullable=True))
    op.execute(f"UPDATE user_account SET token_key = {_random_key_sql()}")  # noqa: S608
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.alter_column("token_key", existing_type=sa.String(length=32), nullable=False)

    with op.batch_alter_table("category") as batch_op:
        batch_op.drop_constraint("uq_category_name", type_="unique")
    if _is_sqlite():
        _rebuild_sqlite_tables(autoincrement=True)
        # The index must be built with the lower() the application uses.
        register_sqlite_functions(op.get_bind().connection.dbapi_connection)
    # Names that already differ only by case keep the oldest; the others get their id.
    op.execute(
        "UPDATE category SET name = substr(name, 1, 60) || ' (' || CAST(id AS VARCHAR) || ')' "
        "WHERE id NOT IN (SELECT min(id) FROM category GROUP BY lower(name))"
    )
    op.create_index(FOLDED_INDEX, "category", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index(FOLDED_INDEX, table_name="category")
    with op.batch_alter_table("category") as batch_op:
        batch_op.create_unique_constraint("uq_category_name", ["name"])
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.drop_column("token_key")
    if _is_sqlite():
        _rebuild_sqlite_tables(autoincrement=False)
