"""Alembic environment: the engine comes from the caller (``bridge.db.migrate``).

On SQLite, foreign keys are switched off while migrating, as Alembic's batch mode requires: a batch
operation rebuilds a table (copy, drop, rename), and dropping ``outbox_commands`` with foreign keys
on would cascade into ``command_dependencies`` and delete every dependency. The keys are checked
(``PRAGMA foreign_key_check``) before the migration commits, and switched on again after.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from bridge.db.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through 'facturation-bridge migrate'")


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # A no-op inside a transaction: sent on the driver's connection, before SQLAlchemy begins one.
    connection.connection.driver_connection.execute(  # type: ignore[union-attr]  # sqlite3 here
        f"PRAGMA foreign_keys={'ON' if on else 'OFF'}"
    )


with engine.connect() as connection:
    is_sqlite = connection.dialect.name == "sqlite"
    if is_sqlite:
        _sqlite_foreign_keys(connection, on=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if is_sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        connection.commit()
    finally:
        if is_sqlite:
            connection.rollback()
            _sqlite_foreign_keys(connection, on=True)
