"""Stripe API look-ups the mapping stage needs when a webhook does not carry everything.

Checkout sessions arrive without their line items; a refund names a payment intent, not the
invoice (``invoice_payments`` by ``payment[payment_intent]``, API 2025-03-31 "basil" and later) or
the checkout session the sale was keyed on; a refund made through a Stripe credit note is credited
with that note's own lines (credit notes of the invoice, by refund); a current-version
``charge.refunded`` no longer embeds its refunds (refunds by charge); an invoice or a session does
not say which method paid it nor what a foreign-currency payment settled as in euros (payment
details, by payment intent). These calls happen while mapping a stored event,
never in the web request, through Stripe's own SDK (``stripe.StripeClient``) on httpx, with the
API version pinned (:data:`STRIPE_API_VERSION`) and explicit timeouts.

Errors::

    EnrichmentError            Stripe unreachable, timed out, 5xx, 429, key refused: retry later
    StripeObjectMissingError   Stripe answered 404 resource_missing: the event fails (replayable)

Money stays exact: amounts are read from each page's raw JSON body with the webhook parser
(integers as ``int``, any decimal as ``Decimal``), never from the SDK's objects, whose JSON
decoding would turn a decimal into a ``float``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import stripe

from bridge.inbound.events import parse_json

# The API version stripe-python 16.1.0 (constraints.txt) is generated for; pinned here so that an
# SDK upgrade is a conscious change (tests check that they agree). docs/webhooks.md says which.
STRIPE_API_VERSION = "2026-10-28.endive"
LINE_ITEMS_PAGE = 100


class EnrichmentError(Exception):
    """The Stripe API could not be reached or refused: retry the mapping later."""

    retryable = True  # the mapping stage tries the event again later instead of failing it


class StripeObjectMissingError(Exception):
    """Stripe says the object does not exist: retrying will not help, the event fails."""

    retryable = False


class StripeApi(Protocol):
    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]: ...

    def checkout_session_for_payment_intent(self, payment_intent: str) -> str | None: ...

    def invoice_for_payment_intent(self, payment_intent: str) -> str | None: ...

    def credit_note_for_refund(self, invoice: str, refund: str) -> str | None: ...

    def charge_refunds(self, charge: str) -> list[dict[str, Any]]: ...

    def payment_details(self, payment_intent: str) -> dict[str, Any]: ...

    def payment_intent_of_invoice(self, invoice: str) -> str | None: ...


class HttpStripeApi:
    """The look-ups through ``stripe.StripeClient`` (``STRIPE_API_BASE``, ``STRIPE_API_KEY``)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 20.0) -> None:
        self._http = stripe.HTTPXClient(timeout=httpx.Timeout(timeout), allow_sync_methods=True)
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": base_url.rstrip("/")},
            max_network_retries=0,  # the mapping stage retries the whole event, with backoff
            http_client=self._http,
        )

    def close(self) -> None:
        self._http.close()

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        what = f"line items of {session_id}"
        params: Any = {"limit": LINE_ITEMS_PAGE, "expand": ["data.taxes", "data.discounts"]}
        with _translated(what):
            first = self._client.v1.checkout.sessions.line_items.list(session_id, params)
            return [item for page in _pages(first, what) for item in _exact(page, what)["data"]]

    def checkout_session_for_payment_intent(self, payment_intent: str) -> str | None:
        what = f"checkout session of {payment_intent}"
        params: Any = {"payment_intent": payment_intent, "limit": 1}
        with _translated(what):
            page = self._client.v1.checkout.sessions.list(params)
        data = _exact(page, what)["data"]
        return str(data[0]["id"]) if data else None

    def invoice_for_payment_intent(self, payment_intent: str) -> str | None:
        """The invoice this payment paid (``GET /v1/invoice_payments?payment[…]``), if any."""
        what = f"invoice payment of {payment_intent}"
        params: Any = {
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "limit": 10,
        }
        with _translated(what):
            page = self._client.v1.invoice_payments.list(params)
        for payment in _exact(page, what)["data"]:
            invoice = payment.get("invoice")
            if payment.get("status") != "canceled" and invoice:
                return str(invoice["id"] if isinstance(invoice, dict) else invoice)
        return None

    def payment_intent_of_invoice(self, invoice: str) -> str | None:
        """The payment intent that paid ``invoice`` (``GET /v1/invoice_payments?invoice=``): since
        API 2025-03-31 an invoice names it only in ``payments``, which webhooks do not include."""
        what = f"payments of {invoice}"
        params: Any = {"invoice": invoice, "limit": 10}
        with _translated(what):
            page = self._client.v1.invoice_payments.list(params)
        for payment in _exact(page, what)["data"]:
            paid_by = payment.get("payment") or {}
            intent = paid_by.get("payment_intent") if isinstance(paid_by, dict) else None
            intent = intent.get("id") if isinstance(intent, dict) else intent
            if payment.get("status") != "canceled" and intent:
                return str(intent)
        return None

    def credit_note_for_refund(self, invoice: str, refund: str) -> str | None:
        """The Stripe credit note of ``invoice`` that carries ``refund``, if one does."""
        what = f"credit notes of {invoice}"
        params: Any = {"invoice": invoice, "limit": 100}
        with _translated(what):
            first = self._client.v1.credit_notes.list(params)
            for page in _pages(first, what):
                for note in _exact(page, what)["data"]:
                    for link in note.get("refunds") or []:
                        linked = link.get("refund") if isinstance(link, dict) else None
                        linked = linked.get("id") if isinstance(linked, dict) else linked
                        if linked == refund and note.get("status") != "void":
                            return str(note["id"])
        return None

    def charge_refunds(self, charge: str) -> list[dict[str, Any]]:
        """Every refund of ``charge``, newest first (``GET /v1/refunds?charge=``)."""
        what = f"refunds of {charge}"
        params: Any = {"charge": charge, "limit": 100}
        with _translated(what):
            first = self._client.v1.refunds.list(params)
            return [item for page in _pages(first, what) for item in _exact(page, what)["data"]]

    def payment_details(self, payment_intent: str) -> dict[str, Any]:
        """How ``payment_intent`` was paid and what it settled as (``GET /v1/payment_intents/{id}``
        with ``expand[]=latest_charge.balance_transaction``): see :func:`payment_details_of`."""
        what = f"payment intent {payment_intent}"
        params: Any = {"expand": ["latest_charge.balance_transaction"]}
        with _translated(what):
            intent = self._client.v1.payment_intents.retrieve(payment_intent, params)
        return payment_details_of(_body(intent, what))


