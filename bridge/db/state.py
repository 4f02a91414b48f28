"""Small shared records in the ``bridge_state`` table: one JSON value per key.

The delivery pause switch, the alerts' memory of what was already said, the last reconcile report…
Each is read and written in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import BridgeState


def get_state(session: Session, key: str) -> dict[str, Any] | None:
    """The value stored under ``key``, read fresh from the database (not the session's cache)."""
    row = session.get(BridgeState, key, populate_existing=True)
    return None if row is None else dict(row.value)


def put_state(session: Session, key: str, value: dict[str, Any], now: datetime) -> None:
    """Store ``value`` under ``key``, replacing what was there."""
    dialect = session.get_bind().dialect.name
    ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = ins(BridgeState).values(key=key, value=value, updated_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": now}
        )
    )


def claim_turn(session: Session, key: str, now: datetime, every_s: float) -> bool:
    """``True`` for exactly one caller per ``every_s`` seconds, across every process.

    A compare-and-set on the row's ``updated_at``: the caller that moves it forward has the turn.
    """
    current = session.get(BridgeState, key, populate_existing=True)
    if current is None:
        put_state(session, key, {"turn_at": now.isoformat()}, now)
        return True
    last = current.updated_at
    if last.tzinfo is None:  # SQLite hands back naive datetimes
        last = last.replace(tzinfo=now.tzinfo)
    if (now - last).total_seconds() < every_s:
        return False
    moved = session.execute(
        update(BridgeState)
        .where(BridgeState.key == key, BridgeState.updated_at == current.updated_at)
        .values(value={"turn_at": now.isoformat()}, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(moved, "rowcount", 0) == 1
