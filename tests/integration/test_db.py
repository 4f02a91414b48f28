from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from bridge.db import make_engine, migrate, migrations_current
from bridge.db.models import Base, InboxEvent


def test_migrations_reach_head_and_match_the_models(engine: Engine) -> None:
    migrate(engine)  # idempotent on an already-migrated database
    assert migrations_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_inbox_deduplicates_on_source_and_event_id(engine: Engine) -> None:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        session.add(InboxEvent(source="stripe", event_id="evt_1", event_type="x", body=b"{}"))
        session.commit()
    with Session(engine) as session:
        session.add(InboxEvent(source="stripe", event_id="evt_1", event_type="x", body=b"{}"))
        try:
            session.commit()
            raised = False
        except IntegrityError:
            raised = True
    assert raised
    with Session(engine) as session:
        session.add(InboxEvent(source="shopify", event_id="evt_1", event_type="x", body=b"{}"))
        session.commit()
        assert session.query(InboxEvent).count() == 2


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x/bridge.db", busy_timeout=1.5)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 1500
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_an_empty_database_is_not_current(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    assert not migrations_current(engine)
    engine.dispose()
