"""The shared "delivery paused" switch, in ``bridge_state``.

A 401 or 403 means the API login or key is wrong, or access to the firm was withdrawn: every
further call would fail the same way, so all delivery stops (every worker reads this flag before
claiming) until a probe call succeeds or an operator resumes it. Nothing is lost meanwhile:
commands wait as pending, without consuming attempts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import BridgeState

PAUSE_KEY = "delivery_paused"


def paused(session: Session) -> dict[str, Any] | None:
    """The pause record (``reason``, ``since``, ``by``) if delivery is paused, else ``None``."""
    row = session.get(BridgeState, PAUSE_KEY, populate_existing=True)
    if row is None or not row.value.get("paused"):
        return None
    return dict(row.value)


def pause(session: Session, now: datetime, *, reason: str, by: str) -> None:
    _put(session, now, {"paused": True, "reason": reason, "since": now.isoformat(), "by": by})


def resume(session: Session, now: datetime, *, by: str) -> bool:
    """Clear the pause; ``True`` if delivery was paused."""
    was = paused(session) is not None
    _put(session, now, {"paused": False, "resumed_at": now.isoformat(), "by": by})
    return was


def _put(session: Session, now: datetime, value: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = ins(BridgeState).values(key=PAUSE_KEY, value=value, updated_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": now}
        )
    )
