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

Outcomes: 2xx -> done; 429 -> wait, no attempt consumed; 5xx/timeouts/resets -> backoff with full
jitter, then dead after the give-up time; 400/422 -> dead with the API's ``errors``; 401/403 ->
delivery paused for every worker; 404 and other answers -> dead. ``customer.update`` finds its
customer through the binding of ``meta["binding_key"]`` (or a ``customer_id`` ref); with no bound
customer there is nothing to update, and it is cancelled with that reason. A database error during
the attempt leaves the claim with the worker, which hands it back as soon as the database answers
(:mod:`bridge.outbox.held`).

The invoice's ``total_with_vat`` as the API computed it is compared with
``meta["expected_total_with_vat"]``: a difference is logged as an error
(``delivery.total_mismatch``) and kept in the command's result.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bridge.db.models import CommandStatus, utcnow
from bridge.db.outage import DATABASE_DOWN
from bridge.facturation.errors import (
    AuthError,
    FacturationError,
    RateInfo,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from bridge.facturation.protocol import ApiAnswer, FacturationApi, Resource
from bridge.logging import get_logger
from bridge.outbox.commands import CommandKind, api_id_for
from bridge.outbox.crediting import gate_credit
from bridge.outbox.customers import same_email
from bridge.outbox.held import HeldClaim
from bridge.outbox.queue import Claimed, LeaseLostError, Outbox
from bridge.outbox.quota import QuotaLimiter
from bridge.outbox.retry import Action, RetryPolicy

log = get_logger("bridge.outbox.delivery")


class Outcome(enum.StrEnum):
    """What one delivery attempt ended in (for logs, stats and tests)."""

    DONE = "done"  # confirmed by the API (or found by api_id, or already bound)
    RETRY = "retry"  # transient failure: backoff
    RATE_LIMITED = "rate_limited"  # 429: waiting, no attempt consumed
    QUOTA_WAIT = "quota_wait"  # our own limiter said wait: put back, nothing sent
    DEAD = "dead"  # refused or out of time
    PAUSED = "paused"  # 401/403: all delivery paused
    LEASE_LOST = "lease_lost"  # another worker owns it now: nothing recorded by us
    CANCELLED = "cancelled"  # not needed (an update of a customer never created)


_CREATES: dict[CommandKind, Resource] = {
    CommandKind.ENSURE_CUSTOMER: "customers",
    CommandKind.CREATE_INVOICE: "invoices",
    CommandKind.PARTIAL_CREDIT_NOTE: "invoices",
    CommandKind.FULL_CREDIT_NOTE: "invoices",
}
_TOTAL_CHECKED = {CommandKind.CREATE_INVOICE, CommandKind.PARTIAL_CREDIT_NOTE}


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
    lookup_by_email: bool = True  # BRIDGE_CUSTOMER_LOOKUP_BY_EMAIL: bind an existing customer
    _may_have_sent: bool = False  # during deliver(): a write request has been handed to the API

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
                return self._done(c, _id_of(found), found)

        if c.kind is CommandKind.ENSURE_CUSTOMER and self.lookup_by_email and body.get("email"):
            email = str(body["email"])
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
        is_write = resource is not None or c.kind in {
            CommandKind.CREATE_SETTLEMENT,
            CommandKind.SEND_EMAIL,
        }
        answer = self._call(c, lambda: self._send(c, body), mark_unknown=is_write)
        data = answer.data if isinstance(answer.data, dict) else {}
        return self._done(c, _id_of(data), data)

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
            value: Any = result.get(sub) if sub else remote_id
            if value is None:
                raise RefError(f"{ref} has no value")
            current = body.get(field)
            if isinstance(current, str) and "{}" in current:
                body[field] = current.replace("{}", str(value), 1)
            else:
                body[field] = value
        return body

    def _look_up(self, c: Claimed, body: dict[str, Any]) -> dict[str, Any] | None:
        """After an unknown outcome: the object if the earlier attempt created it."""
        resource = _CREATES.get(c.kind)
        if resource is not None:
            found: dict[str, Any] | None = self._call(
                c,
                lambda: _Found(self.api.find_by_api_id(resource, _api_id(c))),
                mark_unknown=False,
            ).data
            return found
        if c.kind is CommandKind.CREATE_SETTLEMENT:
            invoice = self._call(c, lambda: self.api.get_invoice(int(body["invoice_id"])), False)
            return _matching_settlement(invoice.data, body)
        return None

    def _send(self, c: Claimed, body: dict[str, Any]) -> ApiAnswer:
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
                    draft=bool(c.meta.get("draft", False)),
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

    def _call(self, c: Claimed, fn: Callable[[], ApiAnswer], mark_unknown: bool) -> ApiAnswer:
        rate = None
        if self.last_rate is not None:
            seen_at, info = self.last_rate
            rate = (seen_at, info.limit, info.remaining)
        wait = self.outbox.begin_send(c, self.quota, mark_unknown=mark_unknown, rate=rate)
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
            raise _AttemptEndedError(self._failed(c, exc, mark_unknown)) from exc
        except Exception as exc:  # not the client's error: a bug or an unexpected transport fault
            log.exception("delivery.unexpected_error", command_id=c.id, key=c.key)
            fault = RetryableError(f"{type(exc).__name__}: {exc}", may_have_reached_server=True)
            raise _AttemptEndedError(self._failed(c, fault, mark_unknown)) from exc
        if isinstance(answer, _Found):
            return answer
        self.last_rate = (self.clock(), answer.rate)
        return answer

    def _failed(self, c: Claimed, exc: FacturationError, mark_unknown: bool) -> Outcome:
        fields = {"command_id": c.id, "key": c.key, "kind": c.kind.value, "status": exc.status}
        if isinstance(exc, RateLimitedError):
            if self.quota is None:
                wait = RetryPolicy.rate_limited(exc.retry_after, 1.0)
                self.outbox.retry_later(
                    c,
                    wait_s=wait,
                    error="429 rate limited",
                    consume_attempt=False,
                    outcome_unknown=c.outcome_unknown,
                )
            else:
                wait = self.outbox.rate_limited(c, self.quota, exc.retry_after)
            log.warning("delivery.rate_limited", wait_s=round(wait, 3), **fields)
            return Outcome.RATE_LIMITED
        if isinstance(exc, AuthError):
            reason = f"{exc.status} from the API: check FACTURATION_API_LOGIN/KEY and firm access"
            self.outbox.pause_delivery(c, reason=reason, worker_id=self.worker_id)
            log.error("delivery.paused", reason=reason, **fields)
            return Outcome.PAUSED
        if isinstance(exc, RetryableError):
            unknown = c.outcome_unknown or (mark_unknown and exc.may_have_reached_server)
            decision = self.policy.after_failure(
                attempt=c.attempts + 1,
                first_attempt_at=c.first_attempt_at,
                now=self.clock(),
                rng=self.rng,
                outcome_unknown=unknown,
            )
            error = f"{exc.status or 'no answer'}: {exc}"
            if decision.action is Action.GIVE_UP:
                self.outbox.kill(c, error=f"gave up ({decision.reason}); last error {error}")
                log.error("delivery.dead", error=error, reason=decision.reason, **fields)
                return Outcome.DEAD
            self.outbox.retry_later(
                c,
                wait_s=decision.wait_s,
                error=error,
                consume_attempt=True,
                outcome_unknown=unknown,
            )
            log.info(
                "outbox.retry_scheduled",
                attempt=c.attempts + 1,
                wait_s=round(decision.wait_s, 3),
                outcome_unknown=unknown,
                error=error,
                **fields,
            )
            return Outcome.RETRY
        errors = exc.errors if isinstance(exc, RejectedError) else None
        self.outbox.kill(
            c,
            error=f"{exc.status or 'error'}: {exc}",
            result={"errors": errors, "status": exc.status, "body": exc.body},
        )
        log.error("delivery.dead", error=str(exc), errors=errors, **fields)
        return Outcome.DEAD

    def _done(self, c: Claimed, remote_id: int | None, data: dict[str, Any]) -> Outcome:
        result = dict(data)
        if c.kind in _TOTAL_CHECKED:
            mismatch = _total_mismatch(c.meta, data)
            if mismatch is not None:
                result["total_mismatch"] = mismatch
                log.error("delivery.total_mismatch", command_id=c.id, key=c.key, **mismatch)
        binding_key = c.meta.get("binding_key") if c.kind is CommandKind.ENSURE_CUSTOMER else None
        if not self.outbox.complete(c, remote_id=remote_id, result=result, binding_key=binding_key):
            return Outcome.LEASE_LOST
        log.info(
            "delivery.done", command_id=c.id, key=c.key, kind=c.kind.value, remote_id=remote_id
        )
        return Outcome.DONE


_NO_RATE = RateInfo(None, None)


@dataclass(frozen=True, slots=True)
class _Found:
    """A lookup's answer, shaped like an API answer so it goes through the same failure handling."""

    data: dict[str, Any] | None
    status: int = 200
    rate: RateInfo = _NO_RATE


def _api_id(c: Claimed) -> int:
    return api_id_for(c.key)


def _id_of(data: dict[str, Any]) -> int | None:
    value = data.get("id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, float | bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _total_mismatch(meta: dict[str, Any], data: dict[str, Any]) -> dict[str, str] | None:
    expected = _decimal(meta.get("expected_total_with_vat"))
    actual = _decimal(data.get("total_with_vat"))
    if expected is None or actual is None or expected == actual:
        return None
    return {
        "expected_total_with_vat": str(expected),
        "actual_total_with_vat": str(actual),
        "currency": str(meta.get("currency") or data.get("currency") or ""),
    }


def _matching_settlement(invoice: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """The settlement of ``invoice`` that ``body`` describes, if it was recorded already."""
    if not isinstance(invoice, dict):
        return None
    total = _decimal(body.get("total"))
    for settlement in invoice.get("settlements") or []:
        if not isinstance(settlement, dict):
            continue
        if (
            _decimal(settlement.get("total")) == total
            and str(settlement.get("paid_on")) == str(body.get("paid_on"))
            and settlement.get("payment_ref") == body.get("payment_ref")
        ):
            return settlement
    return None
