"""Stripe API look-ups the mapping stage needs when a webhook does not carry everything.

Checkout sessions arrive without their line items, and a refunded charge names a payment intent,
not the checkout session the sale was keyed on. These calls happen while mapping a stored event,
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

from collections.abc import Iterator
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


class HttpStripeApi:
    """The two look-ups through ``stripe.StripeClient`` (``STRIPE_API_BASE``, ``STRIPE_API_KEY``)."""

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
    response = page.last_response
    try:
        body = parse_json(response.body) if response is not None else None
    except ValueError as exc:
        raise EnrichmentError(f"stripe {what}: invalid JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
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
