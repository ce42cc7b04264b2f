"""The README's entity diagram is the schema the models declare."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table
from typer.testing import CliRunner

import commissary.models  # noqa: F401 - every table mapped
from commissary.cli import app
from commissary.core.db import Base
from commissary.core.diagram import mermaid

README = Path(__file__).parents[1] / "README.md"


def test_readme_entity_diagram_matches_the_models() -> None:
    blocks = re.findall(r"```mermaid\n(erDiagram\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README has one entity diagram"
    assert blocks[0] == mermaid(Base.metadata), (
        "the README's entity diagram is out of date: replace it with `commissary db diagram`"
    )


def test_db_diagram_prints_the_diagram_without_a_database() -> None:
    result = CliRunner().invoke(app, ["db", "diagram"])
    assert result.exit_code == 0, result.output
    assert result.output == mermaid(Base.metadata)


def test_diagram_names_every_column_key_and_relation() -> None:
    metadata = MetaData()
    Table("shop", metadata, Column("id", Integer, primary_key=True), Column("name", String(80)))
    Table(
        "order_slip",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("shop_id", ForeignKey("shop.id"), nullable=False),
        Column("parent_id", ForeignKey("order_slip.id")),
    )
    Table("shop_detail", metadata, Column("shop_id", ForeignKey("shop.id"), primary_key=True))
    assert mermaid(metadata).splitlines() == [
        "erDiagram",
        '    order_slip |o--o{ order_slip : "parent_id"',
        '    shop ||--o{ order_slip : "shop_id"',
        '    shop ||--o| shop_detail : "shop_id"',
        "    order_slip {",
        "        integer id PK",
        "        integer shop_id FK",
        "        integer parent_id FK",
        "    }",
        "    shop {",
        "        integer id PK",
        "        varchar(80) name",
        "    }",
        "    shop_detail {",
        "        integer shop_id PK,FK",
        "    }",
    ]
