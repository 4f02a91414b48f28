"""On SQLite the inbox writer polls for the write lock: it gets in as soon as another process lets go."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bridge.db import make_engine, migrate
from bridge.db.models import EventStatus
from bridge.inbound.events import Source
from bridge.inbound.inbox import Entry, Inbox, InboxUnavailableError
from bridge.inbound.sources import Delivery


def _entry(event_id: str) -> Entry:
    body = f'{{"id":"{event_id}"}}'.encode()
    return Entry(Delivery(Source.STRIPE, event_id, "invoice.paid", body), EventStatus.RECEIVED)


def _hold_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Another connection (as the worker process would) holds the write lock for ``seconds``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


def _busy_like_a_worker(path: Path, seconds: float, held: threading.Event) -> None:
    """Short write transactions back to back, 20 ms each with 2 ms gaps, for ``seconds``."""
    other = sqlite3.connect(path, isolation_level=None)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(0.02)
        other.execute("COMMIT")
        time.sleep(0.002)
    other.close()


def test_the_writer_gets_in_between_a_busy_process_s_transactions(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}", busy_timeout=3.0)
    inbox = Inbox(engine, busy_timeout=3.0)
    held = threading.Event()
    holder = threading.Thread(target=_busy_like_a_worker, args=(db, 2.5, held))
    holder.start()
    held.wait(5)
    waits = []
    for n in range(5):
        started = time.monotonic()
        assert not inbox.store_many([_entry(f"evt_lock_{n}")])[0].duplicate
        waits.append(time.monotonic() - started)
    holder.join()
    # SQLite's busy handler, sleeping up to 100 ms between tries, rarely hits a 2 ms gap and
    # starved for seconds; polling every millisecond gets in within a transaction or two.
    assert max(waits) < 0.4, waits
    with engine.connect() as conn:  # the connection's busy timeout is restored for other users
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 3000
    engine.dispose()


def test_a_lock_held_past_the_busy_timeout_is_unavailable_not_a_hang(db: Path) -> None:
    engine = make_engine(f"sqlite:///{db}", busy_timeout=0.3)
    inbox = Inbox(engine, busy_timeout=0.3)
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, 1.5, held))
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(InboxUnavailableError, match="locked"):
        inbox.store_many([_entry("evt_lock_2")])
    waited = time.monotonic() - started
    holder.join()
    assert 0.3 <= waited < 1.2
    assert not inbox.store_many([_entry("evt_lock_2")])[0].duplicate  # stored once free
    engine.dispose()
