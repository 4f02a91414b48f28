"""Other commands that bear on this one's decision, read just before it is sent.

- :func:`credit_siblings`: the other credit notes of the same invoice that are done or may be in
  Facturation.pro already (:mod:`bridge.outbox.credit_policy` decides with them);
- :func:`customer_in_flight`: another ``customer.ensure`` for the same e-mail that may be creating
  that customer right now (the deliverer then waits, so two workers never both find nobody by
  e-mail and both create the customer).
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bridge.db.models import CommandStatus, OutboxCommand
from bridge.outbox.commands import CommandKind
from bridge.outbox.credit_policy import CreditSibling, credited_amount

_DONE = CommandStatus.DONE.value
_PENDING = CommandStatus.PENDING.value
_IN_FLIGHT = CommandStatus.IN_FLIGHT.value
_MAY_BE_THERE = or_(
    OutboxCommand.status == _IN_FLIGHT,
    and_(OutboxCommand.status == _PENDING, OutboxCommand.outcome_unknown),
)


def credit_siblings(
    sessions: sessionmaker[Session], credit_of: str, *, exclude_id: int
) -> list[CreditSibling]:
    """The other credit notes of the invoice keyed ``credit_of`` that are done, or that may be
    in Facturation.pro already (in flight, or pending after an unknown outcome)."""
    with sessions() as session:
        rows = session.execute(
            select(
                OutboxCommand.kind,
                OutboxCommand.idempotency_key,
                OutboxCommand.status,
                OutboxCommand.meta,
            ).where(
                OutboxCommand.credit_of == credit_of,
                OutboxCommand.id != exclude_id,
                or_(OutboxCommand.status == _DONE, _MAY_BE_THERE),
            )
        ).all()
    return [
        CreditSibling(CommandKind(k), key, status == _DONE, credited_amount(meta))
        for k, key, status, meta in rows
    ]


def customer_in_flight(
    sessions: sessionmaker[Session], email: str, *, exclude_id: int
) -> str | None:
    """The key of another ``customer.ensure`` for ``email`` (any case) that may be creating that
    customer right now (in flight, or pending after an unknown outcome), if there is one."""
    with sessions() as session:
        return session.execute(
            select(OutboxCommand.idempotency_key)
            .where(
                OutboxCommand.kind == CommandKind.ENSURE_CUSTOMER.value,
                OutboxCommand.id != exclude_id,
                _MAY_BE_THERE,
                func.lower(OutboxCommand.payload["email"].as_string()) == email.lower(),
            )
            .limit(1)
        ).scalar()
