"""One claimed command -> the API call(s) that carry it out, exactly once, and its recorded outcome.

For each command the order is always: resolve refs from the commands it depends on -> take a
request from the quota and (for a create) durably mark the outcome unknown -> call the API,
outside any transaction -> record the outcome under the lease token.

Exactly once toward the API:

- every create carries ``api_id`` (63-bit, from the idempotency key) and ``api_custom`` (the key);
- when an earlier attempt's outcome is unknown (timeout, reset, 5xx after send, crash between
  send and record), the object is first looked up by ``api_id`` (exact search, documented) and
  sent again only if absent. Settlements have no ``api_id``: the invoice's settlements are
  compared instead. An e-mail whose outcome is unknown is not sent again (at most once: a second
  copy of an e-mail is not worth the risk of spamming the customer on every retry);
- ``customer.ensure`` with a binding for its source customer costs no call; without one, a customer
  with exactly its e-mail is looked for first and bound (:mod:`bridge.outbox.customers`).

A failed call ends as :mod:`bridge.outbox.failures` says (wait, retry, pause or dead).
``customer.update`` finds its customer through the binding of ``meta["binding_key"]`` (or a
``customer_id`` ref); with none bound it is cancelled. A database error during the attempt leaves
the claim with the worker, which hands it back once the database answers (:mod:`bridge.outbox.held`).

The invoice's ``total_with_vat`` as the API computed it is compared with
``meta["expected_total_with_vat"]``. An invoice of a shape not yet confirmed on the firm is created
as a draft and finalised only if the totals agree (:mod:`bridge.outbox.finalise`); a difference on
an invoice created final is logged as an error (``delivery.total_mismatch``) and kept in the
command's result. Every numbered document takes its turn in the firm's invoice sequence and is
never dated before the last one issued (:mod:`bridge.outbox.chronology`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from bridge.db.models import CommandStatus, utcnow
from bridge.db.outage import DATABASE_DOWN
from bridge.facturation.errors import FacturationError, RateInfo, RetryableError
from bridge.facturation.protocol import ApiAnswer, FacturationApi, Resource
from bridge.logging import get_logger
from bridge.outbox.chronology import Chronology, SequenceBusyError, parse_date, turn_hook
from bridge.outbox.commands import CommandKind, api_id_for
from bridge.outbox.crediting import gate_credit
from bridge.outbox.customers import same_email
from bridge.outbox.failures import Failures, Outcome
from bridge.outbox.finalise import (
    ShapeBook,
    confirmed,
    draft_mismatch,
    invoice_shape,
    is_draft,
    mismatch_error,
    shape_hook,
    total_mismatch,
)
from bridge.outbox.held import HeldClaim
from bridge.outbox.lookup import Found, lookup_for
from bridge.outbox.queue import Claimed, LeaseLostError, Outbox
from bridge.outbox.quota import QuotaLimiter
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.siblings import customer_in_flight

__all__ = ["Deliverer", "Outcome", "RefError"]

log = get_logger("bridge.outbox.delivery")
# An invoice's VAT country and mention, as sent: its credit notes copy them from its result (refs
# "…#vat_country?"); kept from what was sent when Facturation.pro's answer does not echo them.
SENT_FIELDS_KEPT = ("vat_country", "vat_exemption")


_CREATES: dict[CommandKind, Resource] = {
    CommandKind.ENSURE_CUSTOMER: "customers",
    CommandKind.CREATE_INVOICE: "invoices",
    CommandKind.PARTIAL_CREDIT_NOTE: "invoices",
    CommandKind.FULL_CREDIT_NOTE: "invoices",
}
_TOTAL_CHECKED = {CommandKind.CREATE_INVOICE, CommandKind.PARTIAL_CREDIT_NOTE}
_NUMBERED = {*_TOTAL_CHECKED, CommandKind.FULL_CREDIT_NOTE}  # documents in the firm's sequence
Hook = Callable[[Session], None]


class _AttemptEndedError(Exception):
    """The attempt ended early; ``outcome`` is already recorded."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


class RefError(Exception):
    """A ref can't be resolved: the referenced command is not done, or lacks the field."""


