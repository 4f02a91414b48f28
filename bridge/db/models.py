"""Tables: the inbox of raw events, the outbox of commands, customer bindings, quota and state.

The schema is owned by Alembic (``bridge/db/migrations``); a test checks that these models and the
migrations agree. Times are stored as timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT primary keys on PostgreSQL, INTEGER (the rowid alias, autoincrementing) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class EventStatus(enum.StrEnum):
    """Where a stored inbound event stands. Every event ends in mapped, ignored or failed."""

    RECEIVED = "received"  # stored, not yet mapped
    MAPPED = "mapped"  # turned into outbox commands (possibly zero)
    IGNORED = "ignored"  # no mapping handles it, or the mapping chose to skip it (reason kept)
    FAILED = "failed"  # could not be parsed or mapped (error kept); replayable after a fix


class CommandStatus(enum.StrEnum):
    """Where an outbox command stands."""

    PENDING = "pending"  # waiting for its time, its dependencies or the quota
    IN_FLIGHT = "in_flight"  # claimed by a worker under a lease
    DONE = "done"  # the API confirmed it; remote id stored
    DEAD = "dead"  # rejected by the API or out of retries; needs a human (error kept)
    CANCELLED = "cancelled"  # no longer needed (e.g. cancelled by an operator)


class InboxEvent(Base):
    """A raw webhook delivery as received, never altered. UNIQUE(source, event_id) deduplicates."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_inbox_events_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.RECEIVED.value)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    # A mapping that failed for a passing reason (the Stripe API unreachable) is tried again then.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxCommand(Base):
    """One call (or lookup-then-call) to make to Facturation.pro, exactly once."""

    __tablename__ = "outbox_commands"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_commands_due", "status", "priority", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    refs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # payload field -> "key[#field]"
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # not sent: expected totals, binding
    inbox_event_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("inbox_events.id"), default=None, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=CommandStatus.PENDING.value)
    priority: Mapped[int] = mapped_column(
        Integer, default=0
    )  # lower goes first: live before backfill
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_token: Mapped[int] = mapped_column(BigInteger, default=0)  # fencing token, +1 per claim
    leased_by: Mapped[str | None] = mapped_column(String(128), default=None)
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    remote_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # For credit notes: the key of the invoice they credit (``meta["credit_of"]``), so that an
    # invoice is never credited beyond what was paid (see bridge/delivery.py).
    credit_of: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class CommandDependency(Base):
    """Command ``command_id`` may run only once the command keyed ``depends_on_key`` is done.

    Dependencies are by key, not by row id, because the command depended on may not exist yet
    (a refund that arrives before its order waits for the order's invoice).
    """

    __tablename__ = "command_dependencies"

    command_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("outbox_commands.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_key: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class CustomerBinding(Base):
    """A source customer (``stripe:cus_…``, ``shopify:<shop>:<id>``) bound to a Facturation.pro id."""

    __tablename__ = "customer_bindings"

    source_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    remote_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InvoiceShape(Base):
    """How often Facturation.pro's total matched ours for one shape of invoice, on one firm.

    A shape is the currency, the mix of VAT rates and whether rounding is in play (see
    bridge/outbox/finalise.py). Until ``confirmed`` reaches ``BRIDGE_SHAPE_CONFIRMATIONS`` such
    invoices are created as drafts and checked before they are finalised; a mismatch sets it back
    to 0.
    """

    __tablename__ = "invoice_shapes"

    firm: Mapped[str] = mapped_column(String(255), primary_key=True)
    shape: Mapped[str] = mapped_column(String(255), primary_key=True)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    mismatched: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InvoiceSequence(Base):
    """One firm's chronological sequence of invoices: the last date issued, and who may number next.

    ``holder_command_id`` / ``holder_token`` name the command (and its lease token) that is sending
    a numbered document right now; the hold ends by itself when that command leaves ``in_flight``
    or its lease expires (see bridge/outbox/chronology.py).
    """

    __tablename__ = "invoice_sequence"

    firm: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_issued_on: Mapped[date | None] = mapped_column(Date, default=None)
    holder_command_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    holder_token: Mapped[int | None] = mapped_column(BigInteger, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuotaWindow(Base):
    """The quota limiter's lock row, and ``blocked_until`` after a 429's ``Retry-After``.

    Every worker locks it before deciding whether to send, so that decisions are serialised; the
    requests themselves are counted in ``quota_requests``.
    """

    __tablename__ = "quota_windows"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    blocked_until: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuotaRequest(Base):
    """One request sent (or counted as sent) to the API: the log behind the sliding-window limiter.

    A sliding log never sends more than the limit in *any* interval of the window's length, so it
    stays within the quota whether the server counts in fixed or in sliding windows. Rows older
    than a day are deleted as the limiter goes.
    """

    __tablename__ = "quota_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sent_at: Mapped[datetime] = mapped_column(index=True)


class BridgeState(Base):
    """Small shared flags, e.g. ``delivery_paused`` after a 401/403, with the reason."""

    __tablename__ = "bridge_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkerRecord(Base):
    """A delivery worker's heartbeat: written every ``BRIDGE_HEARTBEAT_SECONDS`` while it runs.

    A worker silent for ``BRIDGE_WORKER_DEAD_AFTER`` is presumed dead, and the commands it had
    claimed (``outbox_commands.leased_by``) are released at once (see bridge/outbox/liveness.py).
    """

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
