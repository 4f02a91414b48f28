"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "bridge_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_bridge_state")),
    )
    op.create_table(
        "customer_bindings",
        sa.Column("source_key", sa.String(length=255), nullable=False),
        sa.Column("remote_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_key", name=op.f("pk_customer_bindings")),
    )
    op.create_table(
        "inbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("source", "event_id", name=op.f("uq_inbox_events_source_event_id")),
    )
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_events_status_id", ["status", "id"], unique=False)

    op.create_table(
        "quota_windows",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_quota_windows")),
    )
    op.create_table(
        "quota_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_requests")),
    )
    with op.batch_alter_table("quota_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quota_requests_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "outbox_commands",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.BigInteger(), nullable=False),
        sa.Column("leased_by", sa.String(length=128), nullable=True),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("credit_of", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["inbox_events.id"], name=op.f("fk_outbox_commands_event_id_inbox_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_commands")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_commands_idempotency_key")),
    )
    with op.batch_alter_table("outbox_commands", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_commands_due", ["status", "priority", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_commands_event_id"), ["event_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_commands_credit_of"), ["credit_of"], unique=False
        )

    op.create_table(
        "command_dependencies",
        sa.Column(
            "command_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("depends_on_key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["outbox_commands.id"],
            name=op.f("fk_command_dependencies_command_id_outbox_commands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "command_id", "depends_on_key", name=op.f("pk_command_dependencies")
        ),
    )
    with op.batch_alter_table("command_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_command_dependencies_depends_on_key"), ["depends_on_key"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("command_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_dependencies_depends_on_key"))

    op.drop_table("command_dependencies")
    with op.batch_alter_table("outbox_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_commands_event_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_commands_credit_of"))
        batch_op.drop_index("ix_outbox_commands_due")

    op.drop_table("outbox_commands")
    with op.batch_alter_table("quota_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quota_requests_sent_at"))

    op.drop_table("quota_requests")
    op.drop_table("quota_windows")
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_events_status_id")

    op.drop_table("inbox_events")
    op.drop_table("customer_bindings")
    op.drop_table("bridge_state")