@dataclass
class Deliverer:
    """Carries out claimed commands against ``api``. One per worker; not thread-safe."""

    outbox: Outbox
    api: FacturationApi
    quota: QuotaLimiter | None
    policy: RetryPolicy
    worker_id: str
    rng: random.Random
    clock: Callable[[], datetime] = utcnow
    last_rate: tuple[datetime, RateInfo] | None = None  # the last answer's quota headers, and when
    quota_wait_s: float = 0.0  # after a QUOTA_WAIT: how long the quota said to wait
    held: HeldClaim | None = None  # a claim a database error left in flight, to hand back
    sequence: Chronology | None = None  # the firm's invoice sequence (None: dates as mapped)
    shapes: ShapeBook | None = None  # confirmed shapes (None: every invoice created final)
    lookup_by_email: bool = True  # BRIDGE_CUSTOMER_LOOKUP_BY_EMAIL: bind an existing customer
    _may_have_sent: bool = False  # during deliver(): a write request has been handed to the API

    @cached_property
    def failures(self) -> Failures:
        return Failures(self.outbox, self.quota, self.policy, self.worker_id, self.rng, self.clock)

    def deliver(self, c: Claimed) -> Outcome:
        """Carry out ``c``. A database error propagates, and ``c`` is kept in :attr:`held`."""
        self._may_have_sent = False
        try:
            return self._deliver(c)
        except _AttemptEndedError as stop:
            return stop.outcome
        except LeaseLostError:
            log.warning("delivery.lease_lost", command_id=c.id, key=c.key)
            return Outcome.LEASE_LOST
        except DATABASE_DOWN as exc:
            self.held = HeldClaim.keep(c, may_have_sent=self._may_have_sent, exc=exc)
            raise

    def release_held(self) -> None:
        """Hand back the claim a database error left in flight (see :mod:`bridge.outbox.held`)."""
        if self.held is not None:
            self.held.release(self.outbox)
            self.held = None

    # -- the steps --------------------------------------------------------------------------------

    def _deliver(self, c: Claimed) -> Outcome:
        binding_key = c.meta.get("binding_key")
        if c.kind is CommandKind.ENSURE_CUSTOMER and binding_key:
            bound = self.outbox.binding(str(binding_key))
            if bound is not None:
                return self._done(c, bound, {"id": bound, "bound": True})
        if c.kind is CommandKind.UPDATE_CUSTOMER and "customer_id" not in c.refs:
            bound = self.outbox.binding(str(binding_key)) if binding_key else None
            if bound is None:
                reason = f"no Facturation.pro customer bound to {binding_key}: nothing to update"
                self.outbox.cancel(c, reason=reason)
                log.info("delivery.cancelled", command_id=c.id, key=c.key, reason=reason)
                return Outcome.CANCELLED
            c = replace(c, payload={**c.payload, "customer_id": bound})
        try:
            body = self._resolve(c)
        except RefError as exc:
            self.outbox.kill(c, error=f"unresolvable ref: {exc}")
            log.error("delivery.dead", command_id=c.id, key=c.key, error=str(exc))
            return Outcome.DEAD

        if c.outcome_unknown:
            found = self._look_up(c, body)
            if found is not None:
                log.info("delivery.found_after_unknown_outcome", command_id=c.id, key=c.key)
                if c.kind in _TOTAL_CHECKED and is_draft(found) and not c.meta.get("draft"):
                    return self._check_and_finalise(c, found)
                return self._done(c, _id_of(found), found)

        if c.kind is CommandKind.ENSURE_CUSTOMER and self.lookup_by_email and body.get("email"):
            email = str(body["email"])
            other = customer_in_flight(self.outbox.sessions, email, exclude_id=c.id)
            if other is not None:  # two workers must not both find nobody, then both create
                wait = self.rng.uniform(0.5, 2.0)
                self.outbox.retry_later(
                    c,
                    wait_s=wait,
                    error=f"waiting for {other}, a customer with the same e-mail, to settle",
                    consume_attempt=False,
                    outcome_unknown=c.outcome_unknown,
                )
                log.info("delivery.customer_waits", command_id=c.id, key=c.key, other=other)
                return Outcome.RETRY
            page = self._call(c, lambda: self.api.find_customers(email=email), mark_unknown=False)
            existing = same_email(page.data, email)
            if existing is not None:
                log.info("delivery.customer_found_by_email", command_id=c.id, key=c.key)
                return self._done(c, _id_of(existing), {**existing, "found_by_email": True})

        body, ended = gate_credit(self.outbox, c, body, self.rng)
        if ended is not None:
            return Outcome(ended)

        resource = _CREATES.get(c.kind)
        if c.kind is CommandKind.SEND_EMAIL and c.outcome_unknown:
            result = {"email": "outcome of an earlier send unknown; not sent again"}
            log.warning("delivery.email_outcome_unknown", command_id=c.id, key=c.key)
            return self._done(c, None, result)
        if (
            c.kind in _TOTAL_CHECKED
            and not c.meta.get("draft")
            and not confirmed(self.shapes, self.outbox.sessions, body)
        ):
            answer = self._call(c, lambda: self._send(c, body, draft=True), mark_unknown=True)
            # From here on something exists in Facturation.pro: any failure keeps the mark.
            return self._check_and_finalise(replace(c, outcome_unknown=True), _dict(answer.data))
        is_write = resource is not None or c.kind in {
            CommandKind.CREATE_SETTLEMENT,
            CommandKind.SEND_EMAIL,
        }
        numbered = c.kind in _NUMBERED and not c.meta.get("draft")
        turn = turn_hook(self.sequence, c, body, body, self.clock) if numbered else None
        answer = self._call(c, lambda: self._send(c, body), mark_unknown=is_write, during=turn)
        data = _dict(answer.data)
        return self._done(c, _id_of(data), data)

    def _check_and_finalise(self, c: Claimed, draft: dict[str, Any]) -> Outcome:
        """A draft of ours: finalise it if its total is what was paid, else leave it for a human."""
        draft_id = _id_of(draft)
        shape = invoice_shape(c.payload)
        mismatch = draft_mismatch(c.meta, draft)
        if mismatch is not None or draft_id is None:
            mismatch = mismatch or draft_mismatch(c.meta, {}) or {}
            result = {"total_mismatch": mismatch, "draft_id": draft_id, "shape": shape}
            record = shape_hook(self.shapes, shape, False, self.clock)
            self.outbox.kill(
                c, error=mismatch_error(mismatch, draft_id), result=result, during=record
            )
            log.error(
                "delivery.total_mismatch", command_id=c.id, key=c.key, draft_id=draft_id, **mismatch
            )
            return Outcome.DEAD
        changes: dict[str, Any] = {}
        answer = self._call(
            c,
            lambda: self.api.update_invoice(draft_id, changes, type_doc="final"),
            mark_unknown=True,
            during=turn_hook(self.sequence, c, draft, changes, self.clock),
        )
        data = _dict(answer.data)
        return self._done(c, draft_id, data, checked_shape=shape)

    def _resolve(self, c: Claimed) -> dict[str, Any]:
        """The API body: the payload with every ref filled from a done command."""
        body = dict(c.payload)
        if not c.refs:
            return body
        referenced = self.outbox.referenced(ref.partition("#")[0] for ref in c.refs.values())
        for field, ref in c.refs.items():
            key, _, sub = ref.partition("#")
            status, remote_id, result = referenced.get(key, (None, None, {}))
            if status != CommandStatus.DONE.value:
                raise RefError(f"{key} is {status or 'missing'}")
            optional = sub.endswith("?")  # "invoice:…#vat_country?": only if it has one
            value: Any = result.get(sub.rstrip("?")) if sub else remote_id
            if value is None or value == "":
                if optional:
                    continue
                raise RefError(f"{ref} has no value")
            current = body.get(field)
            if isinstance(current, str) and "{}" in current:
                body[field] = current.replace("{}", str(value), 1)
            else:
                body[field] = value
        return body

    def _look_up(self, c: Claimed, body: dict[str, Any]) -> dict[str, Any] | None:
        """After an unknown outcome: the object if the earlier attempt created it."""
        ask = lookup_for(self.api, c, body, _CREATES.get(c.kind))
        return None if ask is None else ask.found(self._call(c, ask.call, mark_unknown=False).data)

    def _send(self, c: Claimed, body: dict[str, Any], *, draft: bool = False) -> ApiAnswer:
        api_id, key = _api_id(c), c.key
        match c.kind:
            case CommandKind.ENSURE_CUSTOMER:
                return self.api.create_customer({**body, "api_id": api_id, "api_custom": key})
            case CommandKind.UPDATE_CUSTOMER:
                customer_id = int(body.pop("customer_id"))
                return self.api.update_customer(customer_id, body)
            case CommandKind.CREATE_INVOICE | CommandKind.PARTIAL_CREDIT_NOTE:
                return self.api.create_invoice(
                    {**body, "api_id": api_id, "api_custom": key},
                    draft=draft or bool(c.meta.get("draft", False)),
                )
            case CommandKind.FULL_CREDIT_NOTE:
                invoice_id = int(body["invoice_id"])
                return self.api.refund_invoice(invoice_id, api_id=api_id, api_custom=key)
            case CommandKind.CREATE_SETTLEMENT:
                return self.api.create_settlement(int(body["invoice_id"]), body)
            case CommandKind.SEND_EMAIL:
                bill_id = int(body.pop("bill_id", None) or body.pop("invoice_id"))
                body.pop("invoice_id", None)
                return self.api.send_email(bill_id, body or None)
        raise AssertionError(f"unhandled command kind {c.kind}")  # pragma: no cover

    # -- one API call, with its failure handling --------------------------------------------------

    def _call(
        self,
        c: Claimed,
        fn: Callable[[], ApiAnswer],
        mark_unknown: bool,
        during: Hook | None = None,
    ) -> ApiAnswer:
        rate = None
        if self.last_rate is not None:
            seen_at, info = self.last_rate
            rate = (seen_at, info.limit, info.remaining)
        try:
            wait = self.outbox.begin_send(
                c, self.quota, mark_unknown=mark_unknown, rate=rate, during=during
            )
        except SequenceBusyError as busy:
            wait = self.rng.uniform(0.2, 1.0)  # the holder's call takes about that long
            self.outbox.retry_later(
                c, wait_s=wait, error=str(busy), consume_attempt=False, outcome_unknown=None
            )
            log.info("delivery.sequence_wait", command_id=c.id, key=c.key, wait_s=round(wait, 3))
            raise _AttemptEndedError(Outcome.RETRY) from busy
        self.last_rate = None
        if wait > 0:
            self.quota_wait_s = wait
            self.outbox.retry_later(
                c, wait_s=wait, error="waiting for quota", consume_attempt=False
            )
            raise _AttemptEndedError(Outcome.QUOTA_WAIT)
        self._may_have_sent = self._may_have_sent or mark_unknown
        try:
            answer = fn()
        except FacturationError as exc:
            if exc.rate is not None:
                self.last_rate = (self.clock(), exc.rate)
            raise _AttemptEndedError(self.failures.failed(c, exc, mark_unknown)) from exc
        except Exception as exc:  # not the client's error: a bug or an unexpected transport fault
            log.exception("delivery.unexpected_error", command_id=c.id, key=c.key)
            fault = RetryableError(f"{type(exc).__name__}: {exc}", may_have_reached_server=True)
            raise _AttemptEndedError(self.failures.failed(c, fault, mark_unknown)) from exc
        if isinstance(answer, Found):
            return answer
        self.last_rate = (self.clock(), answer.rate)
        return answer

    def _done(
        self,
        c: Claimed,
        remote_id: int | None,
        data: dict[str, Any],
        *,
        checked_shape: str | None = None,
    ) -> Outcome:
        """Record ``c`` done; with it, the document's date in the sequence and, for a checked
        draft (``checked_shape``) or a total that differs, the shape's confirmations."""
        result = dict(data)
        for name in SENT_FIELDS_KEPT:  # what credit notes copy, even if the answer omits it
            if result.get(name) in (None, "") and c.payload.get(name):
                result[name] = c.payload[name]
        hooks: list[Hook | None] = []
        mismatch = total_mismatch(c.meta, data) if c.kind in _TOTAL_CHECKED else None
        if mismatch is not None:
            result["total_mismatch"] = mismatch
            log.error("delivery.total_mismatch", command_id=c.id, key=c.key, **mismatch)
        if checked_shape is not None or mismatch is not None:
            shape = checked_shape or invoice_shape(c.payload)
            hooks.append(shape_hook(self.shapes, shape, mismatch is None, self.clock))
        sequence = self.sequence
        if sequence is not None and c.kind in _NUMBERED and not is_draft(data):
            issued = parse_date(data.get("invoiced_on"))
            hooks.append(lambda session: sequence.record(session, issued, self.clock()))
        binding_key = c.meta.get("binding_key") if c.kind is CommandKind.ENSURE_CUSTOMER else None
        if not self.outbox.complete(
            c, remote_id=remote_id, result=result, binding_key=binding_key, during=_all(hooks)
        ):
            return Outcome.LEASE_LOST
        log.info(
            "delivery.done", command_id=c.id, key=c.key, kind=c.kind.value, remote_id=remote_id
        )
        return Outcome.DONE


def _api_id(c: Claimed) -> int:
    return api_id_for(c.key)


def _id_of(data: dict[str, Any]) -> int | None:
    value = data.get("id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _all(hooks: list[Hook | None]) -> Hook | None:
    """One hook running each of ``hooks`` in order (``None`` when there are none)."""
    present = [h for h in hooks if h is not None]
    if not present:
        return None

    def run(session: Session) -> None:
        for hook in present:
            hook(session)

    return run
