"""``bridge_state``: small shared values by key (the pause switch, backfill cursors, reports).

Both functions run in the caller's session; the caller commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import BridgeState


def get_state(session: Session, key: str) -> dict[str, Any] | None:
    """The value stored under ``key`` (as committed, not a cached copy), or ``None``."""
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