def payment_details_of(intent: Mapping[str, Any]) -> dict[str, Any]:
    """The method that paid a payment intent and what it settled as, from the intent with
    ``latest_charge.balance_transaction`` expanded (API 2022-11-15 and later: ``latest_charge``)::

        {"method": "sepa_debit", "wallet": None,
         "settlement": {"amount": 1843, "currency": "eur", "exchange_rate": Decimal("0.92")}}

    ``method`` is the charge's ``payment_method_details.type`` (the method used, not the ones
    offered); ``wallet`` a card's ``wallet.type`` (``apple_pay``…); ``settlement`` the balance
    transaction's ``amount`` (minor units of its ``currency``: the account's settlement currency)
    and ``exchange_rate`` (null when no conversion took place). Each is ``None`` when the intent
    does not say (no charge yet, an object not expanded).
    """
    charge = _expanded(intent.get("latest_charge"))
    details = _expanded(charge.get("payment_method_details"))
    method = details.get("type") if isinstance(details.get("type"), str) else None
    wallet = _expanded(_expanded(details.get(method or "")).get("wallet")).get("type")
    balance = _expanded(charge.get("balance_transaction"))
    settlement = None
    if balance:
        settlement = {
            "amount": balance.get("amount"),
            "currency": balance.get("currency"),
            "exchange_rate": balance.get("exchange_rate"),
        }
    return {"method": method, "wallet": wallet, "settlement": settlement}


def _expanded(value: Any) -> Mapping[str, Any]:
    """An expanded object as it is; an id (not expanded), null or anything else as ``{}``."""
    return value if isinstance(value, Mapping) else {}


def _pages(first: stripe.ListObject[Any], what: str) -> Iterator[stripe.ListObject[Any]]:
    """Every page, following ``has_more`` with ``starting_after`` as ``auto_paging_iter`` does
    (page by page here, to read each page's raw body)."""
    page = first
    while True:
        yield page
        if not page.has_more or not page.data:
            return
        with _translated(what):
            page = page.next_page()


def _exact(page: stripe.ListObject[Any], what: str) -> dict[str, Any]:
    """The page as Stripe sent it, parsed with exact numbers."""
    body = _body(page, what)
    if not isinstance(body.get("data"), list):
        raise EnrichmentError(f"stripe {what}: unexpected body")
    return body


def _body(obj: stripe.StripeObject, what: str) -> dict[str, Any]:
    """The object as Stripe sent it, parsed with exact numbers."""
    response = obj.last_response
    try:
        body = parse_json(response.body) if response is not None else None
    except ValueError as exc:
        raise EnrichmentError(f"stripe {what}: invalid JSON") from exc
    if not isinstance(body, dict):
        raise EnrichmentError(f"stripe {what}: unexpected body")
    return body


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the SDK's errors into :class:`EnrichmentError` or :class:`StripeObjectMissingError`."""
    try:
        yield
    except stripe.StripeError as exc:
        status = exc.http_status
        detail = f"stripe {what}: {type(exc).__name__}"
        if status is not None:
            detail += f" (HTTP {status}{', ' + exc.code if exc.code else ''})"
        if status == 404:
            raise StripeObjectMissingError(detail) from exc
        raise EnrichmentError(detail) from exc


def refund_of_event(
    refunds: list[dict[str, Any]], charge: str, amount_refunded: Any, previous: Any
) -> dict[str, Any]:
    """The refund a ``charge.refunded`` event is about, among the charge's ``refunds``.

    Stripe lists refunds newest first; oldest first, the refunds that count (neither failed nor
    canceled) add up, one by one, to each value the charge's ``amount_refunded`` took: the refund
    at which the sum reaches this event's ``amount_refunded`` is this event's. Its amount must be
    ``amount_refunded - previous_attributes.amount_refunded`` when the event says the latter.
    """
    total = 0
    refund: dict[str, Any]
    for refund in reversed(refunds):
        if refund.get("status") in ("failed", "canceled"):
            continue
        total += int(refund.get("amount") or 0)
        if total == amount_refunded:
            expected = amount_refunded - previous if isinstance(previous, int) else None
            if expected is not None and refund.get("amount") != expected:
                break
            return refund
    raise StripeObjectMissingError(
        f"stripe refunds of {charge}: none brings amount_refunded to {amount_refunded}"
        + (f" (from {previous})" if isinstance(previous, int) else "")
    )
