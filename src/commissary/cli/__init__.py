"""The `commissary` command."""

from __future__ import annotations

from commissary.cli import cafeteria, db, demo, server
from commissary.cli.common import app

__all__ = ["app", "cafeteria", "db", "demo", "server"]
