"""Stripe API look-ups the mapping stage needs when a webhook does not carry everything.

Checkout sessions arrive without their line items, and a refunded charge names a payment intent,
not the checkout session the sale was keyed on. These calls happen while mapping a stored event,
never in the web request. A network failure raises :class:`EnrichmentError`: the event is not
broken, the mapping should be retried later.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from bridge.inbound.events import parse_json


class EnrichmentError(Exception):
    """The Stripe API could not be reached or refused: retry the mapping later."""

    retryable = True  # the mapping stage tries the event again later instead of failing it


class StripeApi(Protocol):
    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]: ...

    def checkout_session_for_payment_intent(self, payment_intent: str) -> str | None: ...


class HttpStripeApi:
    """The two calls over HTTP (``STRIPE_API_BASE``, ``STRIPE_API_KEY``), with exact numbers."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 20.0) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def _get(
        self, path: str, params: list[tuple[str, str | int | float | bool | None]]
    ) -> dict[str, Any]:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise EnrichmentError(f"stripe GET {path}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise EnrichmentError(f"stripe GET {path}: HTTP {response.status_code}")
        try:
            body = parse_json(response.content)
        except ValueError as exc:
            raise EnrichmentError(f"stripe GET {path}: invalid JSON") from exc
        if not isinstance(body, dict):
            raise EnrichmentError(f"stripe GET {path}: unexpected body")
        return body

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("limit", "100"),
            ("expand[]", "data.taxes"),
            ("expand[]", "data.discounts"),
        ]
        after: list[tuple[str, str | int | float | bool | None]] = []
        while True:
            page = self._get(f"/v1/checkout/sessions/{session_id}/line_items", params + after)
            data = page.get("data") or []
            items.extend(data)
            if not page.get("has_more") or not data:
                return items
            after = [("starting_after", str(data[-1]["id"]))]

    def checkout_session_for_payment_intent(self, payment_intent: str) -> str | None:
        page = self._get(
            "/v1/checkout/sessions", [("payment_intent", payment_intent), ("limit", "1")]
        )
        data = page.get("data") or []
        return str(data[0]["id"]) if data else None
