"""an outbox command's inbox row is inbox_event_id; command kinds named after their document

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

- ``outbox_commands.event_id`` (the inbox row a command was mapped from, not a provider's event id)
  becomes ``inbox_event_id``, with its index and foreign key renamed to match;
- stored command kinds take their new names: ``invoice.refund`` -> ``credit_note.full``,
  ``credit_note.create`` -> ``credit_note.partial``, ``payment.record`` -> ``settlement.create``.
  Idempotency keys (and so every ``api_id`` already sent) are left exactly as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KINDS = {
    "invoice.refund": "credit_note.full",
    "credit_note.create": "credit_note.partial",
    "payment.record": "settlement.create",
}


def _rename_inbox_column(old: str, new: str) -> None:
    with op.batch_alter_table("outbox_commands", recreate="auto") as batch:
        batch.drop_index(f"ix_outbox_commands_{old}")
        batch.drop_constraint(f"fk_outbox_commands_{old}_inbox_events", type_="foreignkey")
        batch.alter_column(old, new_column_name=new)
    with op.batch_alter_table("outbox_commands", recreate="auto") as batch:  # sees the new name
        batch.create_foreign_key(
            f"fk_outbox_commands_{new}_inbox_events", "inbox_events", [new], ["id"]
        )
        batch.create_index(f"ix_outbox_commands_{new}", [new], unique=False)


def _rename_kinds(renames: dict[str, str]) -> None:
    commands = sa.table("outbox_commands", sa.column("kind", sa.String))
    for old, new in renames.items():
        op.execute(commands.update().where(commands.c.kind == old).values(kind=new))


def upgrade() -> None:
    _rename_inbox_column("event_id", "inbox_event_id")
    _rename_kinds(KINDS)


def downgrade() -> None:
    _rename_kinds({new: old for old, new in KINDS.items()})
    _rename_inbox_column("inbox_event_id", "event_id")
