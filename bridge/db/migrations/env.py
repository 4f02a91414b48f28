"""Alembic environment: the engine comes from the caller (``bridge.db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from bridge.db.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through 'facturation-bridge migrate'")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
