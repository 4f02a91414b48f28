"""Durable storage: engine, tables and migrations."""

from bridge.db.engine import make_engine, session_factory
from bridge.db.migrate import migrate, migrations_current

__all__ = ["make_engine", "migrate", "migrations_current", "session_factory"]
