"""The worker through a database outage: it waits quietly, recovers by itself, and hands back the
claim the outage left in flight instead of stranding it until its lease ends.

Real outages only: a SQLite file held under ``BEGIN EXCLUSIVE`` by another connection for longer
than the busy timeout, and a PostgreSQL server of the test's own stopped with ``pg_ctl stop`` and
started again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from bridge.db import make_engine, migrate
from bridge.db.models import OutboxCommand
from bridge.outbox.worker import Worker
from bridge.runtime import Runtime
from tests.support.fake_api import Answer, FakeApi
from tests.support.outbox_kit import (
    Clock,
    customer_key,
    invoice_key,
    put,
    runtime_for,
    sale,
    worker_for,
)
from tests.support.pg import PostgresServer, PostgresUnavailableError, start_postgres

LEASE = 30.0


@dataclass
class OutageApi(FakeApi):
    """The in-memory API, plus something that happens right after an invoice is created."""

    after_invoice_created: Callable[[], Any] | None = None

    def create_invoice(self, body: Any, *, draft: bool = False) -> Answer:
        answer = super().create_invoice(body, draft=draft)
        action, self.after_invoice_created = self.after_invoice_created, None
        if action is not None:
            action()
        return answer


def _row(runtime: Runtime, key: str) -> OutboxCommand:
    with runtime.sessions() as session:
        return session.execute(
            select(OutboxCommand).where(OutboxCommand.idempotency_key == key)
        ).scalar_one()


def _assert_one_invoice_done(runtime: Runtime, api: FakeApi) -> None:
    row = _row(runtime, invoice_key(1))
    assert row.status == "done"
    assert row.remote_id in api.invoices
    assert len(api.invoices) == 1
    assert api.duplicates() == []


# -- SQLite: locked past the busy timeout ---------------------------------------------------------


@pytest.fixture
def lock_holder(sqlite_url: str) -> Iterator[sqlite3.Connection]:
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def test_a_claim_whose_outcome_could_not_be_recorded_is_handed_back_unknown(
    sqlite_url: str, lock_holder: sqlite3.Connection
) -> None:
    clock = Clock()
    api = OutageApi(after_invoice_created=lambda: lock_holder.execute("BEGIN EXCLUSIVE"))
    with runtime_for(sqlite_url, lease_seconds=LEASE, db_busy_timeout=0.3) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        assert worker.step()  # the customer
        with pytest.raises(OperationalError, match="database is locked"):
            worker.step()  # the invoice is created, then recording it fails
        held = worker.deliverer.held
        assert held is not None
        assert (held.claim.key, held.may_have_sent) == (invoice_key(1), True)

        lock_holder.execute("ROLLBACK")
        assert _row(runtime, invoice_key(1)).status == "in_flight"
        with capture_logs() as logs:
            worker.deliverer.release_held()
        row = _row(runtime, invoice_key(1))
        assert (row.status, row.outcome_unknown, row.lease_expires_at) == ("pending", True, None)
        assert row.attempts == 0
        assert row.next_attempt_at == clock()  # due now, not at the end of the lease
        assert row.last_error == "released after a database error (OperationalError)"
        assert [e["event"] for e in logs] == ["delivery.claim_released"]
        assert worker.deliverer.held is None

        assert worker.step()  # looks the invoice up by api_id and finds it: nothing sent again
        _assert_one_invoice_done(runtime, api)
    assert api.calls == ["create_customer", "create_invoice", "find_invoices"]


def test_a_claim_that_never_reached_the_api_is_handed_back_as_it_was(
    sqlite_url: str, lock_holder: sqlite3.Connection
) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(sqlite_url, lease_seconds=LEASE, db_busy_timeout=0.3) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        claimed = worker.outbox.claim("w1")
        assert claimed is not None
        lock_holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(OperationalError, match="database is locked"):
            worker.deliverer.deliver(claimed)
        lock_holder.execute("ROLLBACK")
        assert worker.deliverer.held is not None
        assert not worker.deliverer.held.may_have_sent
        worker.deliverer.release_held()
        row = _row(runtime, customer_key("cus_a"))
        assert (row.status, row.outcome_unknown, row.attempts) == ("pending", False, 0)
        assert api.calls == []


def test_handing_back_is_fenced_by_the_lease_token(
    sqlite_url: str, lock_holder: sqlite3.Connection
) -> None:
    clock, api = Clock(), FakeApi()
    with runtime_for(sqlite_url, lease_seconds=LEASE, db_busy_timeout=0.3) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        w1 = worker_for(runtime, api, clock, "w1")
        claimed = w1.outbox.claim("w1")
        assert claimed is not None
        lock_holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(OperationalError):
            w1.deliverer.deliver(claimed)
        lock_holder.execute("ROLLBACK")
        clock.advance(LEASE + 1)
        taken = worker_for(runtime, api, clock, "w2").outbox.claim("w2")  # the lease ran out
        assert taken is not None
        assert taken.lease_token == claimed.lease_token + 1
        w1.deliverer.release_held()  # too late: w2's attempt is not disturbed
        row = _row(runtime, customer_key("cus_a"))
        assert (row.status, row.leased_by, row.lease_token) == (
            "in_flight",
            "w2",
            taken.lease_token,
        )


# -- PostgreSQL: the server stopped and started again ---------------------------------------------


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PostgresServer]:
    """A server of this module's own: stopping the shared one would break the other tests."""
    try:
        server = start_postgres()
    except PostgresUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_pg_url(own_pg: PostgresServer, request: pytest.FixtureRequest) -> str:
    name = f"outage_{request.node.name.lower()[:40]}"
    with psycopg.connect(own_pg.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = own_pg.url(name)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in list(logs) if e["event"] == name]


