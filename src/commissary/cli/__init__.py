"""The `commissary` command."""

from __future__ import annotations

from commissary.cli import cafeteria, catalog, db, demo, server
from commissary.cli.common import app

__all__ = ["app", "cafeteria", "catalog", "db", "demo", "server"]
