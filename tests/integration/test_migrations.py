"""Upgrading a database that holds data: every row survives 0001 -> 0002 -> head, and back.

The rows are written at revision 0001 with plain SQL (lightweight ``table()`` constructs, not the
models, which describe the head schema), the way a 0001 bridge stored them: inbox events, outbox
commands under the old kinds with an ``event_id`` pointing at their inbox row, dependencies, a
customer binding, quota rows and the pause switch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from bridge.db import make_engine, migrate
from bridge.db.migrate import alembic_config, head_revision
from bridge.db.models import Base, OutboxCommand, UTCDateTime
from bridge.outbox.commands import CommandKind
from tests.support.pg import PostgresServer

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OLD_TO_NEW = {
    "invoice.refund": "credit_note.full",
    "credit_note.create": "credit_note.partial",
    "payment.record": "settlement.create",
}
_counter = iter(range(10_000))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty database (no revision at all), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        server: PostgresServer | str = request.getfixturevalue("pg_server")
        if isinstance(server, str):
            pytest.skip("needs a server of the test run's own to create an empty database")
        name = f"bridge_upgrade_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = server.url(name)
    engine = make_engine(url)
    yield engine
    engine.dispose()


# -- the 0001 schema, as plain tables -------------------------------------------------------------

When = UTCDateTime()
inbox = sa.table(
    "inbox_events",
    *(sa.column(c) for c in ("id", "source", "event_id", "event_type", "status", "attempts")),
    sa.column("status_reason", sa.Text),
    sa.column("received_at", When),
    sa.column("processed_at", When),
    sa.column("next_attempt_at", When),
    sa.column("headers", sa.JSON),
    sa.column("body", sa.LargeBinary),
)
_COMMAND_COLUMNS = (
    "id", "idempotency_key", "kind", "status", "priority", "attempts", "lease_token", "leased_by",
    "outcome_unknown", "last_error", "remote_id", "credit_of",
)  # fmt: skip
_COMMAND_TIMES = (
    "next_attempt_at", "first_attempt_at", "lease_expires_at", "created_at", "updated_at", "done_at"
)  # fmt: skip


def _commands(inbox_column: str) -> sa.TableClause:
    return sa.table(
        "outbox_commands",
        *(sa.column(c) for c in (*_COMMAND_COLUMNS, inbox_column)),
        *(sa.column(c, When) for c in _COMMAND_TIMES),
        *(sa.column(c, sa.JSON) for c in ("payload", "refs", "meta", "result")),
    )


dependencies = sa.table(
    "command_dependencies", sa.column("command_id"), sa.column("depends_on_key")
)
bindings = sa.table(
    "customer_bindings",
    sa.column("source_key"),
    sa.column("remote_id"),
    sa.column("created_at", When),
    sa.column("updated_at", When),
)
quota_windows = sa.table(
    "quota_windows",
    sa.column("name"),
    sa.column("blocked_until", When),
    sa.column("updated_at", When),
)
quota_requests = sa.table("quota_requests", sa.column("id"), sa.column("sent_at", When))
state = sa.table(
    "bridge_state", sa.column("key"), sa.column("value", sa.JSON), sa.column("updated_at", When)
)

BODY = b'{"id": "evt_1", "data": {"object": {"amount_total": 123456789012345678}}}\xff'
INBOX_ROWS = [
    {
        "id": 7, "source": "stripe", "event_id": "evt_1", "event_type": "checkout.session.completed",
        "status": "mapped", "attempts": 1, "status_reason": None, "received_at": T0,
        "processed_at": T0 + timedelta(seconds=1), "next_attempt_at": None,
        "headers": {"stripe-signature": "t=1,v1=ab"}, "body": BODY,
    },
    {
        "id": 9, "source": "shopify", "event_id": "wh-2", "event_type": "refunds/create",
        "status": "failed", "attempts": 3, "status_reason": "MappingError: no order",
        "received_at": T0 + timedelta(minutes=1), "processed_at": None,
        "next_attempt_at": T0 + timedelta(minutes=5), "headers": {}, "body": b"{}",
    },
]  # fmt: skip


def _command(n: int, key: str, kind: str, status: str, inbox_id: int | None, **extra: Any) -> Any:
    row: dict[str, Any] = {
        "id": n, "idempotency_key": key, "kind": kind, "status": status, "priority": 0,
        "attempts": 0, "lease_token": 0, "leased_by": None, "outcome_unknown": False,
        "last_error": None, "remote_id": None, "credit_of": None, "inbox_id": inbox_id,
        "next_attempt_at": T0, "first_attempt_at": None, "lease_expires_at": None,
        "created_at": T0, "updated_at": T0, "done_at": None,
        "payload": {"title": key, "items": [{"unit_price": "10.000", "quantity": "2"}]},
        "refs": {}, "meta": {"currency": "EUR"}, "result": None,
    }  # fmt: skip
    row.update(extra)
    return row


COMMAND_ROWS = [
    _command(1, "customer:stripe:cus_1", "customer.ensure", "done", 7, remote_id=501,
             result={"id": 501}, done_at=T0 + timedelta(seconds=2), attempts=1),
    _command(2, "stripe:checkout:cs_1", "invoice.create", "done", 7, remote_id=9001,
             refs={"customer_id": "customer:stripe:cus_1"}, result={"total_with_vat": "24.00"},
             done_at=T0 + timedelta(seconds=3), attempts=1),
    _command(3, "refund:stripe:ch_1", "invoice.refund", "pending", 7, outcome_unknown=True,
             refs={"invoice_id": "stripe:checkout:cs_1"}, credit_of="stripe:checkout:cs_1",
             attempts=2, last_error="502: bad gateway"),
    _command(4, "credit:shopify:r_2", "credit_note.create", "dead", 9, priority=1,
             credit_of="stripe:checkout:cs_1", last_error="422: invalid",
             result={"errors": {"items": ["invalid"]}}),
    _command(5, "settlement:stripe:pi_1", "payment.record", "in_flight", None, lease_token=4,
             leased_by="host:123", lease_expires_at=T0 + timedelta(minutes=2),
             first_attempt_at=T0),
    _command(6, "email:stripe:checkout:cs_1", "invoice.email", "pending", 7,
             refs={"bill_id": "stripe:checkout:cs_1"}),
]  # fmt: skip
DEPENDENCY_ROWS = [
    {"command_id": 2, "depends_on_key": "customer:stripe:cus_1"},
    {"command_id": 3, "depends_on_key": "stripe:checkout:cs_1"},
    {"command_id": 6, "depends_on_key": "stripe:checkout:cs_1"},
]
BINDING_ROWS = [
    {"source_key": "stripe:cus_1", "remote_id": 501, "created_at": T0, "updated_at": T0}
]
QUOTA_WINDOW_ROWS = [
    {"name": "global", "blocked_until": T0 + timedelta(seconds=30), "updated_at": T0}
]
QUOTA_REQUEST_ROWS = [{"id": i, "sent_at": T0 + timedelta(seconds=i)} for i in range(1, 4)]
STATE_ROWS = [{"key": "delivery_paused", "value": {"reason": "401"}, "updated_at": T0}]


def _commands_as(inbox_column: str, *, renamed: bool) -> list[dict[str, Any]]:
    rows = []
    for original in COMMAND_ROWS:
        row = {k: v for k, v in original.items() if k != "inbox_id"}
        row[inbox_column] = original["inbox_id"]
        if renamed:
            row["kind"] = OLD_TO_NEW.get(row["kind"], row["kind"])
        rows.append(row)
    return rows


def _write_0001_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(inbox.insert(), INBOX_ROWS)
        conn.execute(_commands("event_id").insert(), _commands_as("event_id", renamed=False))
        conn.execute(dependencies.insert(), DEPENDENCY_ROWS)
        conn.execute(bindings.insert(), BINDING_ROWS)
        conn.execute(quota_windows.insert(), QUOTA_WINDOW_ROWS)
        conn.execute(quota_requests.insert(), QUOTA_REQUEST_ROWS)
        conn.execute(state.insert(), STATE_ROWS)


def _rows(engine: Engine, table: sa.TableClause, order: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).order_by(sa.column(order)))
        return [dict(row._mapping) for row in result]


def _assert_every_row(engine: Engine, inbox_column: str, *, renamed: bool) -> None:
    assert _rows(engine, inbox, "id") == INBOX_ROWS
    commands = _commands(inbox_column)
    assert _rows(engine, commands, "id") == _commands_as(inbox_column, renamed=renamed)
    got = _rows(engine, dependencies, "command_id")
    assert sorted(got, key=lambda r: r["command_id"]) == DEPENDENCY_ROWS
    assert _rows(engine, bindings, "source_key") == BINDING_ROWS
    assert _rows(engine, quota_windows, "name") == QUOTA_WINDOW_ROWS
    assert _rows(engine, quota_requests, "id") == QUOTA_REQUEST_ROWS
    assert _rows(engine, state, "key") == STATE_ROWS


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("outbox_commands")}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_rows_written_at_0001_survive_the_upgrade_to_head(empty_engine: Engine) -> None:
    migrate(empty_engine, "0001")
    assert _revision(empty_engine) == "0001"
    _write_0001_rows(empty_engine)

    migrate(empty_engine)
    assert _revision(empty_engine) == head_revision()
    assert "event_id" not in _columns(empty_engine)
    _assert_every_row(empty_engine, "inbox_event_id", renamed=True)
    with empty_engine.connect() as conn:  # the models still describe the upgraded schema
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    if empty_engine.dialect.name == "sqlite":  # switched off while migrating, on again after
        with empty_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with sa.orm.Session(empty_engine) as session:  # and read every stored kind
        kinds = {CommandKind(k) for k in session.scalars(sa.select(OutboxCommand.kind))}
    assert CommandKind.FULL_CREDIT_NOTE in kinds
    assert CommandKind.CREATE_SETTLEMENT in kinds


def test_0002_downgrades_to_0001_and_upgrades_again_without_losing_a_row(
    empty_engine: Engine,
) -> None:
    migrate(empty_engine, "0001")
    _write_0001_rows(empty_engine)
    migrate(empty_engine, "0002")
    _assert_every_row(empty_engine, "inbox_event_id", renamed=True)

    command.downgrade(alembic_config(empty_engine), "0001")
    assert _revision(empty_engine) == "0001"
    assert "inbox_event_id" not in _columns(empty_engine)
    _assert_every_row(empty_engine, "event_id", renamed=False)

    migrate(empty_engine)
    assert _revision(empty_engine) == head_revision()
    _assert_every_row(empty_engine, "inbox_event_id", renamed=True)
