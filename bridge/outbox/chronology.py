"""One chronological sequence of invoices per firm: never a document dated before the last one issued.

French invoices are numbered in one continuous sequence, and their dates must follow that order. A
late webhook, a replay or a backfill brings a sale whose day is behind invoices already issued; the
bridge then dates the invoice the day it is issued (in the merchant's zone, ``BRIDGE_TIMEZONE``)
and states the sale's own date on it: ``delivery_on`` ("Livré/Réalisé le", a documented invoice
field) and a line in ``information`` ("Informations complémentaires", printed on the invoice).

The ``invoice_sequence`` row of the firm keeps the last date issued and the command that holds the
right to number the next document. Every send that numbers a document — an invoice or credit note
created final, a draft finalised, a full credit note (dated by the server) — first takes that turn
in the transaction that marks the send (``Outbox.begin_send``, fenced by the lease token):

- if another command holds it, live (still ``in_flight`` under the same lease token, lease not
  expired), this one waits: two documents in flight at once could be numbered in the other order;
- otherwise the date is decided against ``last_issued_on``, which is raised to it, and the turn is
  this command's until it leaves ``in_flight`` (done, retried, dead) — nothing to release.

Since the turn and the date are taken before the request leaves, and the next turn only after the
holder's answer (or its lease's end), documents reach Facturation.pro one at a time, in date order,
whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import CommandStatus, InvoiceSequence, OutboxCommand
from bridge.logging import get_logger
from bridge.outbox.queue import Claimed

log = get_logger("bridge.outbox.chronology")

SALE_DATE_TEXT = "Date de la vente : {:%d/%m/%Y}"


class SequenceBusyError(Exception):
    """Another command is numbering a document right now: wait a moment and try again."""


def parse_date(value: Any) -> date | None:
    """An API date (``AAAA-MM-JJ``), or ``None`` when absent or not a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Dating:
    """The date a document is issued on and, when that is not the sale's day, the sale's day."""

    issued_on: date
    sale_on: date | None = None  # set only when the document is dated later than the sale

    def fields(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """The invoice fields to set on ``current`` (a body or a draft): none unless re-dated."""
        if self.sale_on is None:
            return {}
        text = SALE_DATE_TEXT.format(self.sale_on)
        information = current.get("information")
        changes: dict[str, Any] = {
            "invoiced_on": self.issued_on.isoformat(),
            "information": f"{information}\n{text}" if information else text,
        }
        if not current.get("delivery_on"):
            changes["delivery_on"] = self.sale_on.isoformat()
        return changes


@dataclass(frozen=True)
class Chronology:
    """The sequence of one firm (``firm`` names it: API URL and firm id), dated in ``zone``."""

    firm: str
    zone: ZoneInfo

    def take_turn(
        self,
        session: Session,
        *,
        command_id: int,
        lease_token: int,
        wanted: date | None,
        now: datetime,
    ) -> Dating:
        """The date to issue a document on that would be dated ``wanted`` (``None``: today), and
        the turn to number it. Raises :class:`SequenceBusyError` if another command holds it."""
        self._ensure_row(session, now)
        row = session.execute(
            select(InvoiceSequence).where(InvoiceSequence.firm == self.firm).with_for_update()
        ).scalar_one()
        holder = row.holder_command_id
        if holder is not None and holder != command_id and self._live(session, row, now):
            raise SequenceBusyError(f"command {holder} is numbering a document")
        today = now.astimezone(self.zone).date()
        wanted = wanted or today
        last = row.last_issued_on
        dating = Dating(wanted)
        if last is not None and wanted < last:
            dating = Dating(max(today, last), sale_on=wanted)
            log.info(
                "chronology.redated",
                command_id=command_id,
                sale_on=wanted.isoformat(),
                issued_on=dating.issued_on.isoformat(),
                last_issued_on=last.isoformat(),
            )
        row.holder_command_id = command_id
        row.holder_token = lease_token
        row.last_issued_on = max(last, dating.issued_on) if last else dating.issued_on
        row.updated_at = now
        session.flush()
        return dating

    def record(self, session: Session, issued_on: date | None, now: datetime) -> None:
        """A document dated ``issued_on`` was issued: the last date is at least that."""
        if issued_on is None:
            return
        self._ensure_row(session, now)
        session.execute(
            update(InvoiceSequence)
            .where(
                InvoiceSequence.firm == self.firm,
                or_(
                    InvoiceSequence.last_issued_on.is_(None),
                    InvoiceSequence.last_issued_on < issued_on,
                ),
            )
            .values(last_issued_on=issued_on, updated_at=now)
        )

    def last_issued_on(self, session: Session) -> date | None:
        return session.execute(
            select(InvoiceSequence.last_issued_on).where(InvoiceSequence.firm == self.firm)
        ).scalar()

    def _ensure_row(self, session: Session, now: datetime) -> None:
        dialect = session.get_bind().dialect.name
        ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(
            ins(InvoiceSequence)
            .values(firm=self.firm, updated_at=now)
            .on_conflict_do_nothing(index_elements=["firm"])
        )

    @staticmethod
    def _live(session: Session, row: InvoiceSequence, now: datetime) -> bool:
        """Is the holder still sending under the lease it took the turn with?"""
        held = exists().where(
            OutboxCommand.id == row.holder_command_id,
            OutboxCommand.lease_token == row.holder_token,
            OutboxCommand.status == CommandStatus.IN_FLIGHT.value,
            OutboxCommand.lease_expires_at > now,
        )
        return bool(session.execute(select(held)).scalar())


def turn_hook(
    sequence: Chronology | None,
    c: Claimed,
    current: Mapping[str, Any],
    out: dict[str, Any],
    clock: Callable[[], datetime],
) -> Callable[[Session], None] | None:
    """A hook for ``Outbox.begin_send``: take ``sequence``'s turn for ``c`` (a document now dated
    as ``current`` says) and put the fields a re-dating sets into ``out`` (the body to send)."""
    if sequence is None:
        return None

    def take(session: Session) -> None:
        dating = sequence.take_turn(
            session,
            command_id=c.id,
            lease_token=c.lease_token,
            wanted=parse_date(current.get("invoiced_on")),
            now=clock(),
        )
        out.update(dating.fields(current))

    return take
