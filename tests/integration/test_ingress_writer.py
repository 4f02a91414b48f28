"""The inbox's group commit on real SQLite and PostgreSQL: batches, duplicates, failures."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import Engine, func, select

from bridge.db import make_engine
from bridge.db.models import EventStatus, InboxEvent
from bridge.inbound.events import Source
from bridge.inbound.inbox import Entry, Inbox, InboxUnavailableError, Stored
from bridge.inbound.sources import Delivery
from bridge.inbound.writer import InboxWriter


def _entry(event_id: str, status: EventStatus = EventStatus.RECEIVED) -> Entry:
    delivery = Delivery(Source.STRIPE, event_id, "invoice.paid", f'{{"id":"{event_id}"}}'.encode())
    return Entry(delivery, status)


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(InboxEvent)).scalar_one())


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return Inbox(engine, busy_timeout=5)


def test_concurrent_stores_are_committed_in_batches_with_duplicates_resolved(
    inbox: Inbox, engine: Engine
) -> None:
    writer = InboxWriter(inbox, timeout=10)
    ids = [f"evt_{uuid.uuid4().hex}" for _ in range(150)]
    sent = ids + ids[:50]  # a third of them delivered twice, in the same burst

    async def burst() -> list[Stored]:
        return list(await asyncio.gather(*(writer.store(_entry(i)) for i in sent)))

    results = asyncio.run(burst())
    assert sum(not r.duplicate for r in results) == 150
    assert sum(r.duplicate for r in results) == 50
    by_id = {i: r.inbox_event_id for i, r in zip(sent, results, strict=True) if not r.duplicate}
    for event_id, result in zip(sent, results, strict=True):
        assert result.inbox_event_id == by_id[event_id]
    assert _count(engine) == 150


def test_store_many_keeps_order_and_reports_existing_rows(inbox: Inbox) -> None:
    old = inbox.store(_entry("evt_old").delivery, EventStatus.IGNORED, "no mapping")
    results = inbox.store_many([_entry("evt_new"), _entry("evt_old"), _entry("evt_new")])
    assert [r.duplicate for r in results] == [False, True, True]
    assert results[1] == Stored(old.inbox_event_id, EventStatus.IGNORED, duplicate=True)
    assert results[0].inbox_event_id == results[2].inbox_event_id != old.inbox_event_id


def test_an_entry_the_database_refuses_fails_alone(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        writer = InboxWriter(Inbox(engine, busy_timeout=5), timeout=10)
        good = [f"evt_{n}" for n in range(20)]
        too_long = "evt_" + "x" * 300  # VARCHAR(255) on PostgreSQL

        async def burst() -> list[Stored | BaseException]:
            entries = [_entry(i) for i in good[:10]] + [_entry(too_long)]
            entries += [_entry(i) for i in good[10:]]
            return list(
                await asyncio.gather(*(writer.store(e) for e in entries), return_exceptions=True)
            )

        # One statement for the batch is all or nothing: the refused entry fails the others...
        inbox = Inbox(engine, busy_timeout=5)
        with pytest.raises(InboxUnavailableError, match="DataError"):
            inbox.store_many([_entry("evt_first"), _entry(too_long)])
        assert _count(engine) == 0
        # ...so the writer retries a failed batch entry by entry.
        results = asyncio.run(burst())
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1
        assert isinstance(failures[0], InboxUnavailableError)
        assert _count(engine) == 20
    finally:
        engine.dispose()


def test_an_unreachable_database_fails_every_waiting_store() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none", busy_timeout=1)
    writer = InboxWriter(Inbox(engine, busy_timeout=1), timeout=5)

    async def burst() -> list[Stored | BaseException]:
        return list(
            await asyncio.gather(
                *(writer.store(_entry(f"evt_{n}")) for n in range(5)), return_exceptions=True
            )
        )

    try:
        results = asyncio.run(burst())
    finally:
        engine.dispose()
    assert all(isinstance(r, InboxUnavailableError) for r in results)
