"""The database's entity diagram in Mermaid, drawn from the models themselves."""

from __future__ import annotations

import re

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _type_of(column: Column[object]) -> str:
    """The column's type as PostgreSQL names it, in one word as Mermaid wants it."""
    name = column.type.compile(dialect=_DIALECT).lower()
    name = re.sub(r"\(\d+, \d+\)", "", name)  # no commas in a Mermaid type: numeric(12, 2)
    return name.replace("timestamp with time zone", "timestamptz").replace(" ", "_")


def _marks(column: Column[object]) -> str:
    keys = [k for k, on in (("PK", column.primary_key), ("FK", bool(column.foreign_keys))) if on]
    return f" {','.join(keys)}" if keys else ""


def _entity(table: Table) -> list[str]:
    lines = [f"    {table.name} {{"]
    lines += [f"        {_type_of(c)} {c.name}{_marks(c)}" for c in table.columns]
    return [*lines, "    }"]


def _relations(table: Table) -> list[str]:
    """One line per foreign key: the referenced table has zero or more rows of this one (or
    zero or one, when the key is also this table's whole primary key)."""
    out = []
    for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        target = fk.column.table.name
        many = "o|" if list(table.primary_key.columns) == [fk.parent] else "o{"
        optional = "|o" if fk.parent.nullable else "||"
        out.append(f'    {target} {optional}--{many} {table.name} : "{fk.parent.name}"')
    return out


def mermaid(metadata: MetaData) -> str:
    """``erDiagram`` of every table of ``metadata``, tables and columns in a stable order."""
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    lines = ["erDiagram"]
    for table in tables:
        lines += _relations(table)
    for table in tables:
        lines += _entity(table)
    return "\n".join(lines) + "\n"
