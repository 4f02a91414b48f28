"""The worker's backoff while its database does not answer: the waits and the log lines."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from bridge.outbox.db_backoff import DatabaseBackoff


def _down() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_waits_double_up_to_five_seconds_with_one_line_per_try() -> None:
    now = [100.0]
    backoff = DatabaseBackoff("w1", monotonic=lambda: now[0])
    with capture_logs() as logs:
        waits = []
        for _ in range(7):
            waits.append(backoff.failed(_down()))
            now[0] += waits[-1]
        backoff.succeeded()
        backoff.succeeded()  # a second good turn says nothing
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert [e["event"] for e in logs] == ["worker.database_unreachable"] * 7 + [
        "worker.database_recovered"
    ]
    assert logs[0] == {
        "event": "worker.database_unreachable",
        "log_level": "warning",
        "worker_id": "w1",
        "error": "OperationalError",
        "reason": "database is locked",
        "retry_in_s": 0.5,
    }
    assert logs[-1]["down_s"] == 22.5


def test_a_new_outage_starts_again_from_the_first_wait() -> None:
    backoff = DatabaseBackoff("w1")
    with capture_logs():
        assert [backoff.failed(_down()) for _ in range(3)] == [0.5, 1.0, 2.0]
        backoff.succeeded()
        assert backoff.failed(_down()) == 0.5
