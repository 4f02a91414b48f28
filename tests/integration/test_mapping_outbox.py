"""Mapped commands go into the real outbox (SQLite and PostgreSQL): stored once, per key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bridge.config import Settings
from bridge.db.models import OutboxCommand
from bridge.mapping.samples import SampleEngines, read_samples
from bridge.outbox.enqueue import enqueue

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def test_every_golden_outcome_is_storable_and_stored_once(engine: Engine) -> None:
    engines = SampleEngines(Settings())
    now = datetime(2026, 6, 1, tzinfo=UTC)
    keys: set[str] = set()
    for _ in range(2):  # a redelivery maps to the same keys: nothing more is stored
        for sample in read_samples(GOLDEN):
            mapper = engines.for_sample(sample)
            outcome = mapper.map_event(sample.event()) if "error" not in sample.expected else None
            if outcome is None:
                continue
            keys.update(c.key for c in outcome.commands)
            with Session(engine) as session, session.begin():
                enqueue(session, outcome.commands, now=now)
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(OutboxCommand))
    assert keys
    assert stored == len(keys)
