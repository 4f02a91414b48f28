"""The SQLAlchemy engine for SQLite (embedded default) or PostgreSQL (>= 15).

SQLite runs in WAL mode with ``synchronous=FULL`` (configurable) and a busy timeout, so that a
commit is durable before the webhook is acknowledged and a locked database fails fast (503)
instead of hanging the sender.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

# An execution option: this engine's transactions poll for SQLite's write lock (the inbox writer).
LOCK_POLL_OPTION = "bridge_sqlite_lock_poll"
LOCK_POLL_SECONDS = 0.001


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    busy_timeout: float = 2.0,
    pool_size: int = 10,
) -> Engine:
    """Create the process's engine. Creates the SQLite file's directory if needed."""
    sa_url = make_url(_normalise_url(url))
    if sa_url.get_backend_name() == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            sa_url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine, sqlite_synchronous, busy_timeout)
        return engine
    return create_engine(
        sa_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=busy_timeout,
        connect_args={"connect_timeout": max(1, int(busy_timeout))},
    )


def _configure_sqlite(engine: Engine, synchronous: str, busy_timeout: float) -> None:
    if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValueError(f"unsupported SQLite synchronous mode {synchronous!r}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover
            raise TypeError("SQLite engine without a sqlite3 connection")
        # Let SQLAlchemy own transactions (BEGIN is emitted below), per the SQLAlchemy docs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock-prone lock upgrades mid-transaction.
        if connection.get_execution_options().get(LOCK_POLL_OPTION):
            _begin_polling(connection.connection.driver_connection, busy_timeout)
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_polling(dbapi_connection: sqlite3.Connection, busy_timeout: float) -> None:
    """``BEGIN IMMEDIATE``, trying for the write lock every millisecond up to ``busy_timeout``.

    SQLite's busy handler sleeps in growing steps (up to 100 ms) between tries; a process that
    commits one short transaction after another (the worker) takes the lock back in the gaps,
    and a waiter using the busy handler starved for seconds. Polling catches the gaps.
    """
    deadline = time.monotonic() + busy_timeout
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(LOCK_POLL_SECONDS)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
