"""Stripe webhooks: ``Stripe-Signature`` verified by Stripe's own library, the event read from the body.

The signature (``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``) is checked with
``stripe.WebhookSignature.verify_header`` against each configured secret in turn, so that a secret
can be rotated without losing deliveries (both secrets are configured during the switch).

The timestamp window is checked here rather than by the library, with an injectable clock: the
library only refuses timestamps that are too old, while a timestamp too far in the future is as
suspect (a captured delivery replayed later), and tests can check the published vectors against a
fixed time instead of freezing the system clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import stripe

from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.inbound.sources import UNKNOWN_TYPE, Delivery, WebhookRejectedError, body_key, clean_key

SIGNATURE_HEADER = "stripe-signature"


def _timestamp(header: str) -> int | None:
    """The first ``t=`` of the header, the one the library signs against."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None
    return None


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookRejectedError` unless ``header`` signs ``body`` with one of ``secrets``, recently.

    ``now`` (Unix seconds) defaults to the system clock; the signed timestamp must be within
    ``tolerance`` seconds of it, either way.
    """
    if not secrets:
        raise WebhookRejectedError(
            "no Stripe webhook secret is configured (STRIPE_WEBHOOK_SECRETS)", 503
        )
    if not header:
        raise WebhookRejectedError("missing Stripe-Signature header")
    if not header.isascii():  # the stripe library's compare_digest raises TypeError on these
        raise WebhookRejectedError("invalid Stripe-Signature: not ASCII")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejectedError(
            "body is not UTF-8 text, so it can't carry a Stripe signature"
        ) from None
    reason = "invalid Stripe-Signature"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError as exc:
            reason = f"invalid Stripe-Signature: {exc.user_message or 'no matching signature'}"
            continue
        break
    else:
        raise WebhookRejectedError(reason)
    signed_at = _timestamp(header)
    current = time.time() if now is None else now
    if signed_at is None or abs(current - signed_at) > tolerance:
        raise WebhookRejectedError(
            f"Stripe-Signature timestamp outside the {tolerance} s tolerance"
        )


def delivery(body: bytes) -> Delivery:
    """What to store for a verified body. Never raises: an unreadable body is kept as failed.

    The dedup key is the event id; a body without one (not JSON, or no ``id``) is keyed by its
    SHA-256, so that its redeliveries still collapse into one row.
    """
    try:
        payload: Any = parse_json(body)
    except ValueError as exc:
        return Delivery(
            Source.STRIPE, body_key(body), UNKNOWN_TYPE, body, parse_error=f"invalid JSON: {exc}"
        )
    if not isinstance(payload, dict):
        return Delivery(
            Source.STRIPE,
            body_key(body),
            UNKNOWN_TYPE,
            body,
            parse_error=f"body is a JSON {type(payload).__name__}, not an event object",
        )
    event_id, event_type = clean_key(payload.get("id")), clean_key(payload.get("type"))
    problems = [
        f"no usable {name!r} in the event"
        for name, v in (("id", event_id), ("type", event_type))
        if v is None
    ]
    return Delivery(
        Source.STRIPE,
        event_id or body_key(body),
        event_type or UNKNOWN_TYPE,
        body,
        parse_error="; ".join(problems) or None,
    )


def parse(body: bytes, received_at: datetime, inbox_event_id: int | None = None) -> InboundEvent:
    """The stored body as an :class:`InboundEvent`. Raises ``ValueError`` if it isn't an event."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise ValueError("a Stripe event body must be a JSON object")
    event_id, event_type = clean_key(payload.get("id")), clean_key(payload.get("type"))
    if event_id is None or event_type is None:
        raise ValueError("a Stripe event needs a string 'id' and 'type'")
    return InboundEvent(
        source=Source.STRIPE,
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        received_at=received_at,
        inbox_event_id=inbox_event_id,
    )
