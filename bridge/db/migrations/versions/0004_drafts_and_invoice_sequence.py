"""invoice shapes confirmed on the firm, and the firm's chronological invoice sequence

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Two new tables only:

- ``invoice_shapes``: per firm and shape of invoice (currency, VAT rates, rounding), how many drafts
  Facturation.pro totalled exactly as the bridge predicted, and how many it did not;
- ``invoice_sequence``: per firm, the last date an invoice was issued on, and the command that
  holds the right to number the next document.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_shapes",
        sa.Column("firm", sa.String(length=255), nullable=False),
        sa.Column("shape", sa.String(length=255), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("mismatched", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("firm", "shape", name=op.f("pk_invoice_shapes")),
    )
    op.create_table(
        "invoice_sequence",
        sa.Column("firm", sa.String(length=255), nullable=False),
        sa.Column("last_issued_on", sa.Date(), nullable=True),
        sa.Column("holder_command_id", sa.BigInteger(), nullable=True),
        sa.Column("holder_token", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("firm", name=op.f("pk_invoice_sequence")),
    )


def downgrade() -> None:
    op.drop_table("invoice_sequence")
    op.drop_table("invoice_shapes")