@pytest.mark.postgres
def test_the_worker_waits_out_a_stopped_server_and_recovers_by_itself(
    own_pg: PostgresServer, own_pg_url: str
) -> None:
    api = FakeApi()
    with runtime_for(own_pg_url, poll_interval=0.05, db_busy_timeout=1.0) as runtime:
        worker = Worker(runtime, api, None, worker_id="w1")  # on the real clock
        stop = threading.Event()
        with capture_logs() as logs:
            thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
            thread.start()
            try:
                put(runtime, sale(1, "cus_a"))
                _wait_for(lambda: len(api.invoices) == 1, 30, "the first invoice")

                own_pg.halt()
                time.sleep(6.0)
                down = _events(logs, "worker.database_unreachable")
                own_pg.restart()
                _wait_for(
                    lambda: _events(logs, "worker.database_recovered"), 60, "the recovery line"
                )
                put(runtime, sale(2, "cus_b"))
                _wait_for(lambda: len(api.invoices) == 2, 30, "the invoice after recovery")
            finally:
                stop.set()
                thread.join(30)
    assert not thread.is_alive()
    # about one line per try: 0.5 + 1 + 2 + 4 s of waits fit in 6 s, not thirty 0.2 s polls
    assert 2 <= len(down) <= 6, [e.get("retry_in_s") for e in down]
    waits = [e["retry_in_s"] for e in down]
    assert waits == sorted(waits)
    assert max(waits) <= 5.0
    assert {e["error"] for e in down} == {"OperationalError"}
    assert all(e["log_level"] == "warning" for e in down)
    assert len(_events(logs, "worker.database_recovered")) == 1
    assert _events(logs, "worker.step_failed") == []  # no traceback per poll
    assert api.duplicates() == []


@pytest.mark.postgres
def test_a_claim_in_flight_when_the_server_stops_is_handed_back_once_it_is_up(
    own_pg: PostgresServer, own_pg_url: str
) -> None:
    clock = Clock()
    api = OutageApi(after_invoice_created=own_pg.halt)
    with runtime_for(own_pg_url, lease_seconds=LEASE, db_busy_timeout=1.0) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        worker = worker_for(runtime, api, clock)
        assert worker.step()  # the customer
        with pytest.raises(OperationalError):
            worker.step()  # the invoice is created, then the server is gone
        own_pg.restart()
        with capture_logs() as logs:
            assert worker.step()  # handed back first, then claimed again and found by api_id
        assert [e["event"] for e in logs if e["event"].startswith("delivery.claim")] == [
            "delivery.claim_released"
        ]
        _assert_one_invoice_done(runtime, api)
    assert api.calls == ["create_customer", "create_invoice", "find_invoices"]
