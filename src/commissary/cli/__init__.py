"""The `commissary` command."""

from __future__ import annotations

from commissary.cli import db, server
from commissary.cli.common import app

__all__ = ["app", "db", "server"]
